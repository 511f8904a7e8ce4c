//! Routes: the page, login, the WebSocket, the failing webhook endpoints, and /healthz, /readyz, /metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rdkafka::consumer::Consumer as _;
use serde_json::json;

use crate::state::AppState;
use crate::{assets, login, webhooks, ws};

/// Everything the page needs comes from this origin; nothing may frame it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::app_js))
        .route("/app.css", get(assets::app_css))
        .route("/api/session", post(login::login))
        .route("/api/session/renew", post(login::renew))
        .route("/api/webhook-endpoints/failing", get(webhooks::failing))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// Ready when the broker answers and knows the results topic. Answers only
/// `ok` / `unavailable`, never the error's text.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let timeout = Duration::from_secs(2);
    let consumer = state.consumer.clone();
    let topic = state.results_topic.clone();
    let broker = tokio::task::spawn_blocking(move || {
        let metadata = consumer.client().fetch_metadata(Some(&topic), timeout).map_err(|e| e.to_string())?;
        match metadata.topics().first() {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
            _ => Err(format!("topic {topic:?} does not exist")),
        }
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let assigned = state.consumer.context().assigned_partitions();
    let status = if broker.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    // The reason goes to the log, never into the answer.
    let broker = match broker {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "not ready: broker");
            "unavailable"
        }
    };
    (status, Json(json!({ "broker": broker, "assigned_partitions": assigned })))
}
