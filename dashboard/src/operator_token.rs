//! The operator token, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Shortest OPERATOR_TOKEN accepted.
pub const MIN_OPERATOR_TOKEN_LEN: usize = 16;

#[derive(Debug, Error)]
#[error("OPERATOR_TOKEN must be at least {MIN_OPERATOR_TOKEN_LEN} characters")]
pub struct WeakOperatorToken;

/// Holds only a digest: comparing fixed-length digests with `subtle` leaks
/// neither the content nor the length of the configured token.
pub struct OperatorToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken(<redacted>)")
    }
}

impl OperatorToken {
    pub fn new(token: &str) -> Result<Self, WeakOperatorToken> {
        if token.chars().count() < MIN_OPERATOR_TOKEN_LEN {
            return Err(WeakOperatorToken);
        }
        Ok(OperatorToken { digest: Sha256::digest(token.as_bytes()).into() })
    }

    /// The session binding of this token (see `session::binding`).
    pub fn binding(&self) -> String {
        crate::session::binding(&self.digest)
    }

    pub fn matches(&self, candidate: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        self.digest.ct_eq(&d).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_token() {
        let t = OperatorToken::new("operator-token-123456").unwrap();
        assert!(t.matches("operator-token-123456"));
        assert!(!t.matches("operator-token-12345"));
        assert!(!t.matches(""));
        assert!(OperatorToken::new("short").is_err());
        assert!(!format!("{t:?}").contains("operator-token"));
    }
}
