//! Writing a complete answer of the gateway's own: the JSON error body in the SPEC's
//! shape and the error kinds. The response phase runs on the head before it is sent
//! (see [`super::GatewayProxy::answer`]).

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// The JSON error body: `{"error", "message", "request_id"}` plus `details` members.
pub fn error_body(
    kind: &str,
    message: &str,
    request_id: &str,
    details: Option<&serde_json::Value>,
) -> Bytes {
    let mut v = serde_json::json!({ "error": kind, "message": message, "request_id": request_id });
    if let (Some(serde_json::Value::Object(extra)), Some(obj)) = (details, v.as_object_mut()) {
        for (k, val) in extra {
            if !obj.contains_key(k) {
                obj.insert(k.clone(), val.clone());
            }
        }
    }
    Bytes::from(v.to_string())
}

/// Builds the head of an answer: status, Content-Type (when given, once),
/// Content-Length, then `extra` headers.
pub fn head(
    status: u16,
    content_type: Option<&HeaderValue>,
    len: usize,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(status, Some(4 + extra.len()))?;
    if let Some(ct) = content_type {
        resp.insert_header(http::header::CONTENT_TYPE, ct.clone())?;
    }
    resp.insert_header(http::header::CONTENT_LENGTH, len)?;
    for (k, v) in extra {
        if k == http::header::CONTENT_TYPE || k == http::header::CONTENT_LENGTH {
            continue;
        }
        resp.append_header(k.clone(), v.clone())?;
    }
    Ok(resp)
}

/// Writes a head and body.
pub async fn write(session: &mut Session, resp: ResponseHeader, body: Bytes) -> Result<()> {
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
