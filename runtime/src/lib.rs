//! Start-up plumbing shared by the processor, the API and the dashboard.

pub mod client_ip;
pub mod dev_keys;
pub mod http_server;
pub mod kafka_options;
pub mod limiter;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
