//! A request's state in a filter: its context (slot, instance generation, id), the
//! properties its callbacks read, request and response body held back by `Pause`. Kept
//! in the request's [`crate::PluginCtx`] as the filter's own value; a request that ends
//! without the log phase (a client gone) still gets `proxy_on_done` and `proxy_on_delete` when it is dropped.

use super::vm::Vm;
use crate::{BodyBytes, Reply, TlsConn};
use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::HeaderValue;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What the properties of a request are made of.
pub struct ReqProps {
    pub request_id: Option<HeaderValue>,
    pub client_ip: Option<IpAddr>,
    /// The client's port (`source.address` is `ip:port`, as in Envoy).
    pub client_port: Option<u16>,
    /// Path and query as the client sent them.
    pub path: PathAndQuery,
    pub method: http::Method,
    /// The client's HTTP version (`request.protocol`).
    pub version: http::Version,
    /// The listener's address the client connected to (`destination.*`).
    pub local: Option<SocketAddr>,
    pub tls: bool,
    /// What the TLS handshake negotiated (`connection.tls_version`,
    /// `connection.requested_server_name`) and the client's certificate, when the
    /// listener verified one (the `connection.*_peer_certificate` properties;
    /// `connection.mtls`).
    pub conn: Option<Arc<TlsConn>>,
    /// When the gateway began reading the request (`request.time`,
    /// `request.duration`).
    pub started: Option<std::time::Instant>,
    /// The upstream target that answered, in the response phases (`upstream.address`).
    pub upstream: Option<SocketAddr>,
    /// The body sizes, in `proxy_on_log` (`request.size`, `response.size`).
    pub body_bytes: Option<BodyBytes>,
    /// The answer's status once known (`response.code`).
    pub status: u16,
    /// Properties the filter set (`proxy_set_property`).
    pub custom: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Default for ReqProps {
    /// A root context's: no request.
    fn default() -> Self {
        Self {
            request_id: None,
            client_ip: None,
            client_port: None,
            path: PathAndQuery::from_static("/"),
            method: http::Method::default(),
            version: http::Version::HTTP_11,
            started: None,
            upstream: None,
            body_bytes: None,
            local: None,
            tls: false,
            conn: None,
            status: 0,
            custom: Vec::new(),
        }
    }
}

/// One filter's context for one request.
pub struct WasmReq {
    pub vm: Arc<Vm>,
    pub slot: usize,
    pub gen: u64,
    pub ctx: i32,
    pub props: ReqProps,
    /// Response body held back by a `Pause` of `proxy_on_response_body`.
    pub held: BytesMut,
    /// Request body held back by a `Pause` of `proxy_on_request_body`.
    pub req_held: BytesMut,
    /// The filter failed (open) or is done: no more callbacks.
    pub over: bool,
    /// The filter answered this request itself (its response callbacks are skipped).
    pub answered: bool,
    /// The last request-phase callback (or its HTTP calls' callbacks) called
    /// `proxy_continue_request`: what a `Pause` held goes on now.
    pub continued: bool,
}

/// What a `Pause` held back of a body, then `piece` (the bytes the filter sees next).
pub fn after_held(held: &mut BytesMut, piece: Option<Bytes>) -> Bytes {
    match (piece, held.is_empty()) {
        (Some(b), true) => b,
        (b, _) => {
            if let Some(b) = b {
                held.extend_from_slice(&b);
            }
            held.split().freeze()
        }
    }
}

impl WasmReq {
    /// The filter answered the request itself with `reply` (from the response
    /// phase): none of its response callbacks run on that answer, whose status
    /// `response.code` gives from now on.
    pub fn answered_with(&mut self, reply: &Reply) {
        self.answered = true;
        self.props.status = reply.status;
    }

    /// Ends the context once (`proxy_on_log` when `log`, `proxy_on_done`,
    /// `proxy_on_delete`).
    pub fn end(&mut self, log: bool) {
        if !self.over {
            self.over = true;
            self.vm
                .end(self.slot, self.gen, self.ctx, &mut self.props, log);
        }
    }
}

impl Drop for WasmReq {
    fn drop(&mut self) {
        self.end(false);
    }
}
