use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use transaction_model::CardNumber;

/// Keyed hash of card numbers (HMAC-SHA256), so that the same card can be
/// recognised across transactions without storing the number.
#[derive(Clone)]
pub struct CardHasher {
    // Pre-keyed state: cloning it is cheaper than re-keying per message.
    keyed: Hmac<Sha256>,
}

#[derive(Debug, thiserror::Error)]
#[error("card hash key must be at least 16 bytes")]
pub struct WeakKey;

impl CardHasher {
    pub fn new(key: &[u8]) -> Result<Self, WeakKey> {
        if key.len() < 16 {
            return Err(WeakKey);
        }
        let keyed = Hmac::<Sha256>::new_from_slice(key).map_err(|_| WeakKey)?;
        Ok(CardHasher { keyed })
    }

    pub fn hash(&self, card: &CardNumber) -> String {
        self.hash_digits(card.expose_digits())
    }

    /// Hashes a digit string that is not a valid card (still never stored).
    pub fn hash_digits(&self, digits: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(digits.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for CardHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardHasher(<key redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_stable() {
        let a = CardHasher::new(b"0123456789abcdef").unwrap();
        let b = CardHasher::new(b"fedcba9876543210").unwrap();
        let card = CardNumber::try_from("4111111111111111").unwrap();
        assert_eq!(a.hash(&card), a.hash(&card));
        assert_ne!(a.hash(&card), b.hash(&card));
        assert_eq!(a.hash(&card).len(), 64);
        assert!(CardHasher::new(b"short").is_err());
        assert!(!format!("{a:?}").contains("0123"));
    }
}
