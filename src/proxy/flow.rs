//! Dispatch of flow routes (pipeline, async job, job status) once the route's plugins
//! ran: the body is read here (bounded by the route's body limit), the body-phase
//! plugins see it, the flow module answers, and the answer is written through the
//! gateway's answer path (response phase, `X-Request-ID`, logging).

use super::flow_stream::SessionSink;
use super::{respond, Ctx, GatewayProxy};
use crate::flows::jobs::events::Watched;
use crate::flows::stream::{self, Ended};
use crate::flows::{AnswerBody, FlowAnswer, RouteKind};
use crate::runtime::CompiledRoute;
use bytes::Bytes;
use pingora_error::Result;
use pingora_proxy::Session;
use std::sync::Arc;

impl GatewayProxy {
    /// Answers a flow route. Always `Ok(true)`: the gateway answered.
    pub(super) async fn flow(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        route: &Arc<CompiledRoute>,
    ) -> Result<bool> {
        let rid = ctx.request_id.to_str().unwrap_or_default().to_string();
        let answer = match &route.kind {
            RouteKind::Proxy => return Ok(false),
            RouteKind::JobStatus => {
                let path = session.req_header().uri.path();
                let id = path.rsplit('/').next().unwrap_or_default().to_string();
                self.gw.jobs.status(&id, ctx.plugin.consumer()).await
            }
            RouteKind::JobEvents => return self.job_events(session, ctx).await,
            RouteKind::Pipeline(p) => {
                let Some(body) = self.read_checked_body(session, ctx, route).await? else {
                    return Ok(true);
                };
                let tp = ctx.trace.as_ref().map(|t| t.traceparent());
                let origin = crate::flows::pipeline::Origin {
                    request_id: &rid,
                    traceparent: tp.as_deref(),
                };
                if stream::wants_stream(&body) {
                    return self.stream_pipeline(session, ctx, p, body, origin).await;
                }
                p.handle(&self.gw.jobs.clients, body, origin).await
            }
            RouteKind::AsyncJob(a) => {
                let Some(body) = self.read_checked_body(session, ctx, route).await? else {
                    return Ok(true);
                };
                self.gw
                    .jobs
                    .submit(a, &body, ctx.plugin.consumer(), &rid)
                    .await
            }
        };
        self.write_flow(session, ctx, answer).await?;
        Ok(true)
    }

    /// A pipeline asked for a stream: its events as they come (see
    /// [`crate::flows::stream`]); an error before the stream is a JSON answer.
    async fn stream_pipeline(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        p: &crate::flows::pipeline::Pipeline,
        body: Bytes,
        origin: crate::flows::pipeline::Origin<'_>,
    ) -> Result<bool> {
        let mut sink = SessionSink {
            session,
            ctx,
            proxy: self,
        };
        match p
            .stream(&self.gw.jobs.clients, body, origin, &mut sink)
            .await
        {
            Ended::Answer(a) => {
                let SessionSink { session, ctx, .. } = sink;
                self.write_flow(session, ctx, a).await?;
            }
            Ended::Streamed { error_type } => {
                sink.finish().await;
                if let Some(t) = error_type {
                    sink.ctx.error_type.get_or_insert(t);
                }
            }
            // the client went, or a plugin answered instead of the stream
            Ended::Gone if sink.ctx.replaced => {}
            Ended::Gone => {
                sink.ctx.error_type = Some("client_gone");
            }
        }
        Ok(true)
    }

    /// A job's state changes as events (see [`crate::flows::jobs::events`]).
    async fn job_events(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let path = session.req_header().uri.path();
        let id = path
            .trim_end_matches("/events")
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let consumer = ctx.plugin.consumer().map(str::to_owned);
        let jobs = self.gw.jobs.clone();
        let mut sink = SessionSink {
            session,
            ctx,
            proxy: self,
        };
        match jobs.watch(&id, consumer.as_deref(), &mut sink).await {
            Watched::Answer(a) => {
                let SessionSink { session, ctx, .. } = sink;
                self.write_flow(session, ctx, a).await?;
            }
            Watched::Streamed => sink.finish().await,
            Watched::Gone if sink.ctx.replaced => {}
            Watched::Gone => sink.ctx.error_type = Some("client_gone"),
        }
        Ok(true)
    }

    async fn write_flow(&self, session: &mut Session, ctx: &mut Ctx, a: FlowAnswer) -> Result<()> {
        let body = self.flow_body(ctx, &a);
        self.answer(
            session,
            ctx,
            a.status,
            Some(&respond::json_type()),
            body,
            &a.headers,
        )
        .await
    }

    /// A flow answer's body, once its failure is recorded on the request (`error_type`,
    /// and `gateway_route_errors_total` when an upstream failed): a whole answer's body,
    /// or the data of a stream's `event: error`. The gateway's JSON error carries the
    /// request id.
    pub(super) fn flow_body(&self, ctx: &mut Ctx, a: &FlowAnswer) -> Bytes {
        if let Some(kind) = a.error_type {
            ctx.error_type = Some(kind);
            if let Some(backend) = &a.backend {
                self.gw
                    .metrics
                    .route_errors
                    .with_label_values(&[ctx.route_name(), backend, kind])
                    .inc();
            }
        }
        match &a.body {
            AnswerBody::Json(v) => Bytes::from(v.to_string()),
            AnswerBody::Error {
                kind,
                message,
                details,
            } => {
                let rid = ctx.request_id.to_str().unwrap_or_default().to_string();
                respond::error_body(kind, message, &rid, details.as_ref())
            }
        }
    }
}
