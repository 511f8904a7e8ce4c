//! Workload generation and Kafka helpers shared by the benchmark binaries.

pub mod kafka;
pub mod workload;
