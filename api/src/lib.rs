//! The ingest API: merchants authenticate with account id and secret, post
//! card transactions, and the API produces them to Kafka for the processor.
//! It checks the shape of requests only; approval is the processor's job.

pub mod accept;
pub mod account_admin;
pub mod account_cache;
pub mod admin_routes;
pub mod auth;
pub mod auth_failures;
pub mod body;
pub mod cli;
pub mod coalesced_writes;
pub mod config;
pub mod cursor;
pub mod decision_wait;
pub mod decisions;
pub mod delivered_marks;
pub mod error;
pub mod fingerprint;
pub mod health_routes;
pub mod housekeeping;
pub mod idempotency;
pub mod metrics;
pub mod new_transaction;
pub mod operator;
pub mod publisher;
pub mod rate_limit;
pub mod request_id;
pub mod results_listener;
pub mod routes;
pub mod sealed_message;
pub mod secret;
pub mod startup;
pub mod state;
pub mod transaction_ids;
pub mod transaction_resource;
pub mod transaction_routes;
pub mod webhook_routes;

pub use config::Config;
pub use startup::{Application, StartupError};
