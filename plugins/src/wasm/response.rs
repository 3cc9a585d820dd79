//! The response phases of a filter: `proxy_on_response_headers` on the head that goes
//! to the client and `proxy_on_response_body` on each chunk (when exported).
//!
//! `proxy_send_local_response` from `proxy_on_response_headers` replaces the answer, as
//! Envoy does before the headers go downstream: the filter's status, headers and body
//! go to the client instead of the upstream's (or the gateway's own answer's), whose
//! body is dropped. The filter hands its answer to the gateway
//! ([`crate::PluginCtx::replacement`]); the gateway builds its head as for any answer
//! of its own (Content-Type when given, Content-Length of the local body, none of the
//! upstream's headers), runs the response phase on it again (the route's other plugins
//! see it as they see any answer; this filter is done: no more response callbacks,
//! then `proxy_on_log`), and writes it. The filter needs no body phase for it, so a
//! filter that never answers pays nothing more per request.
//!
//! From `proxy_on_response_body` the head has usually gone (response headers cannot
//! wait here): then the answer cannot be replaced and the stream is ended, as Envoy
//! resets a stream whose headers were sent (the client sees an incomplete answer rather
//! than the rest of one the filter refused), with a warning. Only when nothing of the
//! answer has been written yet (its head and first chunk came together) does the
//! filter's answer go out instead.

use super::abi::{Action, BufferType};
use super::filter::WasmFilter;
use super::request::after_held;
use super::request::WasmReq;
use super::vm::{Lend, Parts};
use crate::{PluginCtx, Waiting};
use bytes::Bytes;
use pingora_http::ResponseHeader;

impl WasmFilter {
    /// `proxy_on_response_headers`. A `Pause` with calls made holds the head until
    /// they are answered and their callbacks ran (which may edit it, or answer
    /// instead), as Envoy holds it: the returned future, when `can_wait`; else, and
    /// for calls made with `Continue`, they go out in the background.
    pub(super) fn response_headers<'a>(
        &'a self,
        resp: &'a mut ResponseHeader,
        ctx: &'a mut PluginCtx,
        can_wait: bool,
    ) -> Option<Waiting<'a>> {
        let mut held = None;
        let upstream = ctx.upstream;
        let local = self.with_response_ctx(ctx, |vm, w| {
            w.props.status = resp.status.as_u16();
            w.props.upstream = upstream;
            let (slot, gen, id) = (w.slot, w.gen, w.ctx);
            let n = resp.headers.len() as i32 + 1;
            let lend = Lend {
                resp: Some(&mut *resp),
                props: Some(&mut w.props),
                ..Default::default()
            };
            let r = vm.call(slot, gen, id, lend, |cb, st| {
                cb.response_headers.as_ref().map(|f| f.call(st, (id, n, 0)))
            });
            match r {
                Err(_) => {
                    w.over = true;
                    None
                }
                // boxed: the usual answer (none) moves a pointer, not a reply
                Ok(Some((action, mut e))) => {
                    let local = e.local.take().inspect(|reply| w.answered_with(reply));
                    let pause = Action::of(action) == Action::Pause;
                    if can_wait && pause && local.is_none() && !e.calls.is_empty() {
                        held = Some(e);
                    } else {
                        vm.detach(slot, gen, e);
                    }
                    local
                }
                Ok(None) => None,
            }
        });
        if local.is_some() {
            ctx.replacement = local;
        }
        let effects = held?;
        let vm = self.vm.as_ref()?;
        Some(Box::pin(async move {
            let Some(w) = ctx.own::<WasmReq>() else {
                return;
            };
            let parts = Parts {
                resp: Some(resp),
                ..Default::default()
            };
            let settled = vm
                .settle(w.slot, w.gen, w.ctx, parts, &mut w.props, effects)
                .await;
            let local = match settled {
                Ok(e) => e.local.inspect(|reply| w.answered_with(reply)),
                Err(_) => {
                    w.over = true;
                    None
                }
            };
            if local.is_some() {
                ctx.replacement = local;
            }
        }))
    }

    pub(super) fn response_body(
        &self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut PluginCtx,
    ) {
        let late = self.with_response_ctx(ctx, |vm, w| {
            let mut chunk = after_held(&mut w.held, body.take());
            let (slot, gen, id, len) = (w.slot, w.gen, w.ctx, chunk.len() as i32);
            let eos = i32::from(end_of_stream);
            let lend = Lend {
                body: Some((BufferType::ResponseBody, &mut chunk)),
                props: Some(&mut w.props),
                ..Default::default()
            };
            let r = vm.call(slot, gen, id, lend, |cb, st| {
                cb.response_body
                    .as_ref()
                    .map(|f| f.call(st, (id, len, eos)))
            });
            let r = r.map(|done| {
                done.map(|(action, mut e)| {
                    let local = e.local.take();
                    vm.detach(slot, gen, e);
                    (action, local)
                })
            });
            match r {
                Ok(Some((_, local))) if local.is_some() => {
                    w.answered = true;
                    w.held.clear();
                    tracing::warn!(plugin = "wasm", filter = %vm.filter.name,
                        route = vm.filter.route.as_deref().unwrap_or(""),
                        "a local response from proxy_on_response_body: it replaces the answer only if none of it has gone, else the stream is ended");
                    return local;
                }
                Ok(Some((a, _))) if Action::of(a) == Action::Pause && !end_of_stream => {
                    w.held.extend_from_slice(&chunk);
                }
                Err(_) => {
                    w.over = true;
                    *body = (!chunk.is_empty()).then_some(chunk);
                }
                _ => *body = (!chunk.is_empty()).then_some(chunk),
            }
            None
        });
        if late.is_some() {
            // the gateway replaces the answer or ends the stream (see the module's doc)
            *body = None;
            ctx.replacement = late;
        }
    }
}
