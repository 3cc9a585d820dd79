//! The request body phase of a filter: `proxy_on_request_body` on each piece of the
//! body as it arrives (when the filter exports it), as Envoy calls it.
//!
//! `Continue` lets the bytes seen so far go upstream; `Pause` before the end holds them
//! (Envoy's StopIterationAndBuffer): the next call sees them and the new piece together
//! (the buffer grows, bounded by the route's body limit, which the gateway counts on
//! what the client sent). At the end of the body the filter sees what is left and a
//! pause lets it go (after the filter's HTTP calls, if any). A pause with an HTTP call
//! pending holds the bytes while the call is out; its callback sees the head and the
//! held bytes (and may replace them), and `proxy_continue_request` there lets them go
//! at once (else they go with the next piece). The filter may replace the
//! bytes (`proxy_set_buffer_bytes` on the request body); one that changes their length
//! removes `content-length` in `proxy_on_request_headers`, as in Envoy, and the body
//! goes upstream chunked. A local response or a fault (with `fail: closed`) stops the
//! body: what was held goes nowhere.

use super::abi::{Action, BufferType};
use super::filter::WasmFilter;
use super::request::{after_held, WasmReq};
use super::vm::{Lend, Parts};
use crate::{ChunkCall, Decision, Flow};
use bytes::Bytes;

impl WasmFilter {
    pub(super) async fn request_chunk(&self, call: &mut ChunkCall<'_>) -> Decision {
        let Some(vm) = &self.vm else {
            return Ok(Flow::Continue);
        };
        // taken out while the filter's HTTP calls are awaited, put back after
        let Some(mut w) = call.ctx.take_own::<WasmReq>() else {
            return Ok(Flow::Continue);
        };
        if w.over || w.answered {
            call.ctx.set_own(w);
            return Ok(Flow::Continue);
        }
        // what the filter held back, then the new piece
        let given = after_held(&mut w.req_held, call.body.take());
        let eos = call.end_of_stream;
        let mut chunk = given.clone();
        // the head is read-only here (it went upstream)
        let (slot, gen, id, len) = (w.slot, w.gen, w.ctx, chunk.len() as i32);
        let lend = Lend {
            req_shared: Some(call.req),
            body: Some((BufferType::RequestBody, &mut chunk)),
            props: Some(&mut w.props),
            ..Default::default()
        };
        let r = vm.call(slot, gen, id, lend, |cb, st| {
            cb.request_body
                .as_ref()
                .map(|f| f.call(st, (id, len, i32::from(eos))))
        });
        let paused = matches!(&r, Ok(Some((a, _))) if Action::of(*a) == Action::Pause);
        // the filter's HTTP calls' callbacks see the head and the bytes held so far
        // (and may replace them); `proxy_continue_request` there lets them go now
        let parts = Parts {
            req_shared: Some(call.req),
            body: Some((BufferType::RequestBody, &mut chunk)),
            ..Default::default()
        };
        let flow = Self::decide(vm, &mut w, parts, r).await;
        let hold = !eos && paused && !w.continued;
        let replaced = !same(&chunk, &given);
        match flow {
            // the filter failed (`fail: open`): the bytes go on as the client sent them
            Ok(Flow::Continue) if w.over => *call.body = Some(given),
            Ok(Flow::Continue) => {
                call.rewritten |= replaced;
                if hold {
                    w.req_held.extend_from_slice(&chunk);
                } else {
                    *call.body = Some(chunk);
                }
            }
            // an answer or a failure: nothing more goes upstream
            _ => {}
        }
        call.ctx.set_own(w);
        flow
    }
}

/// Whether `a` is `b` (the filter left the bytes alone).
fn same(a: &Bytes, b: &Bytes) -> bool {
    a.as_ptr() == b.as_ptr() && a.len() == b.len()
}
