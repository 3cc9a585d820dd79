//! The per-request context shared by the proxy phases.

use crate::observability::otel::SpanRecord;
use crate::observability::trace::TraceContext;
use crate::runtime::CompiledRoute;
use crate::upstream::{Outcome, Pick, Pool};
use gateway_plugins::PluginCtx;
use http::HeaderValue;
use smallvec::SmallVec;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the gateway itself failed a request, for the error answer and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No target could take the request; seconds until one may.
    NoTarget(Duration),
    /// The route's total time ran out.
    RouteTimeout,
}

/// A plugin decision taken in the body phase, written by `fail_to_proxy`.
pub enum Deferred {
    Reply(gateway_plugins::Reply),
    Failure(gateway_plugins::PluginFailure),
}

/// What [`Ctx::chain_owners`] returns.
pub type ChainOwners = (
    Option<Arc<CompiledRoute>>,
    Option<Arc<[gateway_plugins::Instance]>>,
);

/// The plugin chain of a route, else the global chain of an unmatched request.
pub fn chain_of<'a>(
    route: &'a Option<Arc<CompiledRoute>>,
    unmatched: &'a Option<Arc<[gateway_plugins::Instance]>>,
) -> &'a [gateway_plugins::Instance] {
    match (route, unmatched) {
        (Some(r), _) => &r.plugins,
        (None, Some(g)) => g,
        (None, None) => &[],
    }
}

/// Everything one request carries through the phases.
pub struct Ctx {
    pub start: Instant,
    pub request_id: HeaderValue,
    /// The matched route; it pins the route, its pool and plugins from the table the
    /// request started on, so a reload never changes a request midway.
    pub route: Option<Arc<CompiledRoute>>,
    /// Path and query to send upstream when they differ from the client's.
    pub upstream_path: Option<String>,
    /// The pool of this request: the route's, or the side a split chose.
    pub pool: Option<Arc<Pool>>,
    /// The side a split route chose (an index into its sides).
    pub side: Option<usize>,
    /// A connect failure moved this split request to another side (once).
    pub side_switched: bool,
    pub pick: Option<Pick>,
    /// Outcome recorded for the current pick, applied when it is released.
    pub outcome: Option<Outcome>,
    pub tried: SmallVec<[SocketAddr; 4]>,
    pub tries: u32,
    pub plugin: PluginCtx,
    /// The normalised path, kept for the plugins' body phase.
    pub plugin_path: Option<String>,
    /// The request body being gathered for the plugins' body phase.
    pub body_buf: Option<bytes::BytesMut>,
    /// The body phase has run (a retry resends the body as it is).
    pub body_checked: bool,
    /// An answer decided in the body phase.
    pub deferred: Option<Deferred>,
    /// The streaming request-body phase's account (what went upstream, retries).
    pub chunks: super::request_chunks::ChunkState,
    pub body_bytes: u64,
    /// The try (`tries`) the last body bytes went to: a retry's first piece is
    /// pingora's copy of bytes already counted.
    pub body_try: u32,
    pub failure: Option<Failure>,
    pub trace: Option<TraceContext>,
    /// Label of the error, for `gateway_route_errors_total`.
    pub error_type: Option<&'static str>,
    /// Time spent waiting on the upstream (first byte of headers), for route metrics.
    pub upstream_time: Option<Duration>,
    /// `retry` was set on a status error by `upstream_response_filter`.
    pub status_retry: bool,
    /// The gateway answered by itself (probe, error, plugin or fallback).
    pub answered: Option<u16>,
    /// Phases to export as child spans (only when OTLP export is on).
    pub spans: Option<Vec<SpanRecord>>,
    /// The global plugins, for a request that matched no route (404, 405).
    pub unmatched: Option<Arc<[gateway_plugins::Instance]>>,
    /// When the answer's first body byte (or its head, for an answer without a body)
    /// was handed to the client, for `gateway_time_to_first_byte_seconds`.
    pub first_byte: Option<Duration>,
    /// A proxied event stream of a route with `sse_keepalive`.
    pub sse: Option<super::sse_keepalive::SseKeepalive>,
    /// A plugin answered instead of the upstream (or of a streamed flow) in the
    /// response phase: that answer has been written, the upstream's body is dropped.
    pub replaced: bool,
    /// After such an answer, the rest of the upstream's may be far off (a stream, a
    /// large body): the upstream's connection is cut at its next event or at once
    /// ([`super::answer::CUT`]) instead of read to its end.
    pub cut_upstream: bool,
}

impl Ctx {
    pub fn new() -> Self {
        let start = Instant::now();
        Self {
            start,
            request_id: HeaderValue::from_static(""),
            route: None,
            upstream_path: None,
            pool: None,
            side: None,
            side_switched: false,
            pick: None,
            outcome: None,
            tried: SmallVec::new(),
            tries: 0,
            plugin: PluginCtx {
                started: Some(start),
                ..Default::default()
            },
            plugin_path: None,
            body_buf: None,
            body_checked: false,
            deferred: None,
            chunks: Default::default(),
            body_bytes: 0,
            body_try: 0,
            failure: None,
            trace: None,
            error_type: None,
            upstream_time: None,
            status_retry: false,
            answered: None,
            spans: None,
            unmatched: None,
            first_byte: None,
            sse: None,
            replaced: false,
            cut_upstream: false,
        }
    }

    /// The plugin chain of this request: its route's, or the global plugins when it
    /// matched no route.
    pub fn plugins(&self) -> &[gateway_plugins::Instance] {
        chain_of(&self.route, &self.unmatched)
    }

    /// The chain's owners, cloned (two `Arc`s), for a phase that needs the chain and
    /// `&mut self.plugin` at once: pass them to [`chain_of`].
    pub fn chain_owners(&self) -> ChainOwners {
        (self.route.clone(), self.unmatched.clone())
    }

    /// Releases the current target with its outcome (`fallback` when none was seen).
    pub fn release_pick(&mut self, fallback: Outcome) {
        if let Some(p) = self.pick.take() {
            let outcome = self.outcome.take().unwrap_or(fallback);
            if let Some(spans) = self.spans.as_mut() {
                let duration = p.elapsed();
                spans.push(SpanRecord {
                    name: "upstream attempt".into(),
                    offset: self.start.elapsed().saturating_sub(duration),
                    duration,
                    attributes: vec![
                        ("server.address", p.addr.to_string()),
                        ("gateway.outcome", format!("{outcome:?}")),
                    ],
                });
            }
            p.finish(outcome);
        }
    }

    /// The name of the split side that served this request, if any.
    pub fn side_name(&self) -> Option<&str> {
        let split = self.route.as_ref()?.split.as_ref()?;
        Some(split.sides.get(self.side?)?.name.as_str())
    }

    pub fn route_name(&self) -> &str {
        self.route.as_ref().map_or("none", |r| r.name.as_str())
    }
}

impl Default for Ctx {
    fn default() -> Self {
        Self::new()
    }
}
