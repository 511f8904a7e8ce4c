//! Start-up plumbing shared by the processor, the API and the dashboard.

pub mod kafka_options;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
