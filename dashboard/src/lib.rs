//! The dashboard: consumes `transactions_result`, keeps bounded live
//! aggregates (overall and per merchant), and streams them to operators and
//! merchants as at most ten snapshot frames per second over a WebSocket.

pub mod aggregate;
pub mod assets;
pub mod auth;
pub mod board;
pub mod config;
pub mod error;
pub mod feed;
pub mod frame;
pub mod http;
pub mod hub;
pub mod kafka;
pub mod login;
pub mod merchant_login;
pub mod metrics;
pub mod operator_token;
pub mod row;
pub mod series;
pub mod session;
pub mod startup;
pub mod state;
pub mod throttle;
pub mod webhooks;
pub mod ws;
pub mod ws_slots;

pub use config::Config;
pub use startup::{Application, StartupError};
