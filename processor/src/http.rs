//! /healthz, /readyz and /metrics.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use rdkafka::producer::{FutureProducer, Producer};
use serde_json::json;
use transaction_store::TransactionRepository;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    /// Set once the database is open; until then `/readyz` says so.
    pub repo: Arc<OnceLock<Arc<dyn TransactionRepository>>>,
    pub producer: FutureProducer,
    pub results_topic: String,
}

/// `/healthz` answers as soon as the process runs (liveness, independent of
/// the database and the broker); `/readyz` reflects both.
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

/// Ready when the database answers and the broker knows the results topic.
async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let timeout = Duration::from_secs(2);
    let database = match state.repo.get() {
        None => Err("not open yet".to_owned()),
        Some(repo) => match tokio::time::timeout(timeout, repo.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        },
    };
    let producer = state.producer.clone();
    let topic = state.results_topic.clone();
    let broker = tokio::task::spawn_blocking(move || {
        producer.client().fetch_metadata(Some(&topic), timeout).map(|_| ()).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let status = if database.is_ok() && broker.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let show = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.clone(),
    };
    (status, Json(json!({ "database": show(&database), "broker": show(&broker) })))
}
