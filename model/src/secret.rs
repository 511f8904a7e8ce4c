//! Keyed hashes of merchant secrets.
//!
//! Secrets are stored only as HMAC-SHA256 under an operator key, so a leaked
//! database alone does not allow brute-forcing them offline. Generating a
//! secret needs randomness and lives in the API, not here.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Shortest operator key accepted.
pub const MIN_SECRET_KEY_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("secret hash key must be at least {MIN_SECRET_KEY_LEN} bytes")]
pub struct WeakSecretKey;

#[derive(Clone)]
pub struct SecretHasher {
    // Pre-keyed state: cloning it is cheaper than re-keying per request.
    keyed: Hmac<Sha256>,
}

impl SecretHasher {
    pub fn new(key: &[u8]) -> Result<Self, WeakSecretKey> {
        if key.len() < MIN_SECRET_KEY_LEN {
            return Err(WeakSecretKey);
        }
        let keyed = Hmac::<Sha256>::new_from_slice(key).map_err(|_| WeakSecretKey)?;
        Ok(SecretHasher { keyed })
    }

    /// Lower-case hex of HMAC-SHA256(key, secret): 64 characters.
    pub fn hash(&self, secret: &str) -> String {
        hex::encode(self.mac(secret))
    }

    /// Whether `secret` hashes to `stored_hex`, compared in constant time.
    /// A malformed stored hash never verifies.
    pub fn verify(&self, secret: &str, stored_hex: &str) -> bool {
        let Ok(stored) = hex::decode(stored_hex) else {
            return false;
        };
        let computed = self.mac(secret);
        // `ct_eq` on slices of different lengths is false without leaking
        // where they differ.
        computed.as_slice().ct_eq(stored.as_slice()).into()
    }

    /// A hasher under a key of its own, derived from this one for `purpose`
    /// (HMAC(key, purpose)): hashes made for one purpose say nothing about
    /// another's, and neither reveals the key.
    pub fn derive(&self, purpose: &str) -> SecretHasher {
        let key = self.mac(purpose);
        // 32 bytes is over the minimum; `new` cannot refuse it.
        let keyed = Hmac::<Sha256>::new_from_slice(&key).unwrap_or_else(|_| self.keyed.clone());
        SecretHasher { keyed }
    }

    fn mac(&self, secret: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher(<key redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_hasher_has_a_key_of_its_own() {
        let base = SecretHasher::new(b"0123456789abcdef-operator").unwrap();
        let derived = base.derive("idempotency-fingerprint");
        assert_ne!(base.hash("x"), derived.hash("x"));
        assert_ne!(derived.hash("x"), base.derive("other").hash("x"));
        assert_eq!(derived.hash("x"), base.derive("idempotency-fingerprint").hash("x"), "deterministic");
    }

    const KEY: &[u8] = b"0123456789abcdef-operator";

    #[test]
    fn hashes_are_keyed_hex_and_stable() {
        let a = SecretHasher::new(KEY).unwrap();
        let b = SecretHasher::new(b"another-key-of-16-bytes").unwrap();
        let h = a.hash("s3cret");
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(h, a.hash("s3cret"));
        assert_ne!(h, b.hash("s3cret"));
        assert_ne!(h, a.hash("s3cret "));
    }

    #[test]
    fn verifies_only_the_right_secret() {
        let a = SecretHasher::new(KEY).unwrap();
        let stored = a.hash("s3cret");
        assert!(a.verify("s3cret", &stored));
        assert!(!a.verify("s3cre", &stored));
        assert!(!a.verify("", &stored));
        assert!(!SecretHasher::new(b"another-key-of-16-bytes").unwrap().verify("s3cret", &stored));
        // Malformed or truncated stored values never match.
        assert!(!a.verify("s3cret", "not hex"));
        assert!(!a.verify("s3cret", &stored[..62]));
        assert!(!a.verify("s3cret", ""));
    }

    #[test]
    fn rejects_short_keys_and_hides_the_key() {
        assert_eq!(SecretHasher::new(b"short").err(), Some(WeakSecretKey));
        assert!(SecretHasher::new(&[7u8; MIN_SECRET_KEY_LEN]).is_ok());
        let h = SecretHasher::new(KEY).unwrap();
        let shown = format!("{h:?}");
        assert!(!shown.contains("0123"), "{shown}");
    }
}
