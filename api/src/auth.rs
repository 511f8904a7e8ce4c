//! Merchant authentication: `Authorization: Basic base64(account_id:secret)`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use transaction_model::AccountId;
use transaction_store::AccountStatus;

use crate::error::ApiError;
use crate::state::AppState;

/// A merchant whose secret verified and whose account is active. Handlers
/// take the account id from here, never from the body.
#[derive(Clone, Debug)]
pub struct AuthenticatedMerchant {
    pub account_id: AccountId,
}

/// `(account id text, secret)` from a Basic header, if well-formed.
fn basic_credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Verified against when the account does not exist, so an unknown id
/// costs the same HMAC as a wrong secret. Matches no secret in practice.
const DUMMY_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl FromRequestParts<AppState> for AuthenticatedMerchant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Credentials first: a valid one is never refused because others
        // failed from the same address or for the same account.
        let Some((id, secret)) = basic_credentials(parts) else {
            let ip = state.client_ip(parts);
            return Err(state.auth_failed(ip, None, "missing_or_malformed", ApiError::Unauthenticated));
        };
        // From memory within the cache's TTL (`account_cache`); the secret
        // is still hashed and compared in constant time on every request.
        let account_id = AccountId::try_from(id.as_str()).ok();
        let credentials = match &account_id {
            Some(account_id) => state.accounts.credentials(account_id).await?,
            None => None,
        };
        let stored_hash = credentials.as_ref().map(|c| &*c.secret_hash).unwrap_or(DUMMY_HASH);
        let verified = state.hasher.verify(&secret, stored_hash);
        let (account_id, credentials) = match (account_id, credentials) {
            (Some(account_id), Some(credentials)) if verified => (account_id, credentials),
            _ => {
                let ip = state.client_ip(parts);
                return Err(state.auth_failed(ip, Some(&id), "invalid_credentials", ApiError::Unauthenticated));
            }
        };
        // Only after the secret verified: otherwise 403 would tell a guesser
        // which account ids exist.
        if credentials.status != AccountStatus::Active {
            state.metrics.auth_failures.with_label_values(&["account_disabled"]).inc();
            return Err(ApiError::Forbidden { code: "account_disabled", message: "this account is disabled".into() });
        }
        // Every authenticated request costs one token (reads and refused
        // requests too); a batch pays for its other items in its handler.
        state.charge_rate(&account_id, 1)?;
        Ok(AuthenticatedMerchant { account_id })
    }
}
