//! `GET /api/webhook-endpoints/failing`: webhook endpoints failing now or
//! disabled for failing. The operator sees every merchant's; a merchant
//! only their own, scoped in the query and checked again on the rows.
//! Never a signing secret: the store's summary does not carry one.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use transaction_model::AccountId;
use transaction_store::webhooks::DISABLED_FAILING;
use transaction_store::{EndpointScope, FailingEndpointSummary};

use crate::auth::Session;
use crate::error::ApiError;
use crate::session::Role;
use crate::state::AppState;

/// Rows in one answer: the panel is a warning list, not a report, and the
/// page polls it every few seconds, so each answer stays small.
pub const MAX_ROWS: usize = 100;

const STORE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FailingEndpoint {
    pub account_id: String,
    pub endpoint_id: String,
    /// Where deliveries go; not secret (the signing secret never leaves
    /// the API, and only once).
    pub url: String,
    /// `enabled` (still retried) or `disabled`.
    pub status: String,
    /// True when the notifier disabled it after failing too long.
    pub disabled_for_failing: bool,
    pub disabled_reason: Option<String>,
    /// RFC 3339; null once a disabled endpoint's failure record is cleared.
    pub failing_since: Option<String>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FailingList {
    pub data: Vec<FailingEndpoint>,
    /// More than [`MAX_ROWS`] endpoints are failing; the first are shown.
    pub truncated: bool,
}

impl From<FailingEndpointSummary> for FailingEndpoint {
    fn from(s: FailingEndpointSummary) -> Self {
        FailingEndpoint {
            account_id: s.account_id.to_string(),
            endpoint_id: s.id,
            url: s.url,
            status: s.status.as_str().to_owned(),
            disabled_for_failing: s.disabled_reason.as_deref() == Some(DISABLED_FAILING),
            disabled_reason: s.disabled_reason,
            failing_since: s.failing_since.and_then(|t| t.format(&Rfc3339).ok()),
            last_status_code: s.last_status_code,
            last_error: s.last_error,
        }
    }
}

pub async fn failing(State(state): State<AppState>, session: Session) -> Result<Json<FailingList>, ApiError> {
    let repo = state.webhook_health.as_ref().ok_or(ApiError::WebhooksUnavailable)?;
    let merchant = match &session.0.role {
        Role::Operator => None,
        Role::Merchant { account_id } => {
            Some(AccountId::try_from(account_id.as_str()).map_err(|_| ApiError::Unauthenticated)?)
        }
    };
    let scope = merchant.as_ref().map_or(EndpointScope::All, EndpointScope::Account);
    let mut rows = match tokio::time::timeout(STORE_TIMEOUT, repo.failing_endpoint_summaries(scope, MAX_ROWS + 1)).await
    {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "failing webhook endpoints: store read failed");
            return Err(ApiError::WebhooksUnavailable);
        }
        Err(_) => {
            tracing::error!("failing webhook endpoints: store read timed out");
            return Err(ApiError::WebhooksUnavailable);
        }
    };
    // The query is scoped already; this is the second lock on the door.
    if let Some(own) = &merchant {
        rows.retain(|r| &r.account_id == own);
    }
    let truncated = rows.len() > MAX_ROWS;
    rows.truncate(MAX_ROWS);
    Ok(Json(FailingList { data: rows.into_iter().map(FailingEndpoint::from).collect(), truncated }))
}
