//! /healthz, /readyz, /metrics and /openapi.yaml: no authentication.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::state::AppState;

pub const OPENAPI: &str = include_str!("../openapi.yaml");

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and the broker knows the topic. The
/// answer says only `ok` / `unavailable` per dependency; the reason is logged.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let timeout = Duration::from_secs(2);
    let database = match tokio::time::timeout(timeout, state.store.transactions.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    let broker = state.publisher.check_broker(timeout).await;
    let status = if database.is_ok() && broker.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let show = |what: &str, r: &Result<(), String>| match r {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(dependency = what, error = %e, "not ready");
            "unavailable"
        }
    };
    (status, Json(json!({ "database": show("database", &database), "broker": show("broker", &broker) })))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI)
}
