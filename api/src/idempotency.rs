//! `Idempotency-Key` on POSTs: same key and body replay the first response;
//! a different body is 422; a request still running with the key is 409.
//! Scoped per merchant, kept 24 hours, stored in the database so replicas
//! share it.

use std::future::Future;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use transaction_model::AccountId;
use transaction_store::{IdempotencyBegin, IdempotencyTimes, StoredResponse};

use crate::error::ApiError;
use crate::state::AppState;
use crate::transaction_ids::KeyedAttempt;

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// An in-flight key older than this is assumed abandoned by a crashed
/// replica; it is well above the longest request (delivery timeout).
pub const IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_KEY_LEN: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` without the header; 400 when it is present but not 1 to 255
    /// visible ASCII characters.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get(&IDEMPOTENCY_KEY) else {
            return Ok(None);
        };
        let bad = || ApiError::BadRequest {
            code: "invalid_idempotency_key",
            message: format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            param: Some("Idempotency-Key".into()),
        };
        let text = value.to_str().map_err(|_| bad())?;
        if text.is_empty() || text.len() > MAX_KEY_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        Ok(Some(IdempotencyKey(text.to_owned())))
    }
}

/// A JSON response that can be stored and replayed byte for byte.
pub struct JsonResponse {
    pub status: StatusCode,
    pub body: String,
    /// Not stored for replay: part of the work failed in a way a retry may
    /// fix (a batch item the broker did not acknowledge).
    pub retryable: bool,
}

impl JsonResponse {
    pub fn new<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_string(value).map_err(|_| ApiError::Internal)?;
        Ok(JsonResponse { status, body, retryable: false })
    }
}

impl IntoResponse for JsonResponse {
    fn into_response(self) -> Response {
        (self.status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], self.body).into_response()
    }
}

/// An answer, fresh or replayed from an earlier request with the same key.
pub struct Answer {
    pub json: JsonResponse,
    pub replayed: bool,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let replayed = self.replayed;
        let mut response = self.json.into_response();
        if replayed {
            response.headers_mut().insert(IDEMPOTENT_REPLAYED.clone(), HeaderValue::from_static("true"));
        }
        response
    }
}

/// Runs `work` at most once per (merchant, key, body). Only successful
/// answers are stored: an error (broker or database down) releases the key
/// so that the client's retry runs again, with the same [`KeyedAttempt`]
/// and so the same transaction ids.
pub async fn run_idempotent<F, Fut>(
    state: &AppState,
    account: &AccountId,
    key: Option<IdempotencyKey>,
    fingerprint: String,
    work: F,
) -> Result<Answer, ApiError>
where
    F: FnOnce(Option<KeyedAttempt>) -> Fut,
    Fut: Future<Output = Result<JsonResponse, ApiError>>,
{
    let Some(IdempotencyKey(key)) = key else {
        return work(None).await.map(|json| Answer { json, replayed: false });
    };
    let times = IdempotencyTimes { now: OffsetDateTime::now_utc(), ttl: TTL, in_flight_timeout: IN_FLIGHT_TIMEOUT };
    let since = match state.store.idempotency.begin_idempotent(account, &key, &fingerprint, times).await? {
        IdempotencyBegin::Started { since } => since,
        IdempotencyBegin::InFlight => {
            return Err(ApiError::Conflict {
                code: "idempotency_key_in_flight",
                message: "a request with this Idempotency-Key is still being processed; retry later".into(),
            })
        }
        IdempotencyBegin::Mismatch => return Err(ApiError::IdempotencyMismatch),
        IdempotencyBegin::Completed(stored) => {
            state.metrics.idempotent_replays.inc();
            let status = StatusCode::from_u16(stored.status).map_err(|_| ApiError::Internal)?;
            return Ok(Answer { json: JsonResponse { status, body: stored.body, retryable: false }, replayed: true });
        }
    };
    match work(Some(KeyedAttempt { key: key.clone(), since })).await {
        Ok(answer) if answer.retryable => {
            if let Err(release) = state.store.idempotency.release_idempotent(account, &key).await {
                tracing::warn!(error = %release, "could not release the idempotency key");
            }
            Ok(Answer { json: answer, replayed: false })
        }
        Ok(answer) => {
            let stored = StoredResponse { status: answer.status.as_u16(), body: answer.body.clone() };
            if let Err(e) =
                state.store.idempotency.complete_idempotent(account, &key, &stored, OffsetDateTime::now_utc()).await
            {
                // The work is done and must be answered; a retry with the key
                // gets 409 until the in-flight record times out.
                tracing::warn!(error = %e, "could not store the idempotent response");
            }
            Ok(Answer { json: answer, replayed: false })
        }
        Err(e) => {
            if let Err(release) = state.store.idempotency.release_idempotent(account, &key).await {
                tracing::warn!(error = %release, "could not release the idempotency key");
            }
            Err(e)
        }
    }
}
