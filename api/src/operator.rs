//! The operator's bearer token, guarding /v1/admin.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth_failures::ADMIN_KEY;
use crate::error::ApiError;
use crate::state::AppState;

/// The configured token, kept as its SHA-256 so comparisons take the same
/// time whatever the length of the presented token.
#[derive(Clone)]
pub struct OperatorToken([u8; 32]);

impl OperatorToken {
    pub fn new(token: &str) -> Self {
        OperatorToken(Sha256::digest(token.as_bytes()).into())
    }

    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.ct_eq(&digest).into()
    }
}

impl fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorToken(<redacted>)")
    }
}

/// Proof that the request carries the operator token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(expected) = &state.operator_token else {
            return Err(ApiError::Forbidden {
                code: "admin_disabled",
                message: "the admin API is disabled: no OPERATOR_TOKEN is configured".into(),
            });
        };
        let presented =
            parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(token) if expected.matches(token.trim()) => Ok(Operator),
            _ => {
                let ip = state.client_ip(parts);
                Err(state.auth_failed(ip, Some(ADMIN_KEY), "operator_token", ApiError::OperatorUnauthenticated))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_token_and_hides_it() {
        let t = OperatorToken::new("op-token-123");
        assert!(t.matches("op-token-123"));
        assert!(!t.matches("op-token-12"));
        assert!(!t.matches(""));
        assert!(!format!("{t:?}").contains("op-token"));
    }
}
