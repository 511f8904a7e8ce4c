//! `/v1/transactions`: post one, post a batch, get one, list.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use transaction_model::TransactionId;

use crate::accept::accept;
use crate::auth::AuthenticatedMerchant;
use crate::body::{self, JsonBody};
use crate::cursor;
use crate::decision_wait::{settle, WaitRequest};
use crate::error::{ApiError, ErrorBody};
use crate::fingerprint::{fingerprint, BodyKind, Item};
use crate::idempotency::{run_idempotent, IdempotencyKey, JsonResponse};
use crate::new_transaction::{NewTransaction, TransactionRequest};
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::transaction_resource::TransactionResource;

pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

pub async fn post_transaction(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    merchant: AuthenticatedMerchant,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TransactionRequest>,
) -> Result<Response, ApiError> {
    let new = NewTransaction::try_from(request)?;
    let key = IdempotencyKey::from_headers(&headers)?;
    // The fingerprint (an HMAC of the canonical body) is only compared
    // under a key; without one it would be computed for nothing.
    let print = match key {
        Some(_) => fingerprint(&state.fingerprints, BodyKind::Single, &[Item::Valid(&new)]),
        None => String::new(),
    };
    let account = merchant.account_id;
    let wait = WaitRequest::from_headers(&state, &headers);
    let pending = wait.as_ref().map(|w| w.pending.clone());
    let (task_state, task_account) = (state.clone(), account.clone());
    let mut answer = run_to_completion(async move {
        let (state, account) = (&task_state, &task_account);
        run_idempotent(state, account, key, print, |attempt| async move {
            let mut results =
                accept(state, account, vec![new], &request_id.0, attempt.as_ref(), pending.as_ref()).await?;
            let resource = results.pop().ok_or(ApiError::Internal)??;
            JsonResponse::new(StatusCode::ACCEPTED, &resource)
        })
        .await
    })
    .await?;
    // Waiting happens here, outside the accepting task: a client that hangs
    // up drops its waits at once.
    if answer.json.status == StatusCode::ACCEPTED && (wait.is_some() || answer.replayed) {
        if let Ok(mut resource) = serde_json::from_str::<TransactionResource>(&answer.json.body) {
            if settle(&state, &account, &mut [&mut resource], wait, answer.replayed).await {
                answer.json = JsonResponse::new(StatusCode::CREATED, &resource)?;
            }
        }
    }
    Ok(answer.into_response())
}

/// Runs the accepting part of a POST on its own task: if the client hangs
/// up, axum drops the handler, but a transaction handed to the broker must
/// still be marked and its idempotency record completed, or a retry with the
/// same key would run it twice.
async fn run_to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(work).await.map_err(|e| {
        tracing::error!(error = %e, "accepting task failed");
        ApiError::Internal
    })?
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub transactions: Vec<Box<RawValue>>,
}

/// One item's outcome: `status` is `pending` (accepted), `approved` or
/// `rejected` (decided within the wait asked for), or `error`.
#[derive(Serialize, Deserialize, Debug)]
pub struct BatchItem {
    pub index: usize,
    pub status: String,
    pub transaction: Option<TransactionResource>,
    pub error: Option<BatchItemError>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct BatchItemError {
    #[serde(rename = "type")]
    pub kind: String,
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

impl From<ErrorBody> for BatchItemError {
    fn from(b: ErrorBody) -> Self {
        BatchItemError { kind: b.kind.into(), code: b.code.into(), message: b.message, param: b.param }
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub struct BatchResponse {
    pub accepted: usize,
    pub failed: usize,
    pub results: Vec<BatchItem>,
}

/// Each item is checked on its own: valid ones are produced (all at once,
/// then every delivery report awaited), invalid ones are reported by index.
/// 200 with per-item results, unless the broker took none of the valid ones
/// (503, nothing accepted).
pub async fn post_batch(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    merchant: AuthenticatedMerchant,
    headers: HeaderMap,
    JsonBody(batch): JsonBody<BatchRequest>,
) -> Result<Response, ApiError> {
    let count = batch.transactions.len();
    // Every item costs a token, valid or not; the request's own token was
    // taken at authentication.
    state.charge_rate(&merchant.account_id, count.saturating_sub(1))?;
    if count == 0 || count > state.max_batch_items {
        return Err(ApiError::invalid(
            "invalid_batch_size",
            "transactions",
            format!("transactions must hold 1 to {} items", state.max_batch_items),
        ));
    }
    // Items are judged one by one, but an item that is not even an object
    // makes the whole body the wrong shape.
    if let Some(i) = batch.transactions.iter().position(|raw| !raw.get().starts_with('{')) {
        return Err(ApiError::invalid(
            "invalid_batch_item",
            &format!("transactions[{i}]"),
            format!("transactions[{i}] is not a JSON object"),
        ));
    }
    let parsed: Vec<Result<NewTransaction, ApiError>> = batch
        .transactions
        .iter()
        .map(|raw| body::parse::<TransactionRequest>(raw.get().as_bytes()).and_then(NewTransaction::try_from))
        .collect();
    let key = IdempotencyKey::from_headers(&headers)?;
    let valid = parsed.iter().filter(|p| p.is_ok()).count();
    // Only compared under a key (see `post_transaction`).
    let print = match key {
        Some(_) => {
            let items: Vec<Item<'_>> = parsed
                .iter()
                .zip(&batch.transactions)
                .map(|(p, raw)| match p {
                    Ok(t) => Item::Valid(t),
                    Err(_) => Item::Invalid(raw.get()),
                })
                .collect();
            fingerprint(&state.fingerprints, BodyKind::Batch, &items)
        }
        None => String::new(),
    };
    let account = merchant.account_id;
    let wait = WaitRequest::from_headers(&state, &headers);
    let pending = wait.as_ref().map(|w| w.pending.clone());
    let (task_state, task_account) = (state.clone(), account.clone());
    let mut answer = run_to_completion(async move {
        let (state, account) = (&task_state, &task_account);
        run_idempotent(state, account, key, print, |attempt| async move {
            let mut to_send = Vec::with_capacity(valid);
            let mut slots: Vec<Result<(), ApiError>> = Vec::with_capacity(count);
            for p in parsed {
                match p {
                    Ok(t) => {
                        to_send.push(t);
                        slots.push(Ok(()));
                    }
                    Err(e) => slots.push(Err(e)),
                }
            }
            let mut outcomes =
                accept(state, account, to_send, &request_id.0, attempt.as_ref(), pending.as_ref()).await?.into_iter();
            let mut results = Vec::with_capacity(count);
            let (mut accepted, mut broker_failures) = (0, 0);
            for (index, slot) in slots.into_iter().enumerate() {
                let outcome = match slot {
                    Ok(()) => outcomes.next().ok_or(ApiError::Internal)?,
                    Err(e) => Err(e),
                };
                results.push(match outcome {
                    Ok(resource) => {
                        accepted += 1;
                        BatchItem { index, status: "pending".into(), transaction: Some(resource), error: None }
                    }
                    Err(e) => {
                        broker_failures += usize::from(matches!(e, ApiError::BrokerUnavailable { .. }));
                        BatchItem { index, status: "error".into(), transaction: None, error: Some(e.body().into()) }
                    }
                });
            }
            if accepted == 0 && broker_failures > 0 {
                return Err(ApiError::BrokerUnavailable { retry_after_secs: 2 });
            }
            let mut answer =
                JsonResponse::new(StatusCode::OK, &BatchResponse { accepted, failed: count - accepted, results })?;
            // Under a key, a retry re-sends the whole batch with the same ids
            // (the delivered ones are decided once by id), so the items the
            // broker missed can be retried too.
            answer.retryable = broker_failures > 0;
            Ok(answer)
        })
        .await
    })
    .await?;
    if answer.json.status == StatusCode::OK && (wait.is_some() || answer.replayed) {
        if let Ok(mut batch) = serde_json::from_str::<BatchResponse>(&answer.json.body) {
            let mut pending: Vec<&mut TransactionResource> =
                batch.results.iter_mut().filter_map(|item| item.transaction.as_mut()).collect();
            settle(&state, &account, &mut pending, wait, answer.replayed).await;
            for item in &mut batch.results {
                if let Some(t) = &item.transaction {
                    item.status.clone_from(&t.status);
                }
            }
            answer.json.body = serde_json::to_string(&batch).map_err(|_| ApiError::Internal)?;
        }
    }
    Ok(answer.into_response())
}

pub async fn get_transaction(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    Path(id): Path<String>,
) -> Result<Json<TransactionResource>, ApiError> {
    let not_found = || ApiError::NotFound { code: "transaction_not_found", message: "no such transaction".into() };
    let id = TransactionId::try_from(id).map_err(|_| not_found())?;
    let view = state.store.accepted.find_accepted(&merchant.account_id, &id).await?.ok_or_else(not_found)?;
    Ok(Json(TransactionResource::from_view(&view)))
}

/// Unknown parameters are refused, like unknown body fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct TransactionPage {
    pub data: Vec<TransactionResource>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

pub async fn list_transactions(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<TransactionPage>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::BadRequest {
        code: "invalid_query",
        message: "the query string could not be parsed".into(),
        param: None,
    })?;
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
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(cursor::decode(text).ok_or_else(|| ApiError::BadRequest {
            code: "invalid_cursor",
            message: "cursor is not one this API returned".into(),
            param: Some("cursor".into()),
        })?),
    };
    // One extra row tells whether there is a next page.
    let mut views = state.store.accepted.list_accepted(&merchant.account_id, limit + 1, after.as_ref()).await?;
    let more = views.len() > limit;
    views.truncate(limit);
    let next_cursor = if more {
        views.last().map(|v| {
            cursor::encode(&transaction_store::ListCursor {
                created_at: v.accepted.created_at,
                id: v.accepted.id.clone(),
            })
        })
    } else {
        None
    };
    Ok(Json(TransactionPage { data: views.iter().map(TransactionResource::from_view).collect(), next_cursor }))
}
