//! The HTTP surface, with its middleware, on two listeners: the public one
//! (merchants' API, behind the Ingress) and the internal one (admin API,
//! metrics, readiness; never routed from outside).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::metrics::track_http;
use crate::state::AppState;
use crate::{admin_routes, health_routes, request_id, transaction_routes as tx, webhook_routes};

/// The public listener: what merchants reach through the Ingress.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let public = Router::new()
        .route("/v1/transactions", post(tx::post_transaction).get(tx::list_transactions))
        .route("/v1/transactions/batch", post(tx::post_batch))
        .route("/v1/transactions/{id}", get(tx::get_transaction))
        .merge(webhook_routes::router())
        .route("/healthz", get(health_routes::healthz))
        .route("/openapi.yaml", get(health_routes::openapi));
    with_middleware(public, state, max_body_bytes)
}

/// The internal listener (`ADMIN_HTTP_ADDR`): operators, probes, Prometheus.
pub fn internal_router(state: AppState, max_body_bytes: usize) -> Router {
    let internal = Router::new()
        .merge(admin_routes::router())
        .merge(webhook_routes::admin_router())
        .route("/healthz", get(health_routes::healthz))
        .route("/readyz", get(health_routes::readyz))
        .route("/metrics", get(health_routes::metrics));
    with_middleware(internal, state, max_body_bytes)
}

fn with_middleware(routes: Router<AppState>, state: AppState, max_body_bytes: usize) -> Router {
    let metrics = Arc::clone(&state.metrics);
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(metrics, track_http))
        .layer(middleware::from_fn(request_id::propagate))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
