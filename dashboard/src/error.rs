//! Errors of the HTTP endpoints, each with a stable code for clients.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error("a valid session token is required")]
    Unauthenticated,
    #[error("this session may not see that view")]
    Forbidden,
    #[error("the credentials are not valid")]
    InvalidCredentials,
    #[error("{0}")]
    BadRequest(String),
    #[error("operator login is disabled: OPERATOR_TOKEN is not configured")]
    OperatorLoginDisabled,
    #[error("merchant login is not available: {0}")]
    MerchantLoginUnavailable(&'static str),
    #[error("the account store did not answer")]
    AccountsUnavailable,
    #[error("the webhook endpoint store did not answer")]
    WebhooksUnavailable,
    #[error("too many failed sign-ins; try again in {0} s")]
    TooManyAttempts(u64),
    #[error("{0}")]
    TooManyStreams(#[from] crate::ws_slots::WsRefused),
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden => "forbidden",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::OperatorLoginDisabled => "operator_login_disabled",
            ApiError::MerchantLoginUnavailable(_) => "merchant_login_unavailable",
            ApiError::AccountsUnavailable => "accounts_unavailable",
            ApiError::WebhooksUnavailable => "webhooks_unavailable",
            ApiError::TooManyAttempts(_) => "too_many_attempts",
            ApiError::TooManyStreams(_) => "too_many_streams",
            ApiError::Internal => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::OperatorLoginDisabled | ApiError::MerchantLoginUnavailable(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::AccountsUnavailable | ApiError::WebhooksUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyAttempts(_) | ApiError::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        (self.status(), Json(body)).into_response()
    }
}
