//! `x-request-id`: taken from the client when sane, otherwise made here; put
//! on every response, in the logs' span, and in the Kafka header.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const MAX_LEN: usize = 128;

/// The current request's id, in the request extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// Client-supplied ids are kept only if short and made of safe
    /// characters, so they cannot inject anything into logs or headers.
    pub fn from_client(value: Option<&HeaderValue>) -> Self {
        let given = value
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= MAX_LEN)
            .filter(|v| v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')));
        match given {
            Some(v) => RequestId(v.to_owned()),
            None => RequestId(uuid::Uuid::new_v4().to_string()),
        }
    }
}

pub async fn propagate(mut request: Request, next: Next) -> Response {
    let id = RequestId::from_client(request.headers().get(&REQUEST_ID));
    request.extensions_mut().insert(id.clone());
    let span =
        tracing::info_span!("request", request_id = %id.0, method = %request.method(), path = %request.uri().path());
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), "answered"));
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_safe_client_ids_and_replaces_others() {
        let ok = HeaderValue::from_static("abc-123_x.y");
        assert_eq!(RequestId::from_client(Some(&ok)).0, "abc-123_x.y");
        let bad = HeaderValue::from_static("a b\"c");
        assert_ne!(RequestId::from_client(Some(&bad)).0, "a b\"c");
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(RequestId::from_client(Some(&long)).0.len(), 36);
        assert_eq!(RequestId::from_client(None).0.len(), 36);
    }
}
