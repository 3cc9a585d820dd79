//! The answer to a request head refused before any filter runs: the gateway's JSON
//! error with an `X-Request-ID`, `Connection: close`, counted and logged like any
//! other answer (route `none`).

use super::head::{Refusal, Seen};
use crate::gateway::Gateway;
use pingora_core::protocols::Stream;
use std::time::Instant;
use tokio::io::AsyncWriteExt;

/// Writes the refusal and closes the connection.
pub async fn answer(
    gw: &Gateway,
    mut stream: Stream,
    refusal: Refusal,
    seen: Seen,
    start: Instant,
) {
    let (status, reason, message) = refusal.answer();
    let request_id = seen
        .request_id
        .clone()
        .unwrap_or_else(crate::proxy::new_request_id);
    let rid = request_id.to_str().unwrap_or_default();
    let body = crate::proxy::error_body(crate::proxy::kind_for(status), message, rid, None);
    let reason_phrase = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status} {reason_phrase}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nx-request-id: {rid}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    let written = async {
        stream.write_all(&out).await?;
        stream.flush().await
    }
    .await;
    if let Err(e) = written {
        tracing::debug!(error = %e, "cannot write the refusal");
    }
    pingora_core::protocols::Shutdown::shutdown(&mut *stream).await;
    record(gw, &stream, status, reason, message, &seen, rid, start);
}

/// Metrics and the access log line of a refused head.
#[allow(clippy::too_many_arguments)]
fn record(
    gw: &Gateway,
    stream: &Stream,
    status: u16,
    reason: &'static str,
    message: &str,
    seen: &Seen,
    request_id: &str,
    start: Instant,
) {
    let m = &gw.metrics;
    m.blocked.with_label_values(&[reason]).inc();
    let method = seen
        .method
        .as_deref()
        .and_then(|s| http::Method::from_bytes(s.as_bytes()).ok());
    let unrouted = m.unrouted();
    unrouted.count(method.as_ref(), status);
    let elapsed = start.elapsed();
    unrouted.duration.observe(elapsed.as_secs_f64());
    if gw.access_log {
        let client = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().cloned())
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(
            service = "api-gateway",
            operation = "refuse",
            method = seen.method.as_deref().unwrap_or(""),
            path = seen.path.as_deref().unwrap_or(""),
            status_code = status,
            route = "none",
            upstream = "",
            attempts = 0,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            correlation_id = request_id,
            client = client.as_str(),
            reason,
            error = message,
            "request"
        );
    }
}
