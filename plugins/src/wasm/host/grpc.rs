//! Unary gRPC calls: `proxy_grpc_call`, `proxy_grpc_cancel` and `proxy_grpc_close`.
//!
//! `upstream` names a pool of routes.yaml, as `proxy_http_call`'s does (Envoy takes a
//! cluster name there too, or a serialized `GrpcService`, which is not supported). The
//! gateway sends `POST /{service}/{method}` over HTTP/2 (prior knowledge over plain
//! TCP, ALPN over TLS) to a target of the pool, with its balancing, health, breakers
//! and retry policy: `content-type: application/grpc`, `te: trailers`, `grpc-timeout`,
//! the initial metadata as headers, and the message as one length-prefixed gRPC frame.
//!
//! As in Envoy, the answer comes to the root context id: a message (status OK) to
//! `proxy_on_grpc_receive(token, size)`, its bytes in the `GrpcReceiveBuffer`; any
//! other outcome to `proxy_on_grpc_close(token, code)`, with the code and the
//! `grpc-message` from `proxy_get_status`. A transport failure is UNAVAILABLE (14), no
//! answer in the call's timeout DEADLINE_EXCEEDED (4), an HTTP error status the code
//! gRPC's spec maps it to. The answer's headers and trailers are the
//! `GrpcReceive{Initial,Trailing}Metadata` maps during the callback. Streams
//! (`proxy_grpc_stream`, `proxy_grpc_send`) answer `Unimplemented`.

use super::{pairs, slice, split, write_u32, CallAnswer, Host, PendingCall};
use crate::wasm::abi::{code, decode_pairs, Status};
use crate::{UpstreamCallError, UpstreamResponse};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// gRPC status codes the gateway gives itself.
pub mod codes {
    pub const OK: u32 = 0;
    pub const UNKNOWN: u32 = 2;
    pub const DEADLINE_EXCEEDED: u32 = 4;
    pub const PERMISSION_DENIED: u32 = 7;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
    pub const UNAUTHENTICATED: u32 = 16;
}

/// A call's outcome when it is not a message: the code and the message of
/// `proxy_get_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcStatus {
    pub code: u32,
    pub message: String,
}

/// Largest answer read (gRPC's default receive limit).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// The timeout of a call that gives none (0), as the pool's own timeouts bound it too.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `proxy_grpc_call(upstream, service, method, initial_metadata, message, timeout_ms,
/// token_ptr)`: queued, sent once the callback returns (see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn call(
    mut c: wasmtime::Caller<'_, Host>,
    up: i32,
    ul: i32,
    sp: i32,
    sl: i32,
    mp: i32,
    ml: i32,
    hp: i32,
    hl: i32,
    bp: i32,
    bl: i32,
    timeout_ms: i32,
    rp: i32,
) -> i32 {
    code((|| {
        let (data, host) = split(&mut c)?;
        let text = |p, l| {
            std::str::from_utf8(slice(data, p, l)?)
                .map(str::to_string)
                .map_err(|_| Status::BadArgument)
        };
        let (upstream, service, method) = (text(up, ul)?, text(sp, sl)?, text(mp, ml)?);
        let path_part = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'?')
        };
        if upstream.is_empty() || !path_part(&service) || !path_part(&method) {
            return Err(Status::BadArgument);
        }
        let timeout = match timeout_ms as u32 {
            0 => DEFAULT_TIMEOUT,
            ms => Duration::from_millis(u64::from(ms)),
        };
        let mut headers = metadata(decode_pairs(slice(data, hp, hl)?).ok_or(Status::BadArgument)?)?;
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        let ms = timeout.as_millis().min(99_999_999);
        if let Ok(v) = HeaderValue::from_str(&format!("{ms}m")) {
            headers.insert("grpc-timeout", v);
        }
        let body = frame(slice(data, bp, bl)?);
        let token = host.take_token();
        host.cx.calls.push(PendingCall {
            token,
            upstream,
            method: http::Method::POST,
            path: format!("/{service}/{method}"),
            headers,
            body,
            timeout,
            grpc: true,
        });
        write_u32(&mut c, rp, token)
    })())
}

/// The initial metadata as request headers: pseudo headers and the ones the gateway
/// sets itself are refused.
fn metadata(pairs: Vec<(&[u8], &[u8])>) -> Result<HeaderMap, Status> {
    let mut headers = HeaderMap::with_capacity(pairs.len() + 2);
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k).map_err(|_| Status::BadArgument)?;
        let value = HeaderValue::from_bytes(v).map_err(|_| Status::BadArgument)?;
        if name == http::header::CONTENT_TYPE || name == http::header::TE {
            return Err(Status::BadArgument);
        }
        headers.append(name, value);
    }
    Ok(headers)
}

/// `proxy_grpc_cancel(token)` and `proxy_grpc_close(token)`: a call not answered yet
/// gets no callback. One made by this callback is dropped here (never sent); one
/// already out is stopped once the callback returns (its stream reset, as Envoy does)
/// when the request waits for it, and is remembered so that its answer, if one comes,
/// is dropped.
pub fn cancel(mut c: wasmtime::Caller<'_, Host>, token: i32) -> i32 {
    let token = token as u32;
    let host = c.data_mut();
    let before = host.cx.calls.len();
    host.cx.calls.retain(|p| p.token != token);
    if host.cx.calls.len() == before {
        if host.cancelled.len() >= 64 {
            host.cancelled.remove(0);
        }
        host.cancelled.push(token);
        host.cx.cancels.push(token);
    }
    Status::Ok as i32
}

/// `message` as one uncompressed gRPC frame.
pub fn frame(message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(0);
    b.put_u32(message.len() as u32);
    b.extend_from_slice(message);
    b.freeze()
}

/// What the filter sees of a call's outcome (see the module docs).
pub fn answer(outcome: Result<UpstreamResponse, UpstreamCallError>) -> CallAnswer {
    let a = match outcome {
        Ok(a) => a,
        Err(e) => {
            let code = match e {
                UpstreamCallError::Timeout => codes::DEADLINE_EXCEEDED,
                UpstreamCallError::AnswerTooLarge(_) => codes::RESOURCE_EXHAUSTED,
                UpstreamCallError::InvalidRequest(_) => codes::INTERNAL,
                _ => codes::UNAVAILABLE,
            };
            return failed(code, message_of(&e), Vec::new(), Vec::new());
        }
    };
    let headers = pairs(&a.headers);
    let trailers = pairs(&a.trailers);
    if a.status != 200 {
        let message = format!("HTTP status {}", a.status);
        return failed(http_code(a.status), message, headers, trailers);
    }
    // a trailers-only answer has its status in the headers
    let status_of = |m: &HeaderMap| {
        m.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let Some(code) = status_of(&a.trailers).or_else(|| status_of(&a.headers)) else {
        return failed(codes::INTERNAL, "no grpc-status".into(), headers, trailers);
    };
    let grpc_message = a
        .trailers
        .get("grpc-message")
        .or_else(|| a.headers.get("grpc-message"))
        .map(|v| {
            percent_encoding::percent_decode(v.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    if code != codes::OK {
        return failed(code, grpc_message, headers, trailers);
    }
    match unframe(&a.body) {
        Ok(message) => CallAnswer {
            status: 200,
            headers,
            body: message,
            trailers,
            grpc: None,
        },
        Err(why) => failed(codes::INTERNAL, why.into(), headers, trailers),
    }
}

/// The status message of a call that got no answer: what went wrong, without the
/// target's address or the transport's details (those go to the gateway's log).
fn message_of(e: &UpstreamCallError) -> String {
    match e {
        UpstreamCallError::UnknownUpstream(_) | UpstreamCallError::NoTarget { .. } => e.to_string(),
        UpstreamCallError::Unavailable => "calls are not available here".into(),
        UpstreamCallError::Connect(_) => "cannot connect to the upstream".into(),
        UpstreamCallError::Timeout => "no answer in time".into(),
        UpstreamCallError::AnswerTooLarge(n) => format!("answer over {n} bytes"),
        UpstreamCallError::InvalidRequest(_) => "invalid request".into(),
        UpstreamCallError::Transport(_) => "the upstream's connection failed".into(),
    }
}

fn failed(
    code: u32,
    message: String,
    headers: Vec<(String, Bytes)>,
    trailers: Vec<(String, Bytes)>,
) -> CallAnswer {
    CallAnswer {
        status: 0,
        headers,
        body: Bytes::new(),
        trailers,
        grpc: Some(GrpcStatus { code, message }),
    }
}

/// The one message of a unary answer.
fn unframe(body: &Bytes) -> Result<Bytes, &'static str> {
    if body.len() < 5 {
        return Err("the answer has no message");
    }
    if body[0] != 0 {
        return Err("the answer's message is compressed");
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() != 5 + len {
        return Err("the answer is not one whole message");
    }
    Ok(body.slice(5..))
}

/// The gRPC code of an HTTP status (gRPC's "HTTP to gRPC status code mapping").
fn http_code(status: u16) -> u32 {
    match status {
        400 => codes::INTERNAL,
        401 => codes::UNAUTHENTICATED,
        403 => codes::PERMISSION_DENIED,
        404 => codes::UNIMPLEMENTED,
        429 | 502..=504 => codes::UNAVAILABLE,
        _ => codes::UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ok(body: Bytes, trailers: &[(&'static str, &'static str)]) -> UpstreamResponse {
        let mut t = HeaderMap::new();
        for (k, v) in trailers {
            t.insert(*k, HeaderValue::from_static(v));
        }
        UpstreamResponse {
            status: 200,
            headers: HeaderMap::new(),
            body,
            trailers: t,
        }
    }

    #[test]
    fn a_message_with_status_ok_is_received() {
        let a = answer(Ok(ok(frame(b"allow"), &[("grpc-status", "0")])));
        assert!(a.grpc.is_none());
        assert_eq!(&a.body[..], b"allow");
        assert_eq!(a.trailers[0].0, "grpc-status");
    }

    #[test]
    fn a_status_closes_the_call_with_its_decoded_message() {
        let a = answer(Ok(ok(
            Bytes::new(),
            &[("grpc-status", "7"), ("grpc-message", "not%20on the list")],
        )));
        let s = a.grpc.unwrap();
        assert_eq!((s.code, s.message.as_str()), (7, "not on the list"));
    }

    #[test]
    fn failures_get_the_codes_grpc_maps_them_to() {
        let code = |r| answer(r).grpc.unwrap().code;
        assert_eq!(code(Err(UpstreamCallError::Timeout)), 4);
        assert_eq!(code(Err(UpstreamCallError::Connect("refused".into()))), 14);
        let refused = answer(Err(UpstreamCallError::Connect("10.0.0.1:50051".into())));
        assert_eq!(
            refused.grpc.unwrap().message,
            "cannot connect to the upstream"
        );
        assert_eq!(
            code(Err(UpstreamCallError::UnknownUpstream("x".into()))),
            14
        );
        let mut r = ok(Bytes::new(), &[]);
        r.status = 404;
        assert_eq!(code(Ok(r)), 12);
        // no status at all, a compressed message, a cut message
        assert_eq!(code(Ok(ok(frame(b"x"), &[]))), 13);
        let mut z = BytesMut::from(&frame(b"x")[..]);
        z[0] = 1;
        assert_eq!(code(Ok(ok(z.freeze(), &[("grpc-status", "0")]))), 13);
        let cut = frame(b"hello").slice(..7);
        assert_eq!(code(Ok(ok(cut, &[("grpc-status", "0")]))), 13);
    }

    #[test]
    fn a_trailers_only_answer_has_its_status_in_the_headers() {
        let mut r = ok(Bytes::new(), &[]);
        r.headers
            .insert("grpc-status", HeaderValue::from_static("16"));
        assert_eq!(answer(Ok(r)).grpc.unwrap().code, 16);
    }
}
