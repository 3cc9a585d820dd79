//! Answers the gateway writes itself: errors, probes, plugin replies, plugin failures
//! and route fallbacks. Every one goes through the response phase, so plugin headers
//! (CORS, rate limits) and `X-Request-ID` appear on them as on proxied answers.

use super::{respond, Ctx, GatewayProxy};
use bytes::Bytes;
use gateway_plugins::{FailureKind, PluginFailure, Reply, ReplyBody};
use http::{HeaderName, HeaderValue};
use pingora_error::{Error, ErrorType, Result};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Replacements of one answer followed at most (a wasm filter replaces once per
/// request; this bounds any plugin that would keep replacing).
const MAX_REPLACEMENTS: usize = 4;

/// An answer a plugin gave in place of the one under way ([`response_phase`]).
pub(super) struct Replacement {
    pub body: Bytes,
    /// The rest of the answer it replaced may be far: it has no `Content-Length`
    /// (chunked, or until close: a stream), or one over [`DRAIN_LIMIT`].
    pub far_end: bool,
}

/// The response phase: `X-Request-ID`, deprecation headers, headers plugins added during
/// the request, then each plugin's `on_response`. Runs for proxied answers and the
/// gateway's own. A plugin that answers instead ([`gateway_plugins::PluginCtx`]'s
/// `replacement`) turns `resp` into that answer's head, which goes through the phase
/// again as any answer of the gateway's; its body is returned: the caller sends it in
/// place of the answer's own body, which is dropped.
#[must_use]
pub(super) async fn response_phase(
    resp: &mut ResponseHeader,
    ctx: &mut Ctx,
) -> Option<Replacement> {
    head_phase(resp, ctx).await;
    // the usual answer: nothing replaces it
    ctx.plugin.replacement.as_ref()?;
    let mut out: Option<Replacement> = None;
    for _ in 0..MAX_REPLACEMENTS {
        let Some(reply) = ctx.plugin.replacement.take() else {
            return out;
        };
        let reply = *reply;
        let (ct, b) = reply_body(ctx, reply.body);
        match respond::head(reply.status, ct.as_ref(), b.len(), &reply.headers) {
            Ok(head) => {
                let far_end = out.as_ref().map_or_else(|| far_end(resp), |r| r.far_end);
                *resp = head;
                out = Some(Replacement { body: b, far_end });
                head_phase(resp, ctx).await;
            }
            Err(e) => tracing::warn!(route = ctx.route_name(), error = %e,
                "a plugin's replacement answer has no valid head; it is ignored"),
        }
    }
    if ctx.plugin.replacement.take().is_some() {
        tracing::warn!(
            route = ctx.route_name(),
            "plugins replaced the answer too many times; the last replacement is ignored"
        );
    }
    out
}

/// Whether the body that follows `resp` may be far from its end ([`Replacement`]).
fn far_end(resp: &ResponseHeader) -> bool {
    if matches!(resp.status.as_u16(), 204 | 304) {
        return false;
    }
    let length = resp
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_none_or(|n| n > DRAIN_LIMIT)
}

/// [`response_phase`] once, on the head as it is.
async fn head_phase(resp: &mut ResponseHeader, ctx: &mut Ctx) {
    let _ = resp.insert_header(&super::headers::X_REQUEST_ID, ctx.request_id.clone());
    if let Some(route) = &ctx.route {
        for (k, v) in &route.deprecation {
            let _ = resp.insert_header(k.clone(), v.clone());
        }
        // a split's `side_header`: the side that served (or failed) the request
        if let (Some(split), Some(side)) = (route.split.as_ref(), ctx.side) {
            if let Some(h) = &split.side_header {
                let _ = resp.insert_header(h.clone(), split.sides[side].label.clone());
            }
        }
    }
    let added = &ctx.plugin.response_headers;
    for (i, (k, v)) in added.iter().enumerate() {
        // the first value of a name replaces the upstream's, later ones append
        if added[..i].iter().any(|(n, _)| n == k) {
            let _ = resp.append_header(k.clone(), v.clone());
        } else {
            let _ = resp.insert_header(k.clone(), v.clone());
        }
    }
    let (route, unmatched) = ctx.chain_owners();
    for (i, p) in super::ctx::chain_of(&route, &unmatched).iter().enumerate() {
        ctx.plugin.enter(i);
        // a plugin that waits (a wasm filter's calls after a Pause) holds the head
        if let Some(waiting) = p.response_step(resp, &mut ctx.plugin) {
            waiting.await;
        }
    }
}

/// The Content-Type and bytes of a plugin's answer.
fn reply_body(ctx: &Ctx, body: ReplyBody) -> (Option<HeaderValue>, Bytes) {
    match body {
        ReplyBody::Error {
            kind,
            message,
            details,
        } => {
            let rid = ctx.request_id.to_str().unwrap_or_default();
            (
                Some(respond::json_type()),
                respond::error_body(kind, &message, rid, details.as_ref()),
            )
        }
        ReplyBody::Json(v) => (Some(respond::json_type()), Bytes::from(v.to_string())),
        ReplyBody::Raw(ct, b) => (ct, b),
    }
}

/// A plugin answered instead of the upstream in the response phase ([`response_phase`]
/// gave `r`, and `resp` is its head): the answer is written now, whole, and the
/// upstream's body chunks are dropped (`ctx.replaced`). Pingora's own write of the head
/// that follows does nothing (a head has gone), and the upstream's connection is not
/// reused (the rest of its body is never read). When the rest of the upstream's answer
/// is short (a `Content-Length` up to [`DRAIN_LIMIT`]) it is read and dropped, and the
/// client's connection serves its next request. When it may be far (no length: a
/// stream; or a large body; not for HEAD) the answer says `Connection: close`, and the
/// exchange ends at the upstream's next event or at once (`ctx.cut_upstream`, [`CUT`]):
/// both connections are closed, as Envoy resets the upstream stream of a replaced
/// answer.
pub(super) async fn replace_upstream(
    session: &mut Session,
    resp: &ResponseHeader,
    ctx: &mut Ctx,
    r: Replacement,
) -> Result<()> {
    ctx.replaced = true;
    ctx.first_byte.get_or_insert(ctx.start.elapsed());
    if r.far_end && session.req_header().method != http::Method::HEAD {
        session.set_keepalive(None);
        ctx.cut_upstream = true;
    }
    respond::write(session, resp.clone(), r.body).await
}

/// The error that ends an exchange whose answer a plugin replaced, once the answer
/// has gone ([`replace_upstream`]): not a failure (not logged, not counted against the
/// upstream, not an error of the access log); it closes both connections.
const CUT: ErrorType = ErrorType::Custom("answer replaced, upstream cut");

/// Whether `e` is [`CUT`].
pub(super) fn is_cut(e: &Error) -> bool {
    *e.etype() == CUT
}

/// The upstream's body after a replacement: dropped; [`CUT`] when its end is far.
pub(super) fn drop_replaced(ctx: &Ctx, body: &mut Option<Bytes>, end: bool) -> Result<()> {
    *body = None;
    if end {
        return Ok(());
    }
    cut_if_due(ctx)
}

/// [`CUT`] once the replaced answer of a far upstream end has gone.
pub(super) fn cut_if_due(ctx: &Ctx) -> Result<()> {
    if !ctx.cut_upstream {
        return Ok(());
    }
    let mut e = Error::new(CUT);
    e.set_retry(false);
    Err(e)
}

/// The upstream's idle interval after which [`cut_if_due`] is asked: none to wait.
pub(super) fn cut_now(ctx: &Ctx) -> Option<std::time::Duration> {
    ctx.cut_upstream.then_some(std::time::Duration::ZERO)
}

/// How pingora ends an exchange [`CUT`]: the answer written, no reuse of the client's
/// connection (it was told `Connection: close`).
pub(super) fn cut_ended(session: &Session, e: &Error) -> Option<pingora_proxy::FailToProxy> {
    is_cut(e).then(|| pingora_proxy::FailToProxy {
        error_code: session.response_written().map_or(0, |r| r.status.as_u16()),
        can_reuse_downstream: false,
    })
}

/// The longest rest of an upstream answer read (and dropped) after a replacement so
/// that the client's connection can serve its next request.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// The response-body phase: `body` (a chunk, `None` for none) through the route's
/// plugins that edit response bodies, in order. For proxied chunks, the gateway's own
/// streamed events and SSE keep-alive comments alike. `Err`: a plugin asked to replace
/// the answer here (see [`late_replacement`]); the chunk is dropped.
pub(super) fn response_body_phase(
    ctx: &mut Ctx,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) -> std::result::Result<(), Box<Reply>> {
    let Some(route) = &ctx.route else {
        return Ok(());
    };
    if route.edits_response_body {
        for (i, p) in route.plugins.iter().enumerate() {
            if p.wants_response_body() {
                ctx.plugin.enter(i);
                p.on_response_body(body, end_of_stream, &mut ctx.plugin);
            }
        }
        if let Some(reply) = ctx.plugin.replacement.take() {
            *body = None;
            return Err(reply);
        }
    }
    Ok(())
}

/// A plugin asked to replace the answer from the response-body phase. While none of
/// the answer has gone (its head and first chunks filtered together, unwritten), its
/// answer goes out instead, from `fail_to_proxy` (as a request-body phase answer
/// does). Once the head has gone the stream is ended: the error closes the connection
/// before the answer's end, as Envoy resets a stream whose headers were sent.
pub(super) fn late_replacement(session: &Session, ctx: &mut Ctx, mut reply: Reply) -> Box<Error> {
    if session.response_written().is_none() {
        // the request reached the upstream: not counted as blocked (as in the head phase)
        reply.blocked = None;
        return super::body::answered(ctx, super::ctx::Deferred::Reply(reply));
    }
    tracing::warn!(
        route = ctx.route_name(),
        "a plugin replaced the answer after its head was sent: the stream is ended"
    );
    let mut e = Error::explain(
        ErrorType::InternalError,
        "a plugin replaced the answer after its head was sent",
    );
    e.set_retry(false);
    e
}

impl GatewayProxy {
    /// Writes a whole answer: the head (status, Content-Type when given, `extra`), the
    /// response phase, then the body.
    pub(super) async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        content_type: Option<&HeaderValue>,
        body: Bytes,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Result<()> {
        let mut resp = respond::head(status, content_type, body.len(), extra)?;
        let body = response_phase(&mut resp, ctx)
            .await
            .map_or(body, |r| r.body);
        ctx.answered = Some(resp.status.as_u16());
        let now = ctx.start.elapsed();
        ctx.first_byte.get_or_insert(now);
        respond::write(session, resp, body).await
    }

    /// A JSON error in the SPEC's shape.
    pub(super) async fn answer_error(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        kind: &str,
        message: &str,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Result<()> {
        let rid = ctx.request_id.to_str().unwrap_or_default().to_string();
        let body = respond::error_body(kind, message, &rid, None);
        self.answer(
            session,
            ctx,
            status,
            Some(&respond::json_type()),
            body,
            extra,
        )
        .await
    }

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
        self.answer_error(
            session,
            ctx,
            status,
            respond::kind_for(status),
            message,
            extra,
        )
        .await?;
        Ok(true)
    }

    /// Answers a [`Refusal`] of the edge checks or of routing, counted in
    /// `gateway_requests_blocked_total` under its reason.
    pub(super) async fn refuse_with(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        r: super::routing::Refusal,
    ) -> Result<bool> {
        self.gw.metrics.blocked.with_label_values(&[r.reason]).inc();
        let extra: Vec<_> = r
            .allow
            .map(|a| (http::header::ALLOW, a))
            .into_iter()
            .collect();
        self.answer_error(session, ctx, r.status, r.kind, &r.message, &extra)
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
        } else if self.gw.is_draining() {
            (503, Bytes::from_static(br#"{"status":"draining"}"#))
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
        self.answer(session, ctx, status, Some(&respond::json_type()), body, &[])
            .await?;
        Ok(true)
    }

    /// A plugin's answer instead of proxying.
    pub(super) async fn reply(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        reply: Reply,
    ) -> Result<bool> {
        if let Some(reason) = reply.blocked {
            self.gw.metrics.blocked.with_label_values(&[reason]).inc();
        }
        let (ct, body) = reply_body(ctx, reply.body);
        self.answer(
            session,
            ctx,
            reply.status,
            ct.as_ref(),
            body,
            &reply.headers,
        )
        .await?;
        Ok(true)
    }

    /// A plugin could not decide (a dependency is down, or a bug): 503 with
    /// `Retry-After`, or 500; the cause is logged, not sent.
    pub(super) async fn plugin_failed(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        f: PluginFailure,
    ) -> Result<bool> {
        tracing::warn!(plugin = f.plugin, route = ctx.route_name(), error = %f.message, "plugin failed");
        ctx.error_type = Some("plugin_failure");
        let (kind, message) = match f.kind {
            FailureKind::Unavailable => (
                "dependency_unavailable",
                format!("`{}` cannot decide right now; try again", f.plugin),
            ),
            FailureKind::Internal => ("internal_error", format!("`{}` failed", f.plugin)),
        };
        let extra: Vec<_> = f
            .retry_after
            .filter(|_| f.kind == FailureKind::Unavailable)
            .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
            .map(|v| (http::header::RETRY_AFTER, v))
            .into_iter()
            .collect();
        self.answer_error(session, ctx, f.status(), kind, &message, &extra)
            .await?;
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
        self.answer(
            session,
            ctx,
            fb.status,
            Some(&fb.content_type),
            fb.body,
            extra,
        )
        .await?;
        Ok(true)
    }
}
