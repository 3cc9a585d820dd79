//! The streaming request-body phase: each piece of a proxied request body, as pingora's
//! `request_body_filter` hands it over, through the route's plugins that read the body
//! as it streams ([`gateway_plugins::Plugin::wants_request_chunks`]), in chain order,
//! before it goes upstream. Routes without such plugins never come here
//! (`CompiledRoute::reads_request_chunks`, set when the table is built); a route that
//! also has a plugin reading the whole body gives them the whole body instead
//! (`phases::body_phase`).
//!
//! pingora writes the upstream head before the body's first piece, so the head cannot
//! follow what the plugins do to the body: a body that no longer matches the head's
//! `Content-Length` is refused (500, the plugin named in the log) before a byte too
//! many goes, or at its end when it came out short; the upstream connection is then
//! closed with the request incomplete. A plugin that changes the length removes
//! `Content-Length` in its request phase, and the body goes upstream chunked.
//!
//! A retry resends the client's bytes that pingora kept, which is right only when the
//! plugins neither changed nor hold any of them ([`ChunkState::replayable`]; the retry
//! decisions ask); the phase lets that replay through without calling them again (they
//! saw those bytes once), and the pieces that arrive after it go through them.

use super::body;
use super::ctx::Deferred;
use super::phases::InfoParts;
use super::{Ctx, GatewayProxy};
use crate::runtime::CompiledRoute;
use bytes::Bytes;
use gateway_plugins::{ChunkCall, Flow, PluginFailure};
use pingora_error::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;

/// What the phase knows of a request's body so far.
#[derive(Debug, Default)]
pub struct ChunkState {
    /// Bytes the client sent that the plugins were given.
    seen: u64,
    /// Bytes the plugins let go upstream.
    sent: u64,
    /// The last plugin that changed bytes.
    rewriter: Option<&'static str>,
    /// The attempt (`Ctx::tries`) the last piece went to; `None` before the first.
    attempt: Option<u32>,
    /// The plugins saw the end of the body.
    ended: bool,
    /// The `Content-Length` of the head that went upstream.
    declared: Option<u64>,
}

impl ChunkState {
    /// Whether pingora's copy of the client's body is what went upstream (no plugin
    /// changed bytes or holds any back), so that a retry may send it again.
    pub fn replayable(&self) -> bool {
        self.rewriter.is_none() && self.sent == self.seen
    }

    /// The last plugin that changed bytes of the body.
    pub fn rewriter(&self) -> Option<&'static str> {
        self.rewriter
    }

    /// Records that `plugin` changed bytes of the body.
    pub fn rewritten_by(&mut self, plugin: &'static str) {
        self.rewriter = Some(plugin);
    }
}

/// The body length the head declares (`None`: chunked, or no `Content-Length`).
pub fn declared_length(req: &RequestHeader) -> Option<u64> {
    let h = &req.headers;
    if h.contains_key(http::header::TRANSFER_ENCODING) {
        return None;
    }
    h.get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The failure when `sent` bytes (all of them once `ended`) break the head's
/// `Content-Length`: more than it declares, or fewer at the end.
pub fn framing_failure(
    declared: Option<u64>,
    sent: u64,
    ended: bool,
    rewriter: Option<&'static str>,
) -> Option<PluginFailure> {
    let declared = declared?;
    if sent < declared && !ended || sent == declared {
        return None;
    }
    let by = rewriter.unwrap_or("request body");
    Some(PluginFailure::internal(
        by,
        format!(
            "the request body went to {sent}{} bytes while its head, already sent upstream, \
             declares Content-Length: {declared}; a plugin that changes the body's length \
             removes Content-Length in its request phase (the body then goes chunked)",
            if ended { "" } else { "+" }
        ),
    ))
}

impl GatewayProxy {
    /// Runs the streaming body phase on one piece of the body (`None`: no bytes).
    /// A plugin's answer, a failure or a broken framing travels to `fail_to_proxy`
    /// as `body::PLUGIN_ANSWERED`; nothing more goes upstream.
    pub(super) async fn chunk_phase(
        &self,
        session: &Session,
        body: &mut Option<Bytes>,
        eos: bool,
        ctx: &mut Ctx,
        route: &CompiledRoute,
    ) -> Result<()> {
        if session.was_upgraded() {
            // the bytes of an upgraded connection (WebSocket) are not a body
            return Ok(());
        }
        let tries = ctx.tries;
        let st = &mut ctx.chunks;
        match st.attempt.replace(tries) {
            None => st.declared = declared_length(session.req_header()),
            // a retry: pingora first resends the client's bytes it kept, which the
            // plugins saw and let through unchanged (else no retry is allowed)
            Some(a) if a != tries && (st.seen > 0 || st.ended) => return Ok(()),
            Some(_) => {}
        }
        if st.ended {
            return Ok(());
        }
        let len = body.as_ref().map_or(0, Bytes::len) as u64;
        if len == 0 && (!eos || st.seen == 0) {
            // no bytes: nothing to show the plugins (and a request without a body
            // gets no body phase at all)
            st.ended = eos;
            return Ok(());
        }
        st.seen += len;
        let path = ctx.plugin_path.as_deref().unwrap_or_default();
        let parts = InfoParts::of(session, false);
        let info = parts.info(&route.name, path);
        for (i, p) in route.plugins.iter().enumerate() {
            if !p.wants_request_chunks() {
                continue;
            }
            if !eos && body.as_ref().is_none_or(Bytes::is_empty) {
                // an earlier plugin holds everything for now
                break;
            }
            ctx.plugin.enter(i);
            match run_chunk(
                p,
                body,
                eos,
                session.req_header(),
                info,
                &mut ctx.plugin,
                &mut ctx.chunks,
            )
            .await
            {
                Ok(Flow::Continue) => {}
                Ok(Flow::Respond(reply)) => {
                    return Err(body::answered(ctx, Deferred::Reply(reply)))
                }
                Err(f) => return Err(body::answered(ctx, Deferred::Failure(f))),
            }
        }
        if !eos && body.is_none() {
            // held: nothing goes now (pingora takes `None` for the body's end)
            *body = Some(Bytes::new());
        }
        let st = &mut ctx.chunks;
        st.sent += body.as_ref().map_or(0, Bytes::len) as u64;
        st.ended = eos;
        if let Some(f) = framing_failure(st.declared, st.sent, eos, st.rewriter) {
            return Err(body::answered(ctx, Deferred::Failure(f)));
        }
        Ok(())
    }
}

/// One plugin's streaming body phase on `body` (what it leaves there goes on), noting
/// in `chunks` when it changed bytes.
pub(super) async fn run_chunk(
    p: &gateway_plugins::Instance,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
    req: &RequestHeader,
    info: gateway_plugins::RequestInfo<'_>,
    plugin: &mut gateway_plugins::PluginCtx,
    chunks: &mut ChunkState,
) -> gateway_plugins::Decision {
    let mut call = ChunkCall {
        body,
        end_of_stream,
        rewritten: false,
        req,
        info,
        ctx: plugin,
    };
    let decided = p.on_request_chunk(&mut call).await;
    if call.rewritten {
        chunks.rewritten_by(p.name());
    }
    decided
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_holds_while_the_body_can_still_match() {
        assert!(framing_failure(None, 10, true, None).is_none());
        assert!(framing_failure(Some(10), 4, false, None).is_none());
        assert!(framing_failure(Some(10), 10, true, None).is_none());
        assert!(framing_failure(Some(10), 10, false, None).is_none());
        let over = framing_failure(Some(10), 11, false, Some("wasm"));
        assert_eq!(over.map(|f| (f.plugin, f.status())), Some(("wasm", 500)));
        assert!(framing_failure(Some(10), 9, true, None).is_some());
    }

    #[test]
    fn a_body_is_replayable_until_a_plugin_changes_or_holds_bytes() {
        let mut st = ChunkState {
            seen: 8,
            sent: 8,
            ..Default::default()
        };
        assert!(st.replayable());
        st.sent = 3;
        assert!(!st.replayable());
        st.sent = 8;
        st.rewritten_by("wasm");
        assert!(!st.replayable());
    }
}
