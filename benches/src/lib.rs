//! Workload generation and Kafka helpers shared by the benchmark binaries.

pub mod kafka;
pub mod steady;
pub mod workload;
