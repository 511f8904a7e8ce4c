use std::fmt;

use thiserror::Error;

/// A merchant account id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

pub const MAX_ACCOUNT_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountIdError {
    #[error("account id is empty")]
    Empty,
    #[error("account id is longer than {MAX_ACCOUNT_ID_LEN} characters")]
    TooLong,
    #[error("account id may contain only letters, digits, '-', '_' and '.'")]
    BadCharacter,
}

impl TryFrom<&str> for AccountId {
    type Error = AccountIdError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        if text.is_empty() {
            return Err(AccountIdError::Empty);
        }
        if text.len() > MAX_ACCOUNT_ID_LEN {
            return Err(AccountIdError::TooLong);
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            return Err(AccountIdError::BadCharacter);
        }
        Ok(AccountId(text.to_owned()))
    }
}

impl TryFrom<String> for AccountId {
    type Error = AccountIdError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        AccountId::try_from(text.as_str())
    }
}

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(AccountId::try_from("merchant-1_a.b").is_ok());
        assert_eq!(AccountId::try_from(""), Err(AccountIdError::Empty));
        assert_eq!(AccountId::try_from("a/b"), Err(AccountIdError::BadCharacter));
        assert_eq!(AccountId::try_from("é"), Err(AccountIdError::BadCharacter));
        assert_eq!(AccountId::try_from("a".repeat(65).as_str()), Err(AccountIdError::TooLong));
    }
}
