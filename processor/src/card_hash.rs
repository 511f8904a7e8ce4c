use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use transaction_model::CardNumber;

/// Keyed hash of card numbers (HMAC-SHA256), so that the same card can be
/// recognised across transactions without storing the number. The key has
/// an id, stored beside each hash, so the key can rotate.
#[derive(Clone)]
pub struct CardHasher {
    // Pre-keyed state: cloning it is cheaper than re-keying per message.
    keyed: Hmac<Sha256>,
    key_id: Arc<str>,
}

/// The id of a hash key when CARD_HASH_KEY_ID is not set.
pub const DEFAULT_KEY_ID: &str = "h1";

#[derive(Debug, thiserror::Error)]
pub enum WeakKey {
    #[error("card hash key must be at least 16 bytes")]
    Short,
    #[error("card hash key id must be 1-32 of A-Z a-z 0-9 _ -")]
    BadId,
}

impl CardHasher {
    /// A hasher whose key has the default id.
    pub fn new(key: &[u8]) -> Result<Self, WeakKey> {
        Self::with_key_id(key, DEFAULT_KEY_ID)
    }

    pub fn with_key_id(key: &[u8], key_id: &str) -> Result<Self, WeakKey> {
        if key.len() < 16 {
            return Err(WeakKey::Short);
        }
        let id_ok = !key_id.is_empty()
            && key_id.len() <= 32
            && key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            return Err(WeakKey::BadId);
        }
        let keyed = Hmac::<Sha256>::new_from_slice(key).map_err(|_| WeakKey::Short)?;
        Ok(CardHasher { keyed, key_id: Arc::from(key_id) })
    }

    /// Stored beside every hash this hasher makes.
    pub fn key_id(&self) -> &str {
        &self.key_id
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
        write!(f, "CardHasher({}, <key redacted>)", self.key_id)
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
        assert_eq!(a.key_id(), "h1");
        let c = CardHasher::with_key_id(b"0123456789abcdef", "h2").unwrap();
        assert_eq!((c.key_id(), c.hash(&card)), ("h2", a.hash(&card)));
        assert!(CardHasher::with_key_id(b"0123456789abcdef", "bad id").is_err());
    }
}
