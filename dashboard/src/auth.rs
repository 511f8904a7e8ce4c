//! The `Session` extractor: a valid session token, from `Authorization:
//! Bearer …` or, for browsers' WebSockets (which cannot set headers), from
//! the `Sec-WebSocket-Protocol` entry `bearer.…`. Never from the URL, which
//! proxies and access logs record.

use std::net::{IpAddr, Ipv4Addr};

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::session::{Claims, Role};
use crate::state::AppState;

/// Prefix of the WebSocket sub-protocol entry that carries the token.
pub const WS_TOKEN_PREFIX: &str = "bearer.";

#[derive(Debug, Clone)]
pub struct Session(pub Claims);

impl Session {
    pub fn merchant(&self) -> Option<&str> {
        match &self.0.role {
            Role::Merchant { account_id } => Some(account_id),
            Role::Operator => None,
        }
    }
}

fn token_of(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return value.strip_prefix("Bearer ").map(str::trim);
    }
    parts
        .headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(WS_TOKEN_PREFIX))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = token_of(parts).ok_or(ApiError::Unauthenticated)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = state.signer.verify(token, now).map_err(|_| ApiError::Unauthenticated)?;
        check_binding(state, &claims).await?;
        Ok(Session(claims))
    }
}

/// Whether the credential the session was issued for is still the current
/// one: the operator token unchanged; the merchant active with the same
/// secret (a disabled or rotated merchant loses access now).
pub async fn check_binding(state: &AppState, claims: &Claims) -> Result<(), ApiError> {
    match &claims.role {
        Role::Operator => match &state.operator_token {
            Some(token) if token.binding() == claims.bind => Ok(()),
            _ => Err(ApiError::Unauthenticated),
        },
        Role::Merchant { account_id } => state.merchant_login.still_valid(account_id, &claims.bind).await,
    }
}

/// The client's address: the TCP peer, or the forwarded client when the
/// peer is a trusted proxy (`TRUSTED_PROXIES`).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = service_runtime::http_server::peer(&parts.extensions)
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let forwarded = parts.headers.get_all("x-forwarded-for").into_iter().filter_map(|v| v.to_str().ok());
        Ok(ClientIp(state.trusted_proxies.client_ip(peer, forwarded)))
    }
}
