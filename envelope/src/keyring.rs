//! Named data keys: the first one seals new values, every one opens.
//!
//! Text form (an environment variable or a file that Kubernetes mounts from
//! a Secret): entries `KEY_ID:BASE64_32_BYTES`, separated by `;` or new
//! lines, `#` starting a comment line. Rotation: add the new key to every
//! reader (processor) first, then put it first for the writers (API); drop
//! the old key once the topic's retention has passed.

use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const KEY_LEN: usize = 32;

/// A key's name: 1 to 32 of `A-Z a-z 0-9 _ -` (it stands inside the sealed
/// value, between colons).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl KeyId {
    /// An id known to be valid (a constant, or one read from a sealed value
    /// that was checked already).
    pub(crate) fn unchecked(s: &str) -> Self {
        KeyId(s.to_owned())
    }
}

impl TryFrom<&str> for KeyId {
    type Error = KeyringError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        let ok =
            !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(KeyId(s.to_owned()))
        } else {
            Err(KeyringError::BadKeyId)
        }
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 32 secret bytes, wiped from memory when dropped; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        DataKey(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("the keyring has no key")]
    Empty,
    #[error("a keyring entry is not KEY_ID:BASE64_KEY")]
    BadEntry,
    #[error("a key id is not 1-32 of A-Z a-z 0-9 _ -")]
    BadKeyId,
    #[error("key {0}: not base64 of exactly 32 bytes")]
    BadKey(String),
    #[error("key id {0} appears twice")]
    Duplicate(String),
    #[error("keyring not readable: {0}")]
    Unreadable(String),
    #[error("{0}_KEYS or {0}_KEYS_FILE is not set; set it, or start in development mode (GATEWAY_DEVELOPMENT=1) for a local run")]
    NotConfigured(&'static str),
    #[error("{0}_KEYS is the development keyring published in the repository; set a secret one, or start in development mode (GATEWAY_DEVELOPMENT=1)")]
    DevelopmentKeyring(&'static str),
}

#[derive(Clone)]
pub struct Keyring {
    current: KeyId,
    keys: HashMap<KeyId, DataKey>,
}

impl Keyring {
    /// Parses the text form; the first key is the current one.
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let mut current = None;
        let mut keys = HashMap::new();
        let entries = text.split(['\n', ';']).map(str::trim).filter(|e| !e.is_empty() && !e.starts_with('#'));
        for entry in entries {
            let (id, key) = entry.split_once(':').ok_or(KeyringError::BadEntry)?;
            let id = KeyId::try_from(id.trim())?;
            let key = decode_key(key.trim()).ok_or_else(|| KeyringError::BadKey(id.to_string()))?;
            if keys.contains_key(&id) {
                return Err(KeyringError::Duplicate(id.to_string()));
            }
            current.get_or_insert_with(|| id.clone());
            keys.insert(id, key);
        }
        Ok(Keyring { current: current.ok_or(KeyringError::Empty)?, keys })
    }

    /// A keyring of one key (tests, the local run's generated key).
    pub fn single(id: KeyId, key: DataKey) -> Self {
        Keyring { keys: HashMap::from([(id.clone(), key)]), current: id }
    }

    /// The key new values are sealed with.
    pub fn current(&self) -> (&KeyId, &DataKey) {
        // `current` is always a key of `keys` (set together in parse/single).
        let key = &self.keys[&self.current];
        (&self.current, key)
    }

    pub fn get(&self, id: &str) -> Option<&DataKey> {
        self.keys.get(&KeyId::try_from(id).ok()?)
    }

    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }

    /// One key's entry in text form (`KEY_ID:BASE64`), wiped when dropped:
    /// the CVV key rotation writes the keyring back from these.
    pub(crate) fn entry(&self, id: &KeyId) -> Option<Zeroizing<String>> {
        self.keys.get(id).map(|key| Zeroizing::new(format!("{id}:{}", STANDARD.encode(key.bytes()))))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.keys.keys().map(KeyId::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("Keyring").field("current", &self.current.as_str()).field("keys", &ids).finish()
    }
}

fn decode_key(text: &str) -> Option<DataKey> {
    let mut bytes = STANDARD.decode(text).or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('='))).ok()?;
    let key = <[u8; KEY_LEN]>::try_from(bytes.as_slice()).ok().map(DataKey::from_bytes);
    bytes.zeroize();
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

    #[test]
    fn the_first_key_is_current_and_all_open() {
        let ring = Keyring::parse(&format!("# rotated 2026-11\nk2:{K2}\nk1:{K1}\n")).unwrap();
        assert_eq!(ring.current().0.as_str(), "k2");
        assert!(ring.get("k1").is_some() && ring.get("k2").is_some());
        assert!(ring.get("k3").is_none() && ring.get("bad:id").is_none());
        assert_eq!(Keyring::parse(&format!("k1:{K1};k2:{K2}")).unwrap().current().0.as_str(), "k1");
    }

    #[test]
    fn bad_keyrings_are_refused() {
        assert_eq!(Keyring::parse(" \n# nothing\n").unwrap_err(), KeyringError::Empty);
        assert_eq!(Keyring::parse(K1).unwrap_err(), KeyringError::BadEntry);
        assert_eq!(Keyring::parse(&format!("a b:{K1}")).unwrap_err(), KeyringError::BadKeyId);
        assert_eq!(Keyring::parse("k1:c2hvcnQ=").unwrap_err(), KeyringError::BadKey("k1".into()));
        assert_eq!(Keyring::parse(&format!("k1:{K1};k1:{K2}")).unwrap_err(), KeyringError::Duplicate("k1".into()));
    }

    #[test]
    fn debug_never_prints_key_material() {
        let ring = Keyring::parse(&format!("k1:{K1}")).unwrap();
        let text = format!("{ring:?} {:?}", ring.current().1);
        assert!(!text.contains(K1) && !text.contains("AAEC"), "{text}");
        assert!(text.contains("k1"), "{text}");
    }
}
