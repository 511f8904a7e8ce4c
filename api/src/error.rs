//! Every error the API answers with, in one envelope:
//! `{"error":{"type":…,"code":…,"message":…,"param":…}}`. Codes are stable;
//! messages are for humans and never contain card data.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use transaction_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Unparseable body (not JSON, not UTF-8) or query.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, param: Option<String> },
    /// Well-formed JSON that is not a valid request.
    #[error("{message}")]
    Invalid { code: &'static str, message: String, param: Option<String> },
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("missing or invalid operator token")]
    OperatorUnauthenticated,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("Idempotency-Key was used with a different request body")]
    IdempotencyMismatch,
    #[error("{message}")]
    RateLimited { code: &'static str, message: String, retry_after_secs: u64 },
    #[error("the broker did not acknowledge the transaction in time; nothing was accepted")]
    BrokerUnavailable { retry_after_secs: u64 },
    #[error("the database is unavailable")]
    StoreUnavailable,
    #[error("internal error")]
    Internal,
}

#[derive(Serialize)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
}

#[derive(Serialize)]
pub struct Envelope {
    pub error: ErrorBody,
}

impl ApiError {
    pub fn invalid(code: &'static str, param: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid { code, message: message.into(), param: Some(param.to_owned()) }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::NotFound { code: "resource_not_found", message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } | ApiError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthenticated | ApiError::OperatorUnauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BrokerUnavailable { .. } | ApiError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The envelope's body.
    pub fn body(&self) -> ErrorBody {
        let (kind, code, param) = match self {
            ApiError::BadRequest { code, param, .. } | ApiError::Invalid { code, param, .. } => {
                ("invalid_request_error", *code, param.clone())
            }
            ApiError::PayloadTooLarge => ("invalid_request_error", "payload_too_large", None),
            ApiError::UnsupportedMediaType => ("invalid_request_error", "unsupported_media_type", None),
            ApiError::BodyTimeout => ("invalid_request_error", "request_timeout", None),
            ApiError::Unauthenticated => ("authentication_error", "invalid_credentials", None),
            ApiError::OperatorUnauthenticated => ("authentication_error", "invalid_operator_token", None),
            ApiError::Forbidden { code, .. } => ("permission_error", *code, None),
            ApiError::NotFound { code, .. } => ("not_found_error", *code, None),
            ApiError::MethodNotAllowed => ("invalid_request_error", "method_not_allowed", None),
            ApiError::Conflict { code, .. } if code.starts_with("idempotency") => ("idempotency_error", *code, None),
            ApiError::Conflict { code, .. } => ("conflict_error", *code, None),
            ApiError::IdempotencyMismatch => {
                ("idempotency_error", "idempotency_key_reused", Some("Idempotency-Key".to_owned()))
            }
            ApiError::RateLimited { code, .. } => ("rate_limit_error", *code, None),
            ApiError::BrokerUnavailable { .. } => ("api_error", "broker_unavailable", None),
            ApiError::StoreUnavailable => ("api_error", "database_unavailable", None),
            ApiError::Internal => ("api_error", "internal_error", None),
        };
        ErrorBody { kind, code, message: self.to_string(), param }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "database call failed");
        match e {
            StoreError::CorruptRow { .. } | StoreError::UnsupportedUrl(_) | StoreError::AlreadyExists(_) => {
                ApiError::Internal
            }
            _ => ApiError::StoreUnavailable,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(Envelope { error: self.body() })).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"gateway\""));
            }
            ApiError::OperatorUnauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gateway-admin\""));
            }
            ApiError::RateLimited { retry_after_secs, .. } | ApiError::BrokerUnavailable { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::StoreUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_carry_type_code_and_headers() {
        let r = ApiError::Unauthenticated.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Basic realm=\"gateway\"");
        let r = ApiError::BrokerUnavailable { retry_after_secs: 2 }.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let b = ApiError::invalid("amount_too_precise", "amount", "x").body();
        assert_eq!(
            (b.kind, b.code, b.param.as_deref()),
            ("invalid_request_error", "amount_too_precise", Some("amount"))
        );
        assert_eq!(ApiError::IdempotencyMismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
