//! A filter's calls out: the HTTP and gRPC calls its callbacks made, sent together
//! once the callback returns (as Envoy sends them), each answer handed to its
//! callback as it arrives (which may make more), with the request's parts lent as in
//! the phase that made them; or, where nothing waits for them (ticks, the response
//! phases, the end of a request), in the background.

use super::host::{grpc, pairs, CallAnswer, PendingCall};
use super::instance::ROOT;
use super::request::ReqProps;
use super::vm::{Effects, Fault, Lend, Parts, Vm};
use crate::UpstreamRequest;
use futures::future::{AbortHandle, Abortable};
use futures::stream::{FuturesUnordered, StreamExt};
use std::sync::atomic::Ordering;

/// How deep answers' callbacks may chain calls (a call made by the callback of a call
/// made by ...): calls past it are not sent.
const MAX_DEPTH: u32 = 16;

/// Most calls of one filter out in the background at once ([`Vm::detach`]); more are
/// not sent.
pub const MAX_DETACHED: usize = 256;

impl Vm {
    /// Sends the calls the filter made, all at once, and runs each answer's callback
    /// (`proxy_on_http_call_response`, or the gRPC ones) as it arrives, with the
    /// request `ctx`'s `parts` lent; calls those callbacks make go out at once too.
    /// The callback gets the root context's id, as Envoy's host does (a call belongs
    /// to the root context; SDKs find the caller by its token). Once a callback
    /// answers the request (`proxy_send_local_response`), the calls still out are
    /// dropped.
    pub async fn settle(
        &self,
        slot: usize,
        gen: u64,
        ctx: i32,
        mut parts: Parts<'_>,
        props: &mut ReqProps,
        mut effects: Effects,
    ) -> Result<Effects, Fault> {
        // each gRPC call out can be stopped: a callback may cancel it (its stream is
        // reset, as Envoy resets it); a call cancelled by the callback that made it
        // never got here (the host dropped it)
        let mut stops: Vec<(u32, AbortHandle)> = Vec::new();
        let send = |call: PendingCall, depth: u32, stops: &mut Vec<(u32, AbortHandle)>| {
            let (stop, registration) = AbortHandle::new_pair();
            if call.grpc {
                stops.push((call.token, stop));
            }
            Abortable::new(
                async move {
                    let answer = self.send(&call).await;
                    (call, depth, answer)
                },
                registration,
            )
        };
        let mut out: FuturesUnordered<_> = FuturesUnordered::new();
        for call in std::mem::take(&mut effects.calls) {
            out.push(send(call, 1, &mut stops));
        }
        while effects.local.is_none() {
            let Some(next) = out.next().await else {
                break;
            };
            // stopped by a cancel
            let Ok((call, depth, answer)) = next else {
                continue;
            };
            if call.grpc {
                stops.retain(|(t, _)| *t != call.token);
                // cancelled by a callback of another request's context
                if self.cancelled(slot, gen, call.token) {
                    continue;
                }
            }
            let (nh, nb) = (answer.headers.len() as i32, answer.body.len() as i32);
            let (nt, grpc) = (
                answer.trailers.len() as i32,
                answer.grpc.as_ref().map(|s| s.code),
            );
            let lend = Lend {
                req: parts.req.as_deref_mut(),
                req_shared: parts.req_shared,
                resp: parts.resp.as_deref_mut(),
                body: parts.body.as_mut().map(|(kind, b)| (*kind, &mut **b)),
                props: Some(&mut *props),
                answer: Some(Box::new(answer)),
            };
            let token = call.token as i32;
            let r = self.call(slot, gen, ctx, lend, |cb, st| match (call.grpc, grpc) {
                (false, _) => cb
                    .http_call_response
                    .as_ref()
                    .map(|f| f.call(st, (ROOT, token, nh, nb, nt))),
                (true, None) => cb
                    .grpc_receive
                    .as_ref()
                    .map(|f| f.call(st, (ROOT, token, nb))),
                (true, Some(code)) => cb
                    .grpc_close
                    .as_ref()
                    .map(|f| f.call(st, (ROOT, token, code as i32))),
            })?;
            let Some(((), e)) = r else {
                continue;
            };
            effects.local = effects.local.or(e.local);
            effects.resumed |= e.resumed;
            for token in e.cancels {
                if let Some(i) = stops.iter().position(|(t, _)| *t == token) {
                    stops.swap_remove(i).1.abort();
                    // its answer never comes: the instance need not remember the cancel
                    self.cancelled(slot, gen, token);
                }
            }
            for next in e.calls {
                if depth >= MAX_DEPTH {
                    tracing::warn!(plugin = "wasm", filter = %self.filter.name,
                        upstream = %next.upstream, depth,
                        "wasm filter's call not sent: calls chained too deep");
                } else {
                    out.push(send(next, depth + 1, &mut stops));
                }
            }
        }
        Ok(effects)
    }

    /// Sends calls that nothing waits for in the background: those made by a tick
    /// (the root context's), by the response phases (the response does not wait) and
    /// by `proxy_on_log`/`proxy_on_done`. Their answers go to the root context's
    /// callbacks, with no request parts lent. At most [`MAX_DETACHED`] are out at
    /// once per filter; more are dropped with a warning.
    pub fn detach(&self, slot: usize, gen: u64, mut effects: Effects) {
        let n = effects.calls.len();
        if n == 0 {
            return;
        }
        let (Some(vm), Ok(rt)) = (self.me.upgrade(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        if self.detached.fetch_add(n, Ordering::Relaxed) + n > MAX_DETACHED {
            self.detached.fetch_sub(n, Ordering::Relaxed);
            tracing::warn!(plugin = "wasm", filter = %self.filter.name, calls = n,
                limit = MAX_DETACHED, "wasm filter's background calls not sent: too many out");
            return;
        }
        effects.local = None;
        rt.spawn(async move {
            let mut props = ReqProps::default();
            let parts = Parts::default();
            let _ = vm.settle(slot, gen, ROOT, parts, &mut props, effects).await;
            vm.detached.fetch_sub(n, Ordering::Relaxed);
        });
    }

    /// Whether the filter cancelled gRPC call `token` while it was out.
    fn cancelled(&self, slot: usize, gen: u64, token: u32) -> bool {
        let mut s = self.lock(slot);
        if s.generation != gen {
            return false;
        }
        let Some(inst) = s.inst.as_mut() else {
            return false;
        };
        let cancelled = &mut inst.store.data_mut().cancelled;
        match cancelled.iter().position(|t| *t == token) {
            Some(i) => {
                cancelled.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Sends one call; a failed HTTP call answers with no headers and no body (as
    /// Envoy does), so the filter sees no `:status`; a gRPC call's outcome is made
    /// by [`grpc::answer`].
    async fn send(&self, c: &PendingCall) -> CallAnswer {
        let mut req = UpstreamRequest::new(c.method.clone(), c.path.clone());
        req.headers = c.headers.clone();
        req.body = c.body.clone();
        req.timeout = c.timeout;
        if c.grpc {
            req.http2 = true;
            req.max_answer_body = grpc::MAX_MESSAGE + 5;
        }
        let outcome = self.filter.calls.call(&c.upstream, req).await;
        if let Err(e) = &outcome {
            tracing::warn!(plugin = "wasm", filter = %self.filter.name, upstream = %c.upstream,
                grpc = c.grpc, error = %e, "wasm filter's call failed");
        }
        if c.grpc {
            return grpc::answer(outcome);
        }
        match outcome {
            Ok(a) => CallAnswer {
                status: a.status,
                headers: pairs(&a.headers),
                body: a.body,
                trailers: pairs(&a.trailers),
                grpc: None,
            },
            Err(_) => CallAnswer::default(),
        }
    }
}
