//! Domain types shared by the gateway's services.
//!
//! Everything here is pure: parsing, formatting and invariants, no I/O. The
//! services build these types at their edges (Kafka payloads, HTTP bodies,
//! database rows) so the rest of the code can trust them.

pub mod account;
pub mod amount;
pub mod card;
pub mod message;
mod message_debug;
pub mod processed;
pub mod rejection;
pub mod secret;
pub mod status;
pub mod transaction_id;

pub use account::AccountId;
pub use amount::{Amount, AmountError};
pub use card::{CardBrand, CardNumber, CardNumberError, MaskedCard};
pub use message::{RawTransaction, ResultMessage, TransactionMessage};
pub use processed::ProcessedTransaction;
pub use rejection::RejectionReason;
pub use secret::{SecretHasher, WeakSecretKey};
pub use status::Status;
pub use transaction_id::TransactionId;
