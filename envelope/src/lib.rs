//! Card fields on the `transactions` topic are sealed one by one, so the
//! message keeps its shape and field names while the card number, name,
//! expiry and CVV are unreadable to anyone without the key: the broker, its
//! replicas and disks, a consumer of the topic, a copy of its retention.
//!
//! A sealed value is a JSON string `enc:v1:<key-id>:<base64url>` where the
//! base64 holds a 24-byte random nonce and the XChaCha20-Poly1305
//! ciphertext of the field's JSON text. The associated data binds the
//! version, the key id, the transaction id, the account and the field name:
//! a sealed value moved to another message, account or field fails to open.
//!
//! The CVV is sealed the same way but under a keyring of its own, of
//! short-lived keys that are destroyed after the authorization window
//! ([`cvv`]).

pub mod cvv;
mod envelope;
mod field;
mod keyring;
mod shared;

pub use envelope::{is_sealed, open, seal, Binding, OpenError};
pub use field::Field;
pub use keyring::{DataKey, KeyId, Keyring, KeyringError};
pub use shared::{KeyPurpose, KeySource, SharedKeyring, DEVELOPMENT_CVV_KEYRING, DEVELOPMENT_KEYRING};
