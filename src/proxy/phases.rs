//! The plugin request and body phases of a route's chain.

use super::client_cert::client_cert;
use super::ctx::Deferred;
use super::{client_ip, is_tls, Ctx, GatewayProxy};
use crate::observability::otel::SpanRecord;
use crate::runtime::CompiledRoute;
use bytes::{Bytes, BytesMut};
use gateway_plugins::{Flow, RequestInfo};
use pingora_error::{Error, ErrorType, Result};
use pingora_proxy::Session;
use std::sync::Arc;

impl GatewayProxy {
    /// Runs each plugin's request phase in order. `true`: the gateway answered.
    pub(super) async fn request_phase(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        route: &Arc<CompiledRoute>,
        path: String,
    ) -> Result<bool> {
        let query = session.req_header().uri.query().map(str::to_owned);
        let cert = client_cert(session);
        {
            let info = RequestInfo {
                route: &route.name,
                client_ip: client_ip(session),
                path: &path,
                query: query.as_deref(),
                tls: is_tls(session),
                client_cert: cert.as_ref().and_then(|c| c.get()),
            };
            for p in &route.plugins {
                let began = ctx.spans.is_some().then(std::time::Instant::now);
                let decided = p
                    .on_request(session.req_header_mut(), &info, &mut ctx.plugin)
                    .await;
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
    /// runs the body phase of the plugins that want it once it is whole; nothing goes
    /// upstream before. A plugin answer is written by `fail_to_proxy`.
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
            return Ok(());
        }
        let whole = ctx.body_buf.take().unwrap_or_default().freeze();
        ctx.body_checked = true;
        let path = ctx.plugin_path.clone().unwrap_or_default();
        let query = session.req_header().uri.query().map(str::to_owned);
        let cert = client_cert(session);
        let info = RequestInfo {
            route: &route.name,
            client_ip: client_ip(session),
            path: &path,
            query: query.as_deref(),
            tls: is_tls(session),
            client_cert: cert.as_ref().and_then(|c| c.get()),
        };
        for p in route.plugins.iter().filter(|p| p.wants_body()) {
            let decided = match p
                .on_request_body(&whole, session.req_header(), &info, &mut ctx.plugin)
                .await
            {
                Ok(Flow::Continue) => continue,
                Ok(Flow::Respond(reply)) => Deferred::Reply(reply),
                Err(f) => Deferred::Failure(f),
            };
            ctx.deferred = Some(decided);
            let mut e = Error::explain(ErrorType::HTTPStatus(400), "answered by a plugin");
            e.set_retry(false);
            return Err(e);
        }
        if !whole.is_empty() {
            *body = Some(whole);
        }
        Ok(())
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
        let mut buf = BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            ctx.body_bytes += chunk.len() as u64;
            if ctx.body_bytes > route.max_body {
                let msg = format!("request body is larger than {} bytes", route.max_body);
                return self
                    .refuse(session, ctx, 413, "body_too_large", &msg, &[])
                    .await;
            }
            buf.extend_from_slice(&chunk);
        }
        let mut body = Some(buf.freeze());
        if self
            .body_phase(session, &mut body, true, ctx, route)
            .await
            .is_ok()
        {
            return Ok(false);
        }
        match ctx.deferred.take() {
            Some(Deferred::Reply(r)) => self.reply(session, ctx, r).await,
            Some(Deferred::Failure(f)) => self.plugin_failed(session, ctx, f).await,
            None => Ok(false),
        }
    }
}
