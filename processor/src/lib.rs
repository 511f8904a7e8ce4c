//! The transaction processor: reads `transactions` in batches, applies the
//! approval rules, stores every transaction and publishes each result.

pub mod card_hash;
pub mod config;
pub mod created_at;
pub mod decode;
pub mod failure;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod ownership;
pub mod pipeline;
mod publish_stage;
pub mod redact;
pub mod rules;
mod stage_retry;
pub mod startup;
pub mod unseal;
mod write_stage;

pub use config::Config;
pub use startup::{Application, StartupError};
