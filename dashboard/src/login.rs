//! Login and renewal: credentials in a POST body, a session token back.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use transaction_model::account::MAX_ACCOUNT_ID_LEN;

use crate::auth::Session;
use crate::error::ApiError;
use crate::session::{Claims, Role};
use crate::state::AppState;

/// No `Debug`: it holds a secret.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LoginRequest {
    Operator { token: String },
    Merchant { account_id: String, secret: String },
}

/// No `Debug`: it holds a session token.
#[derive(Serialize, Deserialize)]
pub struct SessionResponse {
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub view: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<SessionResponse>, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let key = match &request {
        LoginRequest::Operator { .. } => "operator".to_owned(),
        // Bounded: ids longer than an account id cannot exist anyway.
        LoginRequest::Merchant { account_id, .. } => {
            format!("merchant:{}", account_id.chars().take(MAX_ACCOUNT_ID_LEN + 1).collect::<String>())
        }
    };
    if let Some(secs) = state.throttle.locked_for(&key) {
        return Err(ApiError::TooManyAttempts(secs));
    }
    let outcome = match request {
        LoginRequest::Operator { token } => match state.operator_token.as_ref() {
            None => Err(ApiError::OperatorLoginDisabled),
            Some(expected) if expected.matches(&token) => Ok(Role::Operator),
            Some(_) => Err(ApiError::InvalidCredentials),
        },
        LoginRequest::Merchant { account_id, secret } => state
            .merchant_login
            .login(&account_id, &secret)
            .await
            .map(|id| Role::Merchant { account_id: id.as_str().to_owned() }),
    };
    match outcome {
        Ok(role) => {
            state.throttle.succeeded(&key);
            Ok(Json(issue(&state, role)?))
        }
        Err(e) => {
            if matches!(e, ApiError::InvalidCredentials) {
                state.throttle.failed(&key);
                state.metrics.logins_failed.inc();
                tracing::warn!(kind = key.split(':').next().unwrap_or(""), "login refused");
            }
            Err(e)
        }
    }
}

/// A fresh token for a still-valid session; the page calls it while open.
pub async fn renew(State(state): State<AppState>, session: Session) -> Result<Json<SessionResponse>, ApiError> {
    Ok(Json(issue(&state, session.0.role)?))
}

fn issue(state: &AppState, role: Role) -> Result<SessionResponse, ApiError> {
    let exp = OffsetDateTime::now_utc().unix_timestamp() + state.session_ttl.as_secs() as i64;
    let (view, merchant) = match &role {
        Role::Operator => ("operator", None),
        Role::Merchant { account_id } => ("merchant", Some(account_id.clone())),
    };
    let token = state.signer.issue(&Claims { role, exp }).map_err(|e| {
        tracing::error!(error = %e, "session claims did not serialise");
        ApiError::Internal
    })?;
    Ok(SessionResponse { token, expires_at: exp, view: view.to_owned(), merchant })
}
