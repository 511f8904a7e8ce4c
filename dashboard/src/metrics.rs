//! Prometheus metrics of the dashboard, prefix `dashboard`.

use prometheus::{IntCounter, IntGauge};
use service_runtime::metrics::ServiceRegistry;

pub struct Metrics {
    registry: ServiceRegistry,
    pub ws_clients: IntGauge,
    pub ws_frames_sent: IntCounter,
    pub ws_frames_dropped: IntCounter,
    pub results_consumed: IntCounter,
    pub results_invalid: IntCounter,
    pub merchants_tracked: IntGauge,
    pub logins_failed: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = ServiceRegistry::new("dashboard", env!("CARGO_PKG_VERSION"));
        let r = &registry;
        Metrics {
            ws_clients: r.register(IntGauge::new("ws_clients", "WebSocket clients connected now.")),
            ws_frames_sent: r
                .register(IntCounter::new("ws_frames_sent_total", "Snapshot frames written to WebSocket clients.")),
            ws_frames_dropped: r.register(IntCounter::new(
                "ws_frames_dropped_total",
                "Snapshot frames a slow client never received because a newer one replaced them.",
            )),
            results_consumed: r
                .register(IntCounter::new("results_consumed_total", "Messages read from the results topic.")),
            results_invalid: r.register(IntCounter::new(
                "results_invalid_total",
                "Result messages that could not be decoded and were skipped.",
            )),
            merchants_tracked: r.register(IntGauge::new("merchants_tracked", "Merchants with aggregates in memory.")),
            logins_failed: r.register(IntCounter::new("logins_failed_total", "Rejected login attempts.")),
            registry,
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
