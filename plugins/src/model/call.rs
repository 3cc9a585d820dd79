//! What a request phase is given: one request, as pingora's `request_filter(session,
//! ctx)` gives a filter its session: the head, what the gateway knows besides it
//! ([`RequestInfo`]) and the per-request state the route's plugins share
//! ([`PluginCtx`]); and what a request phase answers ([`Decision`]).

use super::{Flow, Identity, PluginCtx, PluginFailure};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use pingora_http::RequestHeader;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What a request phase decides: go on, answer instead, or fail (a dependency is down).
pub type Decision = Result<Flow, PluginFailure>;

/// What the gateway tells plugins about a request besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The matched route's name.
    pub route: &'a str,
    /// The TCP peer's address.
    pub client_ip: Option<IpAddr>,
    /// The TCP peer's port (`None` on a Unix socket, in tests).
    pub client_port: Option<u16>,
    /// The normalised path.
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The listener's address the client connected to (`None` on a Unix socket, in
    /// tests).
    pub local: Option<SocketAddr>,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// What the TLS listener learnt in the connection's handshake (version, SNI, the
    /// verified client certificate).
    pub tls_conn: Option<&'a Arc<TlsConn>>,
    /// The request has no body, as the gateway reads its framing (HTTP/1: neither
    /// `Transfer-Encoding` nor a `Content-Length` above 0; HTTP/2: its headers ended
    /// the stream).
    pub body_empty: bool,
}

impl<'a> RequestInfo<'a> {
    /// A plain-HTTP request on `route` for `path`, without query, peer, certificate or
    /// body (the other fields are public to set).
    pub fn new(route: &'a str, path: &'a str) -> Self {
        RequestInfo {
            route,
            client_ip: None,
            client_port: None,
            path,
            query: None,
            local: None,
            tls: false,
            tls_conn: None,
            body_empty: true,
        }
    }

    /// The client certificate the TLS listener verified (mTLS), when one was sent.
    pub fn client_cert(&self) -> Option<&'a ClientCert> {
        self.tls_conn.and_then(|c| c.cert.as_ref())
    }
}

/// What the TLS listener learnt of a client connection in its handshake, once per
/// connection; every request on it shares it.
#[derive(Debug, Clone, Default)]
pub struct TlsConn {
    /// The negotiated version, as Envoy names it (`TLSv1.2`, `TLSv1.3`).
    pub version: Option<&'static str>,
    /// The server name the client asked for (SNI), lower-case.
    pub sni: Option<String>,
    /// The client certificate the listener verified (mTLS), when one was sent.
    pub cert: Option<ClientCert>,
}

/// A client certificate verified by the TLS listener.
#[derive(Debug, Clone, Default)]
pub struct ClientCert {
    /// Subject common name.
    pub common_name: Option<String>,
    /// Subject alternative names (DNS names, URIs, e-mail addresses, IP addresses), in
    /// certificate order.
    pub sans: Vec<San>,
    /// The whole subject, RFC 4514 style (`CN=alice,O=Example`).
    pub subject: String,
    /// SHA-256 fingerprint of the DER certificate, lower-case hex.
    pub fingerprint: String,
}

/// One subject alternative name of a [`ClientCert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    Dns(String),
    Uri(String),
    Email(String),
    Ip(IpAddr),
}

/// One request in the request phase ([`super::Plugin::on_request`]): its head, which the
/// plugin may edit (what goes upstream), what the gateway knows besides it, and the
/// state the route's plugins share for it.
#[derive(Debug)]
pub struct RequestCall<'a> {
    /// The request head; changes reach the upstream.
    pub req: &'a mut RequestHeader,
    /// The route, the peer, the normalised path and query, TLS.
    pub info: RequestInfo<'a>,
    /// State shared by the route's plugins for this request.
    pub ctx: &'a mut PluginCtx,
}

impl<'a> RequestCall<'a> {
    pub fn new(req: &'a mut RequestHeader, info: RequestInfo<'a>, ctx: &'a mut PluginCtx) -> Self {
        RequestCall { req, info, ctx }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.req.method
    }

    /// The first value of a request header.
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&HeaderValue> {
        self.req.headers.get(name)
    }

    /// The identity an earlier (authentication) plugin set.
    pub fn identity(&self) -> Option<&Identity> {
        self.ctx.identity.as_ref()
    }

    /// Authenticates the request as `id`: later plugins, the access log and metrics
    /// see it.
    pub fn set_identity(&mut self, id: Identity) {
        self.ctx.identity = Some(id);
    }

    /// Removes a request header before it goes upstream (a credential the plugin hides).
    pub fn remove_header(&mut self, name: &HeaderName) {
        self.req.remove_header(name);
    }
}

/// One request in the body phase ([`super::Plugin::on_request_body`]): the whole body,
/// the head as it went upstream (read-only: it is sent before the body), what the
/// gateway knows besides it, and the state the route's plugins share for it.
#[derive(Debug)]
pub struct BodyCall<'a> {
    /// The whole request body.
    pub body: &'a Bytes,
    /// The request head, read-only.
    pub req: &'a RequestHeader,
    /// The route, the peer, the normalised path and query, TLS.
    pub info: RequestInfo<'a>,
    /// State shared by the route's plugins for this request.
    pub ctx: &'a mut PluginCtx,
}

/// One piece of a request body in the streaming body phase
/// ([`super::Plugin::on_request_chunk`]), as it arrives from the client: the plugin may
/// let it go on, replace it, or take it and hold it back to give it (with more) on a
/// later call; what `body` holds when the phase returns goes upstream now. The head
/// as it went upstream (read-only: it is sent before the body), what the gateway
/// knows besides it, and the state the route's plugins share for it.
#[derive(Debug)]
pub struct ChunkCall<'a> {
    /// The bytes that arrived (`None` or empty: none, e.g. the end of the body); what it
    /// holds after the call is what goes on (to the next such plugin, then upstream).
    pub body: &'a mut Option<Bytes>,
    /// The last call for this request: the plugin must let go of what it holds.
    pub end_of_stream: bool,
    /// Set by a plugin that changed bytes (not only held them back to give them
    /// later): the gateway then cannot send the client's body again on a retry, and
    /// checks that the body still matches a declared `Content-Length`.
    pub rewritten: bool,
    /// The request head, read-only.
    pub req: &'a RequestHeader,
    /// The route, the peer, the normalised path and query, TLS.
    pub info: RequestInfo<'a>,
    /// State shared by the route's plugins for this request.
    pub ctx: &'a mut PluginCtx,
}
