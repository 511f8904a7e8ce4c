//! `JsonBody<T>`: a JSON body whose every failure is an enveloped 4xx.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse(&bytes).map(JsonBody)
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else if timed_out(&rejection) {
        ApiError::BodyTimeout
    } else {
        ApiError::BadRequest {
            code: "unreadable_body",
            message: "the request body could not be read".into(),
            param: None,
        }
    }
}

/// Whether reading stopped because the body paused longer than the server's
/// body timeout (`HTTP_BODY_TIMEOUT_MS`).
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Parses a body. Syntax errors are 400; well-formed JSON of the wrong shape
/// is 422 naming the field when serde says which.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::BadRequest {
            code: "invalid_utf8",
            message: "the request body is not UTF-8".into(),
            param: None,
        });
    }
    // Every body is an object; serde would also build a struct from an array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(e) => malformed(&e),
            Ok(_) => ApiError::Invalid {
                code: "invalid_body",
                message: "the body must be a JSON object".into(),
                param: None,
            },
        });
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => malformed(&e),
        // serde streams: a shape error can be found before a syntax error
        // further on, so a document that is not JSON at all stays a 400.
        Category::Data => match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(syntax) => malformed(&syntax),
            Ok(_) => data_error(&e.to_string()),
        },
    })
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::BadRequest {
        code: "malformed_json",
        message: format!("the request body is not valid JSON (line {}, column {})", e.line(), e.column()),
        param: None,
    }
}

/// serde's messages name the field between backticks; the message itself
/// may quote input values (a wrong-typed card number), so only the field
/// name and a fixed text are passed on.
fn data_error(message: &str) -> ApiError {
    let field = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned);
    if let Some(f) = field("unknown field `") {
        let message = format!("unknown field {f:?}");
        return ApiError::Invalid { code: "unknown_field", message, param: Some(f) };
    }
    if let Some(f) = field("missing field `") {
        let message = format!("{f} is required");
        return ApiError::Invalid { code: "missing_field", message, param: Some(f) };
    }
    if let Some(f) = field("duplicate field `") {
        let message = format!("{f} is given twice");
        return ApiError::Invalid { code: "duplicate_field", message, param: Some(f) };
    }
    ApiError::Invalid {
        code: "invalid_body",
        message: "the request body does not have the expected shape".into(),
        param: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        a: Option<u32>,
        b: String,
    }

    fn code(r: Result<Shape, ApiError>) -> (u16, &'static str, Option<String>) {
        let e = r.unwrap_err();
        let b = e.body();
        (e.status().as_u16(), b.code, b.param)
    }

    #[test]
    fn classifies_body_errors() {
        assert_eq!(code(parse(b"{")).1, "malformed_json");
        assert_eq!(code(parse(br#"{"zz": "#)).1, "malformed_json", "shape error found before the syntax error");
        assert_eq!(code(parse(b"")).0, 400);
        assert_eq!(code(parse(b"\xff\xfe")).1, "invalid_utf8");
        assert_eq!(code(parse(br#"{"b":"x","zz":1}"#)), (422, "unknown_field", Some("zz".into())));
        assert_eq!(code(parse(br#"{"a":1}"#)), (422, "missing_field", Some("b".into())));
        assert_eq!(code(parse(br#"{"b":"x","b":"y"}"#)), (422, "duplicate_field", Some("b".into())));
        assert_eq!(code(parse(br#"{"b":4111111111111111}"#)).1, "invalid_body");
        assert!(!parse::<Shape>(br#"{"b":4111111111111111}"#).unwrap_err().to_string().contains("4111"));
        assert_eq!(code(parse(b"[]")).0, 422);
        assert_eq!(code(parse(br#"["x", "y"]"#)).1, "invalid_body", "no struct from an array");
        assert_eq!(code(parse(b"[1,")).1, "malformed_json");
        assert_eq!(code(parse(b"  ")).1, "malformed_json");
        assert!(parse::<Shape>(br#"{"b":"x"}"#).is_ok());
    }
}
