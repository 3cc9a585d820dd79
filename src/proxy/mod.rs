//! The pingora `ProxyHttp` phases. Each phase delegates to the module that owns the
//! concept (router, plugins, upstream, observability); nothing else lives here.

mod answer;
mod body;
mod client_cert;
mod ctx;
mod edge;
mod flow;
mod flow_stream;
mod headers;
mod openapi;
mod peer;
mod respond;
mod retry;
mod routing;
mod sse_keepalive;

mod phases;
mod request_chunks;

pub(crate) use client_cert::conn as tls_conn_of;
pub use ctx::{Ctx, Deferred, Failure};
pub(crate) use headers::{new_request_id, valid_request_id};
pub use respond::error_body;
pub(crate) use respond::kind_for;

use routing::{route_request, Decision};

use crate::gateway::Gateway;
use crate::runtime::HostHeader;
use crate::upstream::Outcome;
use async_trait::async_trait;
use bytes::Bytes;
use gateway_plugins::BodyBytes;
use http::HeaderValue;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::Duration;

/// The gateway's proxy logic.
pub struct GatewayProxy {
    pub gw: Arc<Gateway>,
}

#[async_trait]
impl ProxyHttp for GatewayProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::new()
    }

    /// No downstream modules: pingora's default adds its response-compression module,
    /// disabled, which still cost an allocation and three boxed phase calls per request;
    /// the gateway does not compress.
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let rt = self.gw.live.load_full();
        // idle keep-alive connections are closed after the configured time, not kept forever
        if self.gw.is_closing_connections() {
            // shutting down or handing over: `Connection: close` on every answer, so
            // clients move to new connections instead of racing an idle close
            session.set_keepalive(None);
        } else if session.get_keepalive().is_some() {
            session.set_keepalive(Some(rt.keepalive_secs));
        }
        let req = session.req_header();
        ctx.request_id = match req.headers.get(headers::X_REQUEST_ID.name()) {
            Some(v) if headers::valid_request_id(v) => v.clone(),
            _ => headers::new_request_id(),
        };
        ctx.plugin.request_id = Some(ctx.request_id.clone());
        if let Err(r) = edge::check_host(req) {
            return self.refuse_with(session, ctx, r).await;
        }
        match req.uri.path() {
            "/health" => return self.probe(session, ctx, false).await,
            "/ready" => return self.probe(session, ctx, true).await,
            "/openapi.json" => return self.openapi(session, ctx, &rt).await,
            p if crate::openapi::docs::is_docs_path(p) => return self.docs(session, ctx).await,
            _ => {}
        }
        if let Err(r) = edge::check_head(&rt, session.req_header_mut()) {
            return self.refuse_with(session, ctx, r).await;
        }
        if self.gw.otel.is_some() {
            ctx.spans = Some(Vec::new());
        }
        let decision = route_request(&rt, session.req_header());
        let (route, upstream_path, plugin_path) = match decision {
            Decision::Route(route, up, plugin_path) => (route, up, plugin_path),
            Decision::Refuse(r) => {
                // the global plugins take part in the gateway's 404 and 405 too
                if r.unmatched() && !rt.unmatched.is_empty() {
                    ctx.unmatched = Some(rt.unmatched.clone());
                    let path = crate::router::normalize_path(session.req_header().uri.path())
                        .map(|p| p.into_owned())
                        .unwrap_or_default();
                    if self
                        .chain_request_phase(session, ctx, "none", &rt.unmatched, path)
                        .await?
                    {
                        return Ok(true);
                    }
                }
                return self.refuse_with(session, ctx, r).await;
            }
        };
        ctx.route = Some(route.clone());
        ctx.upstream_path = upstream_path;
        // every routed request gets its trace context (and span), answered or proxied
        if self.gw.trace_context {
            ctx.trace = Some(crate::observability::trace::TraceContext::from_header(
                session
                    .req_header()
                    .headers
                    .get(headers::TRACEPARENT.name())
                    .and_then(|v| v.to_str().ok()),
            ));
        }

        // a declared body larger than allowed is refused before reading it
        if let Some(msg) = body::declared_over(session.req_header(), route.max_body) {
            return self
                .refuse(session, ctx, 413, body::REASON, &msg, &[])
                .await;
        }

        if let Some(path) = plugin_path {
            if self.request_phase(session, ctx, &route, path).await? {
                return Ok(true);
            }
        }
        if !matches!(route.kind, crate::runtime::RouteKind::Proxy) {
            // boxed: the flows' futures (pipelines, streams, jobs) are large, and this
            // phase's future is copied whole into async_trait's box on every request
            return Box::pin(self.flow(session, ctx, &route)).await;
        }
        routing::choose_pool(session.req_header(), ctx, &route);
        if ctx.pool.is_none() {
            if route.reads_body()
                && !ctx.body_checked
                && self
                    .body_phase_before_fallback(session, ctx, &route)
                    .await?
            {
                return Ok(true);
            }
            return self.fallback(session, ctx, &[]).await;
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        eos: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(r) = ctx.route.clone() else {
            return Ok(());
        };
        if let Some(b) = body.as_ref() {
            if body::count_over(ctx, b.len(), r.max_body) {
                self.gw
                    .metrics
                    .blocked
                    .with_label_values(&[body::REASON])
                    .inc();
                return Err(body::streamed_over(r.max_body));
            }
        }
        if r.needs_body {
            if !ctx.body_checked {
                self.body_phase(session, body, eos, ctx, &r).await?;
            }
        } else if r.reads_request_chunks {
            self.chunk_phase(session, body, eos, ctx, &r).await?;
        }
        Ok(())
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        peer::pick(session, ctx).await
    }

    /// Counts the connection of the request's target (new or from the keep-alive pool).
    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        reused: bool,
        _peer: &HttpPeer,
        #[cfg(unix)] _fd: std::os::unix::io::RawFd,
        #[cfg(windows)] _sock: std::os::windows::io::RawSocket,
        _digest: Option<&pingora_core::protocols::Digest>,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(p) = ctx.pick.as_mut() {
            p.connected(reused);
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(p) = &ctx.upstream_path {
            let uri: http::Uri = p.parse().map_err(|_| {
                Error::explain(
                    ErrorType::InternalError,
                    "rewritten path is not a valid URI",
                )
            })?;
            up.set_uri(uri);
        }
        let upgrade = session.is_upgrade_req();
        headers::strip_request(up, upgrade);
        let client_host = session
            .req_header()
            .headers
            .get(http::header::HOST)
            .cloned();
        headers::forwarded(
            up,
            headers::client_ip(session),
            headers::is_tls(session),
            client_host.as_ref(),
        );
        up.insert_header(&headers::X_REQUEST_ID, ctx.request_id.clone())?;
        if let Some(t) = &ctx.trace {
            up.insert_header(&headers::TRACEPARENT, t.traceparent())?;
        }
        if let Some(route) = ctx.route.clone() {
            match &route.host_header {
                HostHeader::Preserve => {}
                HostHeader::Set(v) => up.insert_header(http::header::HOST, v.clone())?,
                HostHeader::Upstream => {
                    let host = ctx.pool.as_ref().and_then(|p| p.config.host.clone());
                    match (host, ctx.pick.as_ref()) {
                        (Some(h), _) => up.insert_header(http::header::HOST, h)?,
                        (None, Some(p)) => {
                            up.insert_header(http::header::HOST, p.state.host.clone())?
                        }
                        (None, None) => {}
                    }
                }
            }
            for (i, p) in route.plugins.iter().enumerate() {
                ctx.plugin.enter(i);
                p.on_upstream_request(up, &mut ctx.plugin);
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if resp.status.is_informational() && resp.status != http::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(());
        }
        let status = resp.status.as_u16();
        ctx.outcome = Some(Outcome::Status(status));
        ctx.upstream_time = ctx.pick.as_ref().map(|p| p.elapsed());
        if retry::should_retry_status(ctx, session, status) {
            ctx.status_retry = true;
            let mut e = Error::explain(
                ErrorType::HTTPStatus(status),
                "retryable status from upstream",
            );
            e.set_retry(true);
            return Err(e);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        headers::strip_response(resp);
        if let Some(r) = answer::response_phase(resp, ctx).await {
            return answer::replace_upstream(session, resp, ctx, r).await;
        }
        if let Some(route) = &ctx.route {
            ctx.sse = sse_keepalive::start(resp, route);
        }
        Ok(())
    }

    /// The plugins' response body phase, chunk by chunk, for routes that have one.
    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        if ctx.replaced {
            // a plugin answered instead in the response phase
            return answer::drop_replaced(ctx, body, end_of_stream).map(|()| None);
        }
        if ctx.first_byte.is_none()
            && (end_of_stream || body.as_ref().is_some_and(|b| !b.is_empty()))
        {
            ctx.first_byte = Some(ctx.start.elapsed());
        }
        if let (Some(k), Some(b)) = (ctx.sse.as_mut(), body.as_ref()) {
            k.saw(b);
        }
        answer::response_body_phase(ctx, body, end_of_stream)
            .map_err(|r| answer::late_replacement(session, ctx, *r))?;
        Ok(None)
    }

    /// A proxied event stream of a route with `sse_keepalive` (pingora's idle timer,
    /// vendor patch 0011); at once for a replaced answer whose upstream is cut.
    fn upstream_idle_interval(&self, _session: &Session, ctx: &Ctx) -> Option<Duration> {
        answer::cut_now(ctx).or_else(|| ctx.sse.as_ref().map(|k| k.every))
    }

    /// `: keep-alive` when the stream stands between two events.
    fn upstream_idle_body(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Option<Bytes>> {
        answer::cut_if_due(ctx)?;
        sse_keepalive::due(ctx).map_err(|r| answer::late_replacement(session, ctx, *r))
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let timeout = matches!(e.etype(), ErrorType::ConnectTimedout);
        ctx.outcome = Some(if timeout {
            Outcome::Timeout
        } else {
            Outcome::ConnectFailure
        });
        ctx.error_type = Some(if timeout {
            "connect_timeout"
        } else {
            "connect_failure"
        });
        // nothing reached the target: always safe to retry while tries remain, and on
        // a split, once on another side when this side's tries are spent
        let retry = retry::may_retry(ctx, session, true) || peer::switch_side(ctx, session);
        e.set_retry(retry);
        e
    }

    fn error_while_proxy(
        &self,
        _peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e;
        if ctx.status_retry {
            ctx.status_retry = false;
            return e;
        }
        let timeout = matches!(
            e.etype(),
            ErrorType::ReadTimedout | ErrorType::WriteTimedout
        );
        if ctx.outcome.is_none() {
            ctx.outcome = Some(if timeout {
                Outcome::Timeout
            } else {
                Outcome::Error
            });
        }
        if ctx.error_type.is_none() && e.esource() == &pingora_error::ErrorSource::Upstream {
            ctx.error_type = Some(if timeout { "timeout" } else { "upstream_error" });
        }
        let retry = retry::retry_after_error(ctx, session, &e, timeout, client_reused)
            || (retry::broke_before_answer(ctx, session, &e) && peer::switch_side(ctx, session));
        e.set_retry(retry);
        e
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy
    where
        Ctx: Send + Sync,
    {
        if let Some(done) = answer::cut_ended(session, e) {
            return done;
        }
        let code = retry::status_for_error(e, ctx);
        // the connection is not reused after a failure (the request body may be unread):
        // pingora then answers `Connection: close`, so that clients open a new one
        session.set_keepalive(None);
        if let Some(d) = ctx.deferred.take() {
            if let Err(we) = self.answer_deferred(session, ctx, d).await {
                tracing::debug!(error = %we, "cannot write the plugin answer");
            }
            return FailToProxy {
                error_code: ctx.answered.unwrap_or(code),
                can_reuse_downstream: false,
            };
        }
        if code > 0 && session.response_written().is_none() {
            // graceful degradation: a route's fallback answers for any upstream failure
            let upstream_failed =
                matches!(code, 502..=504) && (ctx.tries > 0 || ctx.failure.is_some());
            let written = match (upstream_failed, ctx.failure) {
                (true, _) if self.fallback(session, ctx, &[]).await.unwrap_or(false) => Ok(()),
                (_, Some(Failure::NoTarget(after))) => {
                    let secs = after.as_secs().max(1).to_string();
                    let ra = HeaderValue::from_str(&secs)
                        .unwrap_or_else(|_| HeaderValue::from_static("1"));
                    self.answer_error(
                        session,
                        ctx,
                        503,
                        "service_unavailable",
                        "no healthy target for this route",
                        &[(http::header::RETRY_AFTER, ra)],
                    )
                    .await
                }
                _ => {
                    let msg = match code {
                        413 => body::too_large(ctx.route.as_ref().map_or(0, |r| r.max_body)),
                        504 => "the upstream did not answer in time".to_string(),
                        502 => "the upstream could not be reached or failed".to_string(),
                        _ => e.to_string(),
                    };
                    self.answer_error(session, ctx, code, respond::kind_for(code), &msg, &[])
                        .await
                }
            };
            if let Err(we) = written {
                tracing::debug!(error = %we, "cannot write the error answer");
            }
        }
        if ctx.answered.is_none() {
            ctx.answered = Some(code);
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// A plugin's answer from the body phase and a body over the limit are answered and
    /// counted; they are not proxy failures to log at error level.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, e: &Error) -> bool {
        body::quiet(e) || answer::is_cut(e)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let e = e.filter(|e| !answer::is_cut(e));
        ctx.release_pick(if e.is_some() {
            Outcome::Error
        } else {
            Outcome::Status(200)
        });
        let (route, unmatched) = ctx.chain_owners();
        let chain = ctx::chain_of(&route, &unmatched);
        if !chain.is_empty() {
            let status = session
                .response_written()
                .map(|r| r.status.as_u16())
                .or(ctx.answered)
                .unwrap_or(0);
            ctx.plugin.body_bytes = Some(BodyBytes {
                read: session.body_bytes_read() as u64,
                sent: session.body_bytes_sent() as u64,
            });
            for (i, p) in chain.iter().enumerate() {
                ctx.plugin.enter(i);
                p.on_log(status, &mut ctx.plugin);
            }
        }
        crate::observability::access::record(&self.gw, session, e, ctx);
    }
}
