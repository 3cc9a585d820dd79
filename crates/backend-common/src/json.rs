//! `ValidJson<T>`: a JSON body extractor whose every failure is a clear JSON
//! error instead of axum's plain-text rejections.
//!
//! - no or wrong `Content-Type` (anything but `application/json` or
//!   `application/*+json`) → 415 `unsupported_media_type`;
//! - body longer than the router's limit ([`BodyLimit`]) → 413 `payload_too_large`;
//! - syntax errors, missing fields, wrong types, unknown enum variants → 400
//!   `bad_request` with serde's message, which names the field and gives the
//!   line and column (e.g. ``missing field `prompt` at line 1 column 2``).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The body limit in bytes, stored in the request extensions by
/// [`crate::http::finish`] so that the 413 message can state it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// A JSON request body deserialized into `T`; see the module docs for the
/// errors it answers.
#[derive(Debug, Clone)]
pub struct ValidJson<T>(pub T);

impl<T, S> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::unsupported_media_type(
                "expected a JSON body with `Content-Type: application/json`",
            ));
        }
        let limit = req.extensions().get::<BodyLimit>().copied();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(match limit {
                    Some(BodyLimit(n)) => format!("request body exceeds the limit of {n} bytes"),
                    None => "request body is too large".to_owned(),
                })
            } else {
                ApiError::bad_request(format!(
                    "could not read the request body: {}",
                    rejection.body_text()
                ))
            }
        })?;
        parse(&bytes).map(ValidJson)
    }
}

/// Deserializes a JSON document, mapping any serde error to a 400 whose message
/// is serde's (field name, line and column included).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// True for `application/json` and `application/<anything>+json`, parameters
/// (`; charset=utf-8`) ignored.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(ct).expect("valid header"),
        );
        h
    }

    #[test]
    fn content_types() {
        assert!(is_json_content_type(&headers("application/json")));
        assert!(is_json_content_type(&headers(
            "Application/JSON; charset=utf-8"
        )));
        assert!(is_json_content_type(&headers("application/problem+json")));
        assert!(!is_json_content_type(&headers("text/plain")));
        assert!(!is_json_content_type(&headers("application/jsonx")));
        assert!(!is_json_content_type(&HeaderMap::new()));
    }

    #[test]
    fn serde_messages_carry_position() {
        #[derive(serde::Deserialize, Debug)]
        struct Doc {
            #[allow(dead_code)]
            text: String,
        }
        let err = parse::<Doc>(b"{\"txt\": 1}").expect_err("missing field");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(
            err.message().contains("missing field `text`"),
            "{}",
            err.message()
        );
        assert!(err.message().contains("line 1 column"), "{}", err.message());
    }
}
