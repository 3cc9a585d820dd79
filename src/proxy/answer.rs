//! Answers the gateway writes itself during the request phase: errors, probes, plugin
//! replies and route fallbacks.

use super::{respond, Ctx, GatewayProxy};
use bytes::Bytes;
use gateway_plugins::ReplyBody;
use http::{HeaderName, HeaderValue};
use pingora_error::Result;
use pingora_proxy::Session;

impl GatewayProxy {
    /// Answers with a JSON error and counts it in `gateway_requests_blocked_total`
    /// under `reason`.
    pub(super) async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        reason: &'static str,
        message: &str,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Result<bool> {
        self.gw.metrics.blocked.with_label_values(&[reason]).inc();
        ctx.answered = Some(status);
        respond::send_error(
            session,
            status,
            respond::kind_for(status),
            message,
            &ctx.request_id,
            extra,
        )
        .await?;
        Ok(true)
    }

    /// `/health` and `/ready`, before any routing.
    pub(super) async fn probe(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        ready: bool,
    ) -> Result<bool> {
        let (status, body) = if !ready {
            (200, Bytes::from_static(br#"{"status":"ok"}"#))
        } else {
            let rt = self.gw.live.load();
            let down = rt.unready_upstreams();
            if down.is_empty() {
                (
                    200,
                    Bytes::from(
                        serde_json::json!({"status": "ready", "routes": rt.routes.len()})
                            .to_string(),
                    ),
                )
            } else {
                (503, Bytes::from(serde_json::json!({"status": "not_ready", "upstreams_without_healthy_target": down}).to_string()))
            }
        };
        ctx.answered = Some(status);
        respond::send(
            session,
            status,
            &respond::json_type(),
            body,
            &ctx.request_id,
            &[],
        )
        .await?;
        Ok(true)
    }

    pub(super) async fn reply(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        reply: gateway_plugins::Reply,
    ) -> Result<bool> {
        ctx.answered = Some(reply.status);
        match reply.body {
            ReplyBody::Error { kind, message } => {
                self.gw.metrics.blocked.with_label_values(&[kind]).inc();
                respond::send_error(
                    session,
                    reply.status,
                    kind,
                    &message,
                    &ctx.request_id,
                    &reply.headers,
                )
                .await?;
            }
            ReplyBody::Raw(body) => {
                respond::send(
                    session,
                    reply.status,
                    &HeaderValue::from_static("application/octet-stream"),
                    body,
                    &ctx.request_id,
                    &reply.headers,
                )
                .await?;
            }
        }
        Ok(true)
    }

    pub(super) async fn fallback(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Result<bool> {
        let Some(fb) = ctx.route.as_ref().and_then(|r| r.fallback.clone()) else {
            return Ok(false);
        };
        ctx.answered = Some(fb.status);
        respond::send(
            session,
            fb.status,
            &fb.content_type,
            fb.body,
            &ctx.request_id,
            extra,
        )
        .await?;
        Ok(true)
    }
}
