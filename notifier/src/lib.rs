//! The webhook notifier: consumes decisions from `transactions_result` in
//! its own consumer group, records one delivery per merchant endpoint in the
//! outbox before committing offsets, and delivers each one signed per the
//! Standard Webhooks scheme, retrying on a schedule until delivered.

pub mod clock;
pub mod config;
pub mod dispatcher;
pub mod event;
pub mod http;
pub mod intake;
pub mod kafka;
pub mod metrics;
pub mod retry;
pub mod schedule;
pub mod sender;
pub mod signing;
pub mod startup;
pub mod url_policy;

pub use config::Config;
pub use startup::{Application, StartupError};
