use std::fmt;

use thiserror::Error;

/// A transaction's id: the primary key in storage and the Kafka key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(String);

pub const MAX_ID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransactionIdError {
    #[error("id is empty")]
    Empty,
    #[error("id is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("id contains a control or whitespace character")]
    BadCharacter,
}

impl TryFrom<&str> for TransactionId {
    type Error = TransactionIdError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        if text.is_empty() {
            return Err(TransactionIdError::Empty);
        }
        if text.chars().count() > MAX_ID_LEN {
            return Err(TransactionIdError::TooLong);
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(TransactionIdError::BadCharacter);
        }
        Ok(TransactionId(text.to_owned()))
    }
}

impl TryFrom<String> for TransactionId {
    type Error = TransactionIdError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        TransactionId::try_from(text.as_str())
    }
}

impl TransactionId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_rejects_junk() {
        assert!(TransactionId::try_from("0190b8a4-5a0e-7c2a-9d1e-1f2e3d4c5b6a").is_ok());
        assert_eq!(TransactionId::try_from(""), Err(TransactionIdError::Empty));
        assert_eq!(TransactionId::try_from("a b"), Err(TransactionIdError::BadCharacter));
        assert_eq!(TransactionId::try_from("a\nb"), Err(TransactionIdError::BadCharacter));
        assert_eq!(TransactionId::try_from("x".repeat(MAX_ID_LEN + 1).as_str()), Err(TransactionIdError::TooLong));
        assert!(TransactionId::try_from("x".repeat(MAX_ID_LEN).as_str()).is_ok());
    }
}
