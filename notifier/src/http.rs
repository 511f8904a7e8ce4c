//! /healthz, /readyz and /metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use transaction_store::WebhookRepository;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    pub repo: Arc<dyn WebhookRepository>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// Ready when the database answers (the outbox is the notifier's state).
async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(2), state.repo.queue_stats(time::OffsetDateTime::now_utc())).await {
        Ok(Ok(_)) => (StatusCode::OK, Json(json!({ "database": "ok" }))),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "database": e.to_string() }))),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "database": "timed out" }))),
    }
}
