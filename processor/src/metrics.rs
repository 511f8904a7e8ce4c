//! Prometheus metrics of the processor, counted per batch.

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use service_runtime::metrics::ServiceRegistry;
use transaction_model::{RejectionReason, Status};

/// `stage` label values: one batch is decided, written, then produced.
pub const STAGE_DECIDE: &str = "decide";
pub const STAGE_DB_WRITE: &str = "db_write";
pub const STAGE_PRODUCE: &str = "produce";
/// Batch stages retried on failure (`batch_retries_total{stage}`).
pub const RETRIED_STAGES: [&str; 2] = [STAGE_DB_WRITE, STAGE_PRODUCE];
/// `reason` of approved transactions in `transactions_total`.
pub const NO_REASON: &str = "none";

pub struct Metrics {
    registry: ServiceRegistry,
    pub messages_consumed: IntCounter,
    pub transactions: IntCounterVec,
    pub results_published: IntCounter,
    pub dlq_messages: IntCounter,
    pub plaintext_card_messages: IntCounter,
    pub batch_size: Histogram,
    pub batch_duration: Histogram,
    pub stage_duration: HistogramVec,
    pub batch_retries: IntCounterVec,
    pub permanent_failures: IntCounterVec,
    pub dead_letters_lost: IntCounter,
    pub consumer_lag: IntGaugeVec,
    pub last_batch_timestamp: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = ServiceRegistry::new("processor", env!("CARGO_PKG_VERSION"));
        let r = &registry;
        let metrics = Metrics {
            messages_consumed: r
                .register(IntCounter::new("messages_consumed_total", "Messages read from the transactions topic.")),
            transactions: r.register(IntCounterVec::new(
                Opts::new("transactions_total", "Transactions decided, by status and rejection reason."),
                &["status", "reason"],
            )),
            results_published: r
                .register(IntCounter::new("results_published_total", "Results acknowledged by the broker.")),
            dlq_messages: r
                .register(IntCounter::new("dlq_messages_total", "Dead letters acknowledged by the broker (unreadable messages and isolated permanent failures).")),
            plaintext_card_messages: r.register(IntCounter::new(
                "plaintext_card_messages_total",
                "Messages whose card fields came in clear (a legacy producer), decided or refused.",
            )),
            batch_size: r.register(Histogram::with_opts(
                HistogramOpts::new("batch_size_messages", "Messages per batch.")
                    .buckets(vec![1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0]),
            )),
            batch_duration: r.register(Histogram::with_opts(
                HistogramOpts::new("batch_duration_seconds", "From a batch's first message to its offsets stored.")
                    .buckets(exponential_buckets(0.001, 2.0, 15).expect("static buckets")),
            )),
            stage_duration: r.register(HistogramVec::new(
                HistogramOpts::new("stage_duration_seconds", "Time of one batch stage: decide, db_write, produce.")
                    .buckets(exponential_buckets(0.0005, 2.0, 16).expect("static buckets")),
                &["stage"],
            )),
            batch_retries: r.register(IntCounterVec::new(
                Opts::new("batch_retries_total", "Batch stages retried after a database or broker failure."),
                &["stage"],
            )),
            permanent_failures: r.register(IntCounterVec::new(
                Opts::new(
                    "permanent_failures_total",
                    "Messages isolated after a permanent failure (row refused by the database, record refused by the broker, result not serialisable) and dead-lettered.",
                ),
                &["stage"],
            )),
            dead_letters_lost: r.register(IntCounter::new(
                "dead_letters_lost_total",
                "Messages the broker refused even as a headers-only dead letter (logged with their offset).",
            )),
            consumer_lag: r.register(IntGaugeVec::new(
                Opts::new("consumer_lag_messages", "Messages behind the partition's end (librdkafka statistics)."),
                &["topic", "partition"],
            )),
            last_batch_timestamp: r
                .register(IntGauge::new("last_batch_timestamp_seconds", "Unix time of the last completed batch.")),
            registry,
        };
        metrics.initialise_series();
        metrics
    }

    /// Exposes every known label set at 0 from the start, so that rates and
    /// alerts on them (retries, one rejection reason) see a series before
    /// the first event instead of nothing.
    fn initialise_series(&self) {
        for stage in RETRIED_STAGES {
            self.batch_retries.with_label_values(&[stage]);
            self.permanent_failures.with_label_values(&[stage]);
        }
        self.transactions.with_label_values(&[Status::Approved.as_str(), NO_REASON]);
        for reason in RejectionReason::ALL {
            self.transactions.with_label_values(&[Status::Rejected.as_str(), reason.label()]);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_label_sets_are_exposed_before_any_event() {
        let text = Metrics::new().render();
        for expected in [
            r#"processor_batch_retries_total{stage="db_write"} 0"#,
            r#"processor_batch_retries_total{stage="produce"} 0"#,
            r#"processor_permanent_failures_total{stage="db_write"} 0"#,
            r#"processor_permanent_failures_total{stage="produce"} 0"#,
            "processor_dead_letters_lost_total 0",
            r#"processor_transactions_total{reason="none",status="approved"} 0"#,
            r#"processor_transactions_total{reason="over_limit",status="rejected"} 0"#,
            r#"processor_transactions_total{reason="invalid_card_number",status="rejected"} 0"#,
            r#"processor_build_info{version=""#,
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        let rejected =
            text.lines().filter(|l| l.starts_with("processor_transactions_total{") && l.contains("rejected")).count();
        assert_eq!(rejected, RejectionReason::ALL.len());
    }
}
