//! The plugin request and body phases of a route's chain, and reading a whole body for
//! routes that answer without an upstream (flows, fallback-only routes).

use super::client_cert::tls_conn;
use super::ctx::Deferred;
use super::headers::is_tls;
use super::{request_chunks, Ctx, GatewayProxy};
use crate::observability::otel::SpanRecord;
use crate::runtime::CompiledRoute;
use bytes::{Bytes, BytesMut};
use gateway_plugins::{BodyCall, Flow, Instance, RequestCall, RequestInfo, TlsConn};
use pingora_error::Result;
use pingora_proxy::Session;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What a [`RequestInfo`] borrows, taken from the session once.
pub(super) struct InfoParts {
    query: Option<String>,
    tls_conn: Option<Arc<TlsConn>>,
    client_ip: Option<IpAddr>,
    client_port: Option<u16>,
    local: Option<SocketAddr>,
    tls: bool,
    body_empty: bool,
}

impl InfoParts {
    /// `body_empty`: the request has no body (the body phases know it has one).
    pub(super) fn of(session: &Session, body_empty: bool) -> Self {
        let peer = session.client_addr().and_then(|a| a.as_inet());
        Self {
            query: session.req_header().uri.query().map(str::to_owned),
            tls_conn: tls_conn(session),
            client_ip: peer.map(|a| a.ip()),
            client_port: peer.map(|a| a.port()),
            local: session.server_addr().and_then(|a| a.as_inet()).copied(),
            tls: is_tls(session),
            body_empty,
        }
    }

    pub(super) fn info<'a>(&'a self, route: &'a str, path: &'a str) -> RequestInfo<'a> {
        RequestInfo {
            route,
            client_ip: self.client_ip,
            client_port: self.client_port,
            path,
            query: self.query.as_deref(),
            local: self.local,
            tls: self.tls,
            tls_conn: self.tls_conn.as_ref(),
            body_empty: self.body_empty,
        }
    }
}

impl GatewayProxy {
    /// Runs each plugin's request phase in order. `true`: the gateway answered.
    pub(super) async fn request_phase(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        route: &Arc<CompiledRoute>,
        path: String,
    ) -> Result<bool> {
        self.chain_request_phase(session, ctx, &route.name, &route.plugins, path)
            .await
    }

    /// Runs the request phase of `chain` in order, except that a CORS preflight goes
    /// first to the plugins that answer preflights (so no auth plugin refuses a
    /// browser's preflight, wherever `cors` is in the list). `true`: the gateway
    /// answered.
    pub(super) async fn chain_request_phase(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        route: &str,
        chain: &[Instance],
        path: String,
    ) -> Result<bool> {
        // pingora reads the client's body by the head it holds: its framing is fixed
        // here, before a plugin edits Content-Length (one that changes the body's
        // length removes it, and the body then goes upstream chunked)
        let body_empty = session.is_body_empty();
        let parts = InfoParts::of(session, body_empty);
        let preflight = super::routing::preflight_method(session.req_header()).is_some();
        let first = |(_, p): &(usize, &Instance)| preflight && p.answers_preflight();
        let ordered = chain
            .iter()
            .enumerate()
            .filter(first)
            .chain(chain.iter().enumerate().filter(|p| !first(p)));
        {
            let info = parts.info(route, &path);
            for (i, p) in ordered {
                ctx.plugin.enter(i);
                let began = ctx.spans.is_some().then(std::time::Instant::now);
                let mut call = RequestCall::new(session.req_header_mut(), info, &mut ctx.plugin);
                let decided = p.request_step(&mut call).decision().await;
                if let (Some(t), Some(spans)) = (began, ctx.spans.as_mut()) {
                    spans.push(SpanRecord {
                        name: format!("plugin {}", p.name()),
                        offset: t.duration_since(ctx.start),
                        duration: t.elapsed(),
                        attributes: vec![("gateway.phase", "request".into())],
                    });
                }
                match decided {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Respond(reply)) => return self.reply(session, ctx, reply).await,
                    Err(f) => return self.plugin_failed(session, ctx, f).await,
                }
            }
        }
        ctx.plugin_path = Some(path);
        Ok(false)
    }

    /// Gathers the body (bounded by the route's body limit, checked by the caller) and
    /// runs the body phase of the plugins that want it once it is whole; no body byte
    /// goes upstream before. A plugin answer is written by `fail_to_proxy`; a body
    /// a plugin made longer or shorter than the head's Content-Length is refused.
    pub(super) async fn body_phase(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        eos: bool,
        ctx: &mut Ctx,
        route: &Arc<CompiledRoute>,
    ) -> Result<()> {
        let buf = ctx.body_buf.get_or_insert_with(BytesMut::new);
        if let Some(b) = body.take() {
            buf.extend_from_slice(&b);
        }
        if !eos {
            // nothing goes yet (pingora takes `None` for the body's end)
            *body = Some(Bytes::new());
            return Ok(());
        }
        let mut whole = ctx.body_buf.take().unwrap_or_default().freeze();
        if let Some(decided) = self.body_plugins(session, ctx, route, &mut whole).await {
            return Err(super::body::answered(ctx, decided));
        }
        let declared = request_chunks::declared_length(session.req_header());
        let rewriter = ctx.chunks.rewriter();
        let sent = whole.len() as u64;
        if let Some(f) = request_chunks::framing_failure(declared, sent, true, rewriter) {
            return Err(super::body::answered(ctx, Deferred::Failure(f)));
        }
        if !whole.is_empty() {
            *body = Some(whole);
        }
        Ok(())
    }

    /// Runs the body phase of the plugins that want the body, in chain order: the
    /// whole body to those that read it whole, and as one last piece to those that
    /// read it as it streams (which may replace it for the next ones and upstream);
    /// the first decision that is not `Continue` stops it. Marks the body as checked.
    async fn body_plugins(
        &self,
        session: &Session,
        ctx: &mut Ctx,
        route: &Arc<CompiledRoute>,
        whole: &mut Bytes,
    ) -> Option<Deferred> {
        ctx.body_checked = true;
        let path = ctx.plugin_path.clone().unwrap_or_default();
        let parts = InfoParts::of(session, false);
        let info = parts.info(&route.name, &path);
        for (i, p) in route.plugins.iter().enumerate() {
            if !(p.wants_body() || p.wants_request_chunks()) {
                continue;
            }
            ctx.plugin.enter(i);
            let decided = if p.wants_body() {
                let mut call = BodyCall {
                    body: &*whole,
                    req: session.req_header(),
                    info,
                    ctx: &mut ctx.plugin,
                };
                p.on_request_body(&mut call).await
            } else {
                let mut piece = Some(std::mem::take(whole));
                let req = session.req_header();
                let decided = super::request_chunks::run_chunk(
                    p,
                    &mut piece,
                    true,
                    req,
                    info,
                    &mut ctx.plugin,
                    &mut ctx.chunks,
                )
                .await;
                *whole = piece.unwrap_or_default();
                decided
            };
            match decided {
                Ok(Flow::Continue) => {}
                Ok(Flow::Respond(reply)) => return Some(Deferred::Reply(reply)),
                Err(f) => return Some(Deferred::Failure(f)),
            }
        }
        None
    }

    /// Writes a body-phase decision, unless the upstream's answer has begun (a
    /// streamed body's plugin decided late): that one goes on. Always `Ok(true)`.
    pub(super) async fn answer_deferred(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        d: Deferred,
    ) -> Result<bool> {
        if session.response_written().is_some() {
            tracing::warn!(route = ctx.route_name(),
                "a request body plugin answered after the upstream's answer began; the plugin's answer is dropped");
            return Ok(true);
        }
        match d {
            Deferred::Reply(r) => self.reply(session, ctx, r).await,
            Deferred::Failure(f) => self.plugin_failed(session, ctx, f).await,
        }
    }

    /// For routes that answer without an upstream (flows, fallback-only routes): reads
    /// the whole body, bounded by the route's limit, and runs the body-phase plugins on
    /// it when the route has any. `None`: the gateway already answered (413, or a
    /// plugin).
    pub(super) async fn read_checked_body(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        route: &Arc<CompiledRoute>,
    ) -> Result<Option<Bytes>> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            if super::body::count_over(ctx, chunk.len(), route.max_body) {
                let msg = super::body::too_large(route.max_body);
                // the rest of the body is not read: the connection is not reused
                session.set_keepalive(None);
                self.refuse(session, ctx, 413, super::body::REASON, &msg, &[])
                    .await?;
                return Ok(None);
            }
            buf.extend_from_slice(&chunk);
        }
        let mut whole = buf.freeze();
        if route.reads_body() {
            if let Some(d) = self.body_plugins(session, ctx, route, &mut whole).await {
                self.answer_deferred(session, ctx, d).await?;
                return Ok(None);
            }
        }
        Ok(Some(whole))
    }

    /// A route without upstream answers in the request filter, so pingora never reads
    /// its body: for the plugins that want it (e.g. `token`), read it here (bounded by
    /// the route's body limit) and run the body phase. `true`: the gateway answered.
    pub(super) async fn body_phase_before_fallback(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        route: &Arc<CompiledRoute>,
    ) -> Result<bool> {
        Ok(self.read_checked_body(session, ctx, route).await?.is_none())
    }
}
