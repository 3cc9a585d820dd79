//! Answers the gateway gives itself: JSON errors in the SPEC's shape, probes, fixed
//! fallback answers and plugin replies.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// The JSON error body: `{"error", "message", "request_id"}`.
pub fn error_body(kind: &str, message: &str, request_id: &str) -> Bytes {
    let v = serde_json::json!({ "error": kind, "message": message, "request_id": request_id });
    Bytes::from(v.to_string())
}

/// Writes a complete response. `extra` headers are added after the standard ones.
pub async fn send(
    session: &mut Session,
    status: u16,
    content_type: &HeaderValue,
    body: Bytes,
    request_id: &HeaderValue,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(4 + extra.len()))?;
    resp.insert_header(http::header::CONTENT_TYPE, content_type.clone())?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header("x-request-id", request_id.clone())?;
    for (k, v) in extra {
        resp.append_header(k.clone(), v.clone())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only || body.is_empty())
        .await?;
    if !head_only && !body.is_empty() {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

pub fn json_type() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

/// Writes a JSON error.
pub async fn send_error(
    session: &mut Session,
    status: u16,
    kind: &str,
    message: &str,
    request_id: &HeaderValue,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<()> {
    let rid = request_id.to_str().unwrap_or_default();
    send(
        session,
        status,
        &json_type(),
        error_body(kind, message, rid),
        request_id,
        extra,
    )
    .await
}

/// The SPEC's error kind for a status the gateway answers with.
pub fn kind_for(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        429 => "too_many_requests",
        431 => "request_header_fields_too_large",
        502 => "bad_gateway",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        s if s >= 500 => "internal_error",
        _ => "error",
    }
}
