//! Prometheus metrics of the notifier (prefix `notifier_`).

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use service_runtime::metrics::ServiceRegistry;
use transaction_store::webhooks::OUTCOMES;

/// `results_skipped_total{reason}`.
pub const SKIP_INVALID: &str = "invalid";
pub const SKIP_NO_MERCHANT: &str = "no_merchant";
/// `deliveries_completed_total{result}`.
pub const RESULT_DELIVERED: &str = "delivered";
pub const RESULT_EXHAUSTED: &str = "exhausted";
/// `stage_retries_total{stage}`.
pub const STAGE_RECORD: &str = "record";
pub const STAGE_COMPLETE: &str = "complete";
pub const STAGE_DISPATCH: &str = "dispatch";

pub struct Metrics {
    registry: ServiceRegistry,
    pub results_consumed: IntCounter,
    pub results_skipped: IntCounterVec,
    pub deliveries_recorded: IntCounter,
    pub stage_retries: IntCounterVec,
    pub attempts: IntCounterVec,
    pub attempt_duration: Histogram,
    pub deliveries_completed: IntCounterVec,
    pub decision_to_delivery: Histogram,
    pub queue_pending: IntGauge,
    pub queue_oldest_age: IntGauge,
    pub queue_due: IntGauge,
    pub queue_oldest_due_age: IntGauge,
    pub attempts_in_flight: IntGauge,
    pub endpoints_disabled: IntCounter,
    pub consumer_lag: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = ServiceRegistry::new("notifier", env!("CARGO_PKG_VERSION"));
        let r = &registry;
        let latency = exponential_buckets(0.005, 2.0, 14).unwrap_or_default();
        let metrics = Metrics {
            results_consumed: r.register(IntCounter::new("results_consumed_total", "Result messages read.")),
            results_skipped: r.register(IntCounterVec::new(
                Opts::new("results_skipped_total", "Results that make no event: unreadable, or no merchant."),
                &["reason"],
            )),
            deliveries_recorded: r.register(IntCounter::new(
                "deliveries_recorded_total",
                "Deliveries written to the outbox (new rows; re-read results add none).",
            )),
            stage_retries: r.register(IntCounterVec::new(
                Opts::new("stage_retries_total", "Database calls retried: record (offsets held), complete, dispatch."),
                &["stage"],
            )),
            attempts: r.register(IntCounterVec::new(
                Opts::new("attempts_total", "HTTP delivery attempts by outcome."),
                &["outcome"],
            )),
            attempt_duration: r.register(Histogram::with_opts(
                HistogramOpts::new("attempt_duration_seconds", "Latency of one delivery attempt.")
                    .buckets(latency.clone()),
            )),
            deliveries_completed: r.register(IntCounterVec::new(
                Opts::new("deliveries_completed_total", "Deliveries finished: delivered, or schedule exhausted."),
                &["result"],
            )),
            decision_to_delivery: r.register(Histogram::with_opts(
                HistogramOpts::new(
                    "decision_to_delivery_seconds",
                    "From the processor's decision (processed_at) to the merchant's 2xx.",
                )
                .buckets(exponential_buckets(0.01, 2.0, 22).unwrap_or_default()),
            )),
            queue_pending: r.register(IntGauge::new(
                "queue_pending_deliveries",
                "Deliveries not yet delivered to enabled endpoints (due or waiting to retry).",
            )),
            queue_oldest_age: r.register(IntGauge::new(
                "queue_oldest_pending_age_seconds",
                "Age of the oldest pending delivery to an enabled endpoint; 0 when none.",
            )),
            queue_due: r.register(IntGauge::new(
                "queue_due_deliveries",
                "Pending deliveries due now and not yet being attempted (the notifier's backlog).",
            )),
            queue_oldest_due_age: r.register(IntGauge::new(
                "queue_oldest_due_age_seconds",
                "How long the oldest due delivery has waited for its attempt; 0 when none.",
            )),
            attempts_in_flight: r.register(IntGauge::new("attempts_in_flight", "HTTP attempts running now.")),
            endpoints_disabled: r.register(IntCounter::new(
                "endpoints_disabled_total",
                "Endpoints disabled automatically after failing for the whole disable period.",
            )),
            consumer_lag: r.register(IntGaugeVec::new(
                Opts::new("consumer_lag_messages", "Messages behind the partition's end (librdkafka statistics)."),
                &["topic", "partition"],
            )),
            registry,
        };
        for outcome in OUTCOMES {
            metrics.attempts.with_label_values(&[outcome]);
        }
        for result in [RESULT_DELIVERED, RESULT_EXHAUSTED] {
            metrics.deliveries_completed.with_label_values(&[result]);
        }
        for reason in [SKIP_INVALID, SKIP_NO_MERCHANT] {
            metrics.results_skipped.with_label_values(&[reason]);
        }
        for stage in [STAGE_RECORD, STAGE_COMPLETE, STAGE_DISPATCH] {
            metrics.stage_retries.with_label_values(&[stage]);
        }
        metrics
    }

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
    fn every_label_set_is_exposed_from_the_start() {
        let text = Metrics::new().render();
        for expected in [
            r#"notifier_attempts_total{outcome="timeout"} 0"#,
            r#"notifier_deliveries_completed_total{result="delivered"} 0"#,
            r#"notifier_stage_retries_total{stage="record"} 0"#,
            "notifier_queue_oldest_pending_age_seconds 0",
            "notifier_decision_to_delivery_seconds_bucket",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }
}
