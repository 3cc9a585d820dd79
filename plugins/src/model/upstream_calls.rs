//! Calls from a plugin to an upstream pool of routes.yaml (`mirror`, a wasm plugin's
//! `proxy_http_call`): the gateway sends the request to a target of the named pool with
//! that pool's balancing, health, breakers, retry policy, timeouts and TLS, as it does
//! for a proxied request, and gives back the whole answer.
//!
//! A plugin gets the calls with [`crate::BuildCtx::upstreams`] at build and keeps the
//! `Arc`; the pools are looked up by name at call time, so a call made after a reload
//! goes to the pool of the table now serving. A dry build (`check`, validation) gets
//! calls that refuse ([`UpstreamCallError::Unavailable`]). A plugin that names pools
//! says so through [`crate::Plugin::upstreams`]: the gateway then refuses a table whose
//! plugin names an unknown pool, at the option's line.

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method};
use std::time::Duration;

/// A request to a pool. `path` is sent as is (path and query, starting with `/`);
/// the gateway sets `Host` (the pool's `host`, else the target's address) and
/// `Content-Length`; hop-by-hop headers in `headers` are not sent.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Time for the whole call, retries included (each try is also bounded by the
    /// pool's own `timeouts`).
    pub timeout: Duration,
    /// Largest answer body read; a larger one fails the call
    /// ([`UpstreamCallError::AnswerTooLarge`]).
    pub max_answer_body: usize,
    /// HTTP/2 to the target (prior knowledge over plain TCP, ALPN over TLS), as gRPC
    /// needs; else HTTP/1.1 (or what TLS negotiates).
    pub http2: bool,
}

impl UpstreamRequest {
    /// A request with no headers or body, a 10 s timeout and a 1 MiB answer limit.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: Duration::from_secs(10),
            max_answer_body: 1024 * 1024,
            http2: false,
        }
    }
}

/// The pool's answer, whatever its status (statuses the pool's `retry.on` lists are
/// retried first, as for proxied requests).
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The trailers after the body (HTTP/2 and chunked HTTP/1.1; gRPC's status).
    pub trailers: HeaderMap,
}

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamCallError {
    /// The table serving now has no pool of this name.
    #[error("unknown upstream `{0}`")]
    UnknownUpstream(String),
    /// A dry build (`check`, validation): nothing is called.
    #[error("upstream calls are not available in a dry build")]
    Unavailable,
    /// Every target of the pool is down, ejected or behind an open breaker.
    #[error("no healthy target in upstream `{upstream}`")]
    NoTarget {
        upstream: String,
        retry_after: Duration,
    },
    /// No target could be reached.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// No answer within the call's timeout or the pool's.
    #[error("no answer in time")]
    Timeout,
    /// The answer's body is larger than [`UpstreamRequest::max_answer_body`].
    #[error("answer body over {0} bytes")]
    AnswerTooLarge(usize),
    /// The request cannot be sent (a bad path or header).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Another transport failure (a connection reset mid-answer...).
    #[error("{0}")]
    Transport(String),
}

/// Sends requests to the pools of routes.yaml; see the module docs.
#[async_trait]
pub trait UpstreamCalls: Send + Sync + 'static {
    /// Sends `req` to a target of pool `upstream` and returns its answer.
    async fn call(
        &self,
        upstream: &str,
        req: UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamCallError>;
}

/// The calls of a dry build: every call is refused.
pub struct NoUpstreamCalls;

#[async_trait]
impl UpstreamCalls for NoUpstreamCalls {
    async fn call(
        &self,
        _upstream: &str,
        _req: UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamCallError> {
        Err(UpstreamCallError::Unavailable)
    }
}

/// A pool a plugin's settings name, for the gateway's check: `option` is the path of
/// the option inside the plugin entry (`upstream`, `calls[1].upstream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRef {
    pub option: String,
    pub upstream: String,
}

impl UpstreamRef {
    pub fn new(option: impl Into<String>, upstream: impl Into<String>) -> Self {
        Self {
            option: option.into(),
            upstream: upstream.into(),
        }
    }
}
