//! Prometheus metrics of the API (prefix `api`): RED per route, plus
//! accepted transactions and the reasons requests were turned away.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
};
use service_runtime::metrics::ServiceRegistry;

pub struct Metrics {
    registry: ServiceRegistry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub transactions_accepted: IntCounter,
    pub delivery_failures: IntCounter,
    pub auth_failures: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub idempotent_replays: IntCounter,
    pub decision_waits: IntCounterVec,
    pub decision_wait_duration: Histogram,
    pub decision_results_read: IntCounter,
    pub decision_results_unusable: IntCounter,
    pub decision_waiters: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = ServiceRegistry::new("api", env!("CARGO_PKG_VERSION"));
        let r = &registry;
        Metrics {
            http_requests: r.register(IntCounterVec::new(
                Opts::new("http_requests_total", "HTTP requests by route template, method and status."),
                &["route", "method", "status"],
            )),
            http_duration: r.register(HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request latency by route template and status.",
                )
                .buckets(exponential_buckets(0.0005, 2.0, 16).expect("static buckets")),
                &["route", "status"],
            )),
            transactions_accepted: r.register(IntCounter::new(
                "transactions_accepted_total",
                "Transactions acknowledged by the broker and answered 202.",
            )),
            delivery_failures: r.register(IntCounter::new(
                "broker_delivery_failures_total",
                "Transactions the broker did not acknowledge in time.",
            )),
            auth_failures: r.register(IntCounterVec::new(
                Opts::new("auth_failures_total", "Rejected authentications by reason."),
                &["reason"],
            )),
            rate_limited: r.register(IntCounterVec::new(
                Opts::new("rate_limited_total", "Requests answered 429, by limiter."),
                &["limiter"],
            )),
            idempotent_replays: r.register(IntCounter::new(
                "idempotent_replays_total",
                "Responses replayed for a repeated Idempotency-Key.",
            )),
            decision_waits: r.register(IntCounterVec::new(
                Opts::new(
                    "decision_waits_total",
                    "Transactions a request waited for (Prefer: wait), by outcome: decided, timed_out, \
                     unregistered (too many waiters), foreign (a result naming another account).",
                ),
                &["outcome"],
            )),
            decision_wait_duration: r.register(Histogram::with_opts(
                HistogramOpts::new("decision_wait_seconds", "Time requests spent waiting for decisions.")
                    .buckets(exponential_buckets(0.0005, 2.0, 16).expect("static buckets")),
            )),
            decision_results_read: r
                .register(IntCounter::new("decision_results_read_total", "Result messages read for decision waits.")),
            decision_results_unusable: r.register(IntCounter::new(
                "decision_results_unusable_total",
                "Awaited result messages that could not be used (malformed, or key and id differ).",
            )),
            decision_waiters: r.register(IntGauge::new(
                "decision_waiters",
                "Transactions requests are waiting for now (Prefer: wait).",
            )),
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

/// Middleware counting every request by its route template (never the raw
/// path, which would hold ids and grow without bound).
pub async fn track_http(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    // Clients may send any method name: only standard ones become labels.
    let method = match *request.method() {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::PATCH | Method::HEAD | Method::OPTIONS => {
            request.method().as_str()
        }
        _ => "other",
    }
    .to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    // Status is bounded (the handlers answer a fixed set of codes), so it can
    // split latency: a fast 401 must not hide a slow 202.
    let status = response.status();
    metrics.http_duration.with_label_values(&[&route, status.as_str()]).observe(start.elapsed().as_secs_f64());
    metrics.http_requests.with_label_values(&[&route, &method, status.as_str()]).inc();
    response
}
