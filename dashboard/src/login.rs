//! Login and renewal: credentials in a POST body, a session token back.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use transaction_model::account::MAX_ACCOUNT_ID_LEN;

use crate::auth::{ClientIp, Session};
use crate::error::ApiError;
use crate::session::{new_session_id, Claims, Role};
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

/// Credentials are checked first: the right ones always sign in, whoever
/// failed before. A failure is charged to the client and the principal; once
/// either has failed too often, failures are answered 429.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<SessionResponse>, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let principal = match &request {
        LoginRequest::Operator { .. } => "operator".to_owned(),
        // Bounded: ids longer than an account id cannot exist anyway.
        LoginRequest::Merchant { account_id, .. } => {
            format!("merchant:{}", account_id.chars().take(MAX_ACCOUNT_ID_LEN + 1).collect::<String>())
        }
    };
    let outcome = match request {
        LoginRequest::Operator { token } => match state.operator_token.as_ref() {
            None => Err(ApiError::OperatorLoginDisabled),
            Some(expected) if expected.matches(&token) => Ok((Role::Operator, expected.binding())),
            Some(_) => Err(ApiError::InvalidCredentials),
        },
        LoginRequest::Merchant { account_id, secret } => state
            .merchant_login
            .login(&account_id, &secret)
            .await
            .map(|(id, bind)| (Role::Merchant { account_id: id.as_str().to_owned() }, bind)),
    };
    match outcome {
        Ok((role, bind)) => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let claims = Claims { role, exp: 0, sid: new_session_id(), iat: now, bind };
            Ok(Json(issue(&state, claims, now)?))
        }
        Err(ApiError::InvalidCredentials) => {
            state.metrics.logins_failed.inc();
            tracing::warn!(kind = principal.split(':').next().unwrap_or(""), "login refused");
            match state.throttle.failed(client, &principal) {
                Ok(()) => Err(ApiError::InvalidCredentials),
                Err(secs) => Err(ApiError::TooManyAttempts(secs)),
            }
        }
        Err(e) => Err(e),
    }
}

/// A fresh token for a still-valid session; the page calls it while open.
/// The session keeps its id, sign-in time and binding: renewals never
/// extend it past its maximum age, and the extractor has re-checked that
/// its credential is still the current one.
pub async fn renew(State(state): State<AppState>, session: Session) -> Result<Json<SessionResponse>, ApiError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    Ok(Json(issue(&state, session.0, now)?))
}

fn issue(state: &AppState, mut claims: Claims, now: i64) -> Result<SessionResponse, ApiError> {
    let idle_end = now.saturating_add(i64::try_from(state.session_ttl.as_secs()).unwrap_or(i64::MAX));
    let absolute_end = claims.iat.saturating_add(i64::try_from(state.session_max_age.as_secs()).unwrap_or(i64::MAX));
    claims.exp = idle_end.min(absolute_end);
    if claims.exp <= now {
        return Err(ApiError::Unauthenticated);
    }
    let (view, merchant) = match &claims.role {
        Role::Operator => ("operator", None),
        Role::Merchant { account_id } => ("merchant", Some(account_id.clone())),
    };
    let token = state.signer.issue(&claims).map_err(|e| {
        tracing::error!(error = %e, "session claims did not serialise");
        ApiError::Internal
    })?;
    Ok(SessionResponse { token, expires_at: claims.exp, view: view.to_owned(), merchant })
}
