//! The transaction processor: reads `transactions` in batches, applies the
//! approval rules, stores every transaction and publishes each result.

pub mod card_hash;
pub mod config;
pub mod decode;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod pipeline;
pub mod rules;
pub mod startup;
pub mod unseal;

pub use config::Config;
pub use startup::{Application, StartupError};
