//! The request body phase of a filter: `proxy_on_request_body` on the whole body
//! (when the filter exports it).

use super::abi::BufferType;
use super::filter::{reqs, WasmFilter};
use super::vm::Lend;
use crate::{BodyCall, Decision, Flow};

impl WasmFilter {
    pub(super) async fn request_body(&self, call: &mut BodyCall<'_>) -> Decision {
        let Some(vm) = &self.vm else {
            return Ok(Flow::Continue);
        };
        let all = reqs(call.ctx);
        let Some(mut w) = all.take(vm) else {
            return Ok(Flow::Continue);
        };
        if w.over {
            all.put(w);
            return Ok(Flow::Continue);
        }
        // the head is read-only here: the filter reads a copy
        let mut head = call.req.clone();
        let mut chunk = call.body.clone();
        let (slot, gen, id, len) = (w.slot, w.gen, w.ctx, call.body.len() as i32);
        let lend = Lend {
            req: Some(&mut head),
            body: Some((BufferType::RequestBody, &mut chunk)),
            props: Some(&mut w.props),
            ..Default::default()
        };
        let r = vm.call(slot, gen, id, lend, |cb, st| {
            cb.request_body.as_ref().map(|f| f.call(st, (id, len, 1)))
        });
        let flow = Self::decide(vm, &mut w, None, r).await;
        all.put(w);
        flow
    }
}
