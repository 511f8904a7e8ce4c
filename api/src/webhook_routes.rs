//! `/v1/webhook-endpoints`: merchants register where their decisions are
//! pushed (see the `notifier` crate), rotate signing secrets, read the
//! delivery log and redeliver. Every lookup is scoped to the authenticated
//! merchant: another merchant's endpoint is 404.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use notifier::event::EVENT_TYPES;
use notifier::signing::generate_secret;
use notifier::url_policy::UrlError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use transaction_model::AccountId;
use transaction_store::webhooks::{Attempt, Delivery, DeliveryStatus, EndpointStatus, EndpointUpdate, WebhookEndpoint};

use crate::auth::AuthenticatedMerchant;
use crate::body::{self, JsonBody};
use crate::error::ApiError;
use crate::operator::Operator;
use crate::state::AppState;
use crate::transaction_resource::rfc3339;

/// Endpoints one merchant may register.
pub const MAX_ENDPOINTS_PER_MERCHANT: usize = 10;
/// Default and longest overlap of a rotated secret.
pub const DEFAULT_OVERLAP_SECS: u64 = 24 * 3600;
pub const MAX_OVERLAP_SECS: u64 = 7 * 24 * 3600;
const MAX_DESCRIPTION: usize = 255;
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

/// The merchants' routes (public listener).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhook-endpoints", get(list).post(create))
        .route("/v1/webhook-endpoints/{id}", get(show).patch(update))
        .route("/v1/webhook-endpoints/{id}/disable", post(disable))
        .route("/v1/webhook-endpoints/{id}/enable", post(enable))
        .route("/v1/webhook-endpoints/{id}/rotate-secret", post(rotate))
        .route("/v1/webhook-endpoints/{id}/deliveries", get(deliveries))
        .route("/v1/webhook-endpoints/{id}/deliveries/{event_id}", get(delivery))
        .route("/v1/webhook-endpoints/{id}/deliveries/{event_id}/redeliver", post(redeliver))
}

/// The operator's route (internal listener, with the admin API).
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/v1/admin/webhook-endpoints/failing", get(failing))
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct EndpointResource {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    /// `merchant` or `failing` when disabled.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed; null when healthy.
    pub failing_since: Option<String>,
    /// Until when the previous secret still signs (rotation overlap).
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl EndpointResource {
    fn of(e: &WebhookEndpoint, now: OffsetDateTime) -> Self {
        EndpointResource {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            status: e.status.as_str().into(),
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(rfc3339),
            previous_secret_expires_at: e.previous_secret_expires_at.filter(|t| *t > now).map(rfc3339),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// The only responses that carry a secret: creation and rotation, once.
#[derive(Serialize, Deserialize, Debug)]
pub struct EndpointWithSecret {
    pub endpoint: EndpointResource,
    pub secret: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct EndpointList {
    pub data: Vec<EndpointResource>,
}

/// An endpoint in the operator's list of failing ones.
#[derive(Serialize, Deserialize, Debug)]
pub struct FailingEndpoint {
    pub account_id: String,
    #[serde(flatten)]
    pub endpoint: EndpointResource,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct FailingList {
    pub data: Vec<FailingEndpoint>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct DeliveryResource {
    /// The `webhook-id` header: the same on every attempt.
    pub event_id: String,
    pub event_type: String,
    pub transaction_id: String,
    /// `pending`, `delivered` or `failed` (schedule used up).
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
}

impl From<&Delivery> for DeliveryResource {
    fn from(d: &Delivery) -> Self {
        DeliveryResource {
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            transaction_id: d.transaction_id.clone(),
            status: d.status.as_str().into(),
            attempts: d.attempts,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then(|| rfc3339(d.next_attempt_at)),
            created_at: rfc3339(d.created_at),
            delivered_at: d.delivered_at.map(rfc3339),
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
        }
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub struct AttemptResource {
    pub attempt: u32,
    pub started_at: String,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    /// `success`, `http_error`, `timeout`, `connect_error` or `refused`.
    pub outcome: String,
    pub error: Option<String>,
}

impl From<&Attempt> for AttemptResource {
    fn from(a: &Attempt) -> Self {
        AttemptResource {
            attempt: a.attempt,
            started_at: rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            outcome: a.outcome.clone(),
            error: a.error.clone(),
        }
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryResource,
    /// The body sent, as JSON.
    pub payload: serde_json::Value,
    pub attempt_log: Vec<AttemptResource>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct DeliveryList {
    pub data: Vec<DeliveryResource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    pub url: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    #[serde(default)]
    pub overlap_seconds: Option<u64>,
}

#[derive(Deserialize)]
pub struct DeliveryQuery {
    pub status: Option<String>,
    pub limit: Option<String>,
}

fn url_error(e: UrlError) -> ApiError {
    ApiError::invalid(e.code(), "url", e.to_string())
}

/// Longest wait for the host's DNS answer while registering.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

async fn checked_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, state.webhook_policy.check(url)).await {
        Ok(checked) => checked.map(|u| u.to_string()).map_err(url_error),
        Err(_) => Err(url_error(UrlError::Unresolvable)),
    }
}

fn checked_description(d: Option<String>) -> Result<String, ApiError> {
    let d = d.unwrap_or_default();
    if d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_description",
            "description",
            format!("description must be at most {MAX_DESCRIPTION} characters, without control characters"),
        ));
    }
    Ok(d)
}

fn checked_event_types(types: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let Some(types) = types else {
        return Ok(EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect());
    };
    if types.is_empty() || types.iter().any(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(ApiError::invalid(
            "invalid_event_types",
            "event_types",
            format!("event_types must be a non-empty list of {}", EVENT_TYPES.join(", ")),
        ));
    }
    // In the documented order, without repeats.
    Ok(EVENT_TYPES.iter().filter(|t| types.iter().any(|u| u == *t)).map(|t| (*t).to_owned()).collect())
}

fn not_found() -> ApiError {
    ApiError::NotFound { code: "webhook_endpoint_not_found", message: "no such webhook endpoint".into() }
}

async fn find(state: &AppState, account: &AccountId, id: &str) -> Result<WebhookEndpoint, ApiError> {
    state.store.webhooks.find_endpoint(account, id).await?.ok_or_else(not_found)
}

async fn create(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    JsonBody(request): JsonBody<CreateEndpoint>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), ApiError> {
    let description = checked_description(request.description)?;
    let event_types = checked_event_types(request.event_types)?;
    let url = checked_url(&state, &request.url).await?;
    let repo = &state.store.webhooks;
    if repo.list_endpoints(&merchant.account_id).await?.len() >= MAX_ENDPOINTS_PER_MERCHANT {
        return Err(ApiError::invalid(
            "too_many_endpoints",
            "url",
            format!("at most {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints per account"),
        ));
    }
    let now = transaction_store::truncate_to_micros(OffsetDateTime::now_utc());
    let endpoint = WebhookEndpoint {
        id: format!("ep_{}", uuid::Uuid::new_v4().simple()),
        account_id: merchant.account_id,
        url,
        description,
        event_types,
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        secret: generate_secret(),
        previous_secret: None,
        previous_secret_expires_at: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    repo.create_endpoint(&endpoint).await?;
    tracing::info!(account = %endpoint.account_id, endpoint = %endpoint.id, "webhook endpoint created");
    let resource = EndpointResource::of(&endpoint, now);
    Ok((StatusCode::CREATED, Json(EndpointWithSecret { endpoint: resource, secret: endpoint.secret })))
}

async fn list(State(state): State<AppState>, merchant: AuthenticatedMerchant) -> Result<Json<EndpointList>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let endpoints = state.store.webhooks.list_endpoints(&merchant.account_id).await?;
    Ok(Json(EndpointList { data: endpoints.iter().map(|e| EndpointResource::of(e, now)).collect() }))
}

async fn show(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    Path(id): Path<String>,
) -> Result<Json<EndpointResource>, ApiError> {
    let e = find(&state, &merchant.account_id, &id).await?;
    Ok(Json(EndpointResource::of(&e, OffsetDateTime::now_utc())))
}

async fn update(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateEndpoint>,
) -> Result<Json<EndpointResource>, ApiError> {
    find(&state, &merchant.account_id, &id).await?;
    let description = request.description.map(|d| checked_description(Some(d))).transpose()?;
    let event_types = request.event_types.map(|t| checked_event_types(Some(t))).transpose()?;
    let url = match request.url {
        Some(u) => Some(checked_url(&state, &u).await?),
        None => None,
    };
    let now = OffsetDateTime::now_utc();
    let update = EndpointUpdate { url, description, event_types };
    let e =
        state.store.webhooks.update_endpoint(&merchant.account_id, &id, &update, now).await?.ok_or_else(not_found)?;
    Ok(Json(EndpointResource::of(&e, now)))
}

async fn set_enabled(
    state: &AppState,
    account: &AccountId,
    id: &str,
    enabled: bool,
) -> Result<Json<EndpointResource>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let e = state.store.webhooks.set_endpoint_enabled(account, id, enabled, now).await?.ok_or_else(not_found)?;
    Ok(Json(EndpointResource::of(&e, now)))
}

async fn disable(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    Path(id): Path<String>,
) -> Result<Json<EndpointResource>, ApiError> {
    set_enabled(&state, &merchant.account_id, &id, false).await
}

/// Also how a merchant revives an endpoint disabled for failing.
async fn enable(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    Path(id): Path<String>,
) -> Result<Json<EndpointResource>, ApiError> {
    set_enabled(&state, &merchant.account_id, &id, true).await
}

/// A new secret, shown once; the old one keeps signing (both signatures
/// are sent) for `overlap_seconds` (default 24 h, at most 7 days; 0 ends it
/// at once). The body is optional.
async fn rotate(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    let request: RotateSecret =
        if raw.iter().all(u8::is_ascii_whitespace) { RotateSecret::default() } else { body::parse(&raw)? };
    let overlap = request.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECS);
    if overlap > MAX_OVERLAP_SECS {
        return Err(ApiError::invalid(
            "invalid_overlap",
            "overlap_seconds",
            format!("overlap_seconds must be from 0 to {MAX_OVERLAP_SECS}"),
        ));
    }
    find(&state, &merchant.account_id, &id).await?;
    let now = OffsetDateTime::now_utc();
    let until = now + std::time::Duration::from_secs(overlap);
    let secret = generate_secret();
    let e = state
        .store
        .webhooks
        .rotate_endpoint_secret(&merchant.account_id, &id, &secret, until, now)
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(account = %e.account_id, endpoint = %e.id, overlap, "webhook secret rotated");
    Ok(Json(EndpointWithSecret { endpoint: EndpointResource::of(&e, now), secret }))
}

async fn deliveries(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    Path(id): Path<String>,
    query: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<DeliveryList>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::BadRequest {
        code: "invalid_query",
        message: "the query string could not be parsed".into(),
        param: None,
    })?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| ApiError::BadRequest {
            code: "invalid_status",
            message: "status must be pending, delivered or failed".into(),
            param: Some("status".into()),
        })?),
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => {
            text.parse::<usize>().ok().filter(|l| (1..=MAX_PAGE).contains(l)).ok_or_else(|| ApiError::BadRequest {
                code: "invalid_limit",
                message: format!("limit must be an integer from 1 to {MAX_PAGE}"),
                param: Some("limit".into()),
            })?
        }
    };
    find(&state, &merchant.account_id, &id).await?;
    let rows = state.store.webhooks.list_deliveries(&merchant.account_id, &id, status, limit).await?;
    Ok(Json(DeliveryList { data: rows.iter().map(DeliveryResource::from).collect() }))
}

async fn delivery(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let (d, attempts) = state
        .store
        .webhooks
        .find_delivery(&merchant.account_id, &id, &event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound { code: "delivery_not_found", message: "no such delivery".into() })?;
    Ok(Json(DeliveryDetail {
        delivery: DeliveryResource::from(&d),
        payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
        attempt_log: attempts.iter().map(AttemptResource::from).collect(),
    }))
}

/// Sends the event again now (same `webhook-id`), whatever its status.
async fn redeliver(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryResource>), ApiError> {
    let endpoint = find(&state, &merchant.account_id, &id).await?;
    if endpoint.status != EndpointStatus::Enabled {
        return Err(ApiError::Conflict {
            code: "webhook_endpoint_disabled",
            message: "enable the endpoint before redelivering to it".into(),
        });
    }
    let repo = &state.store.webhooks;
    let not_found = || ApiError::NotFound { code: "delivery_not_found", message: "no such delivery".into() };
    if !repo.redeliver(&merchant.account_id, &id, &event_id, OffsetDateTime::now_utc()).await? {
        return Err(not_found());
    }
    let (d, _) = repo.find_delivery(&merchant.account_id, &id, &event_id).await?.ok_or_else(not_found)?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryResource::from(&d))))
}

/// Operators: every endpoint failing now or disabled for failing.
async fn failing(State(state): State<AppState>, _: Operator) -> Result<Json<FailingList>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let endpoints = state.store.webhooks.failing_endpoints().await?;
    Ok(Json(FailingList {
        data: endpoints
            .iter()
            .map(|e| FailingEndpoint { account_id: e.account_id.to_string(), endpoint: EndpointResource::of(e, now) })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_default_to_all_and_are_checked() {
        assert_eq!(checked_event_types(None).unwrap(), ["transaction.approved", "transaction.rejected"]);
        assert_eq!(
            checked_event_types(Some(vec!["transaction.rejected".into(), "transaction.rejected".into()])).unwrap(),
            ["transaction.rejected"]
        );
        assert!(checked_event_types(Some(vec![])).is_err());
        assert!(checked_event_types(Some(vec!["transaction.created".into()])).is_err());
    }

    #[test]
    fn descriptions_are_bounded() {
        assert_eq!(checked_description(None).unwrap(), "");
        assert!(checked_description(Some("x".repeat(256))).is_err());
        assert!(checked_description(Some("a\nb".into())).is_err());
    }
}
