//! The request body phase of a filter: `proxy_on_request_body` on the whole body
//! (when the filter exports it).

use super::abi::BufferType;
use super::filter::WasmFilter;
use super::request::WasmReq;
use super::vm::Lend;
use crate::{BodyCall, Decision, Flow};

impl WasmFilter {
    pub(super) async fn request_body(&self, call: &mut BodyCall<'_>) -> Decision {
        let Some(vm) = &self.vm else {
            return Ok(Flow::Continue);
        };
        // taken out while the filter's HTTP calls are awaited, put back after
        let Some(mut w) = call.ctx.take_own::<WasmReq>() else {
            return Ok(Flow::Continue);
        };
        if w.over {
            call.ctx.set_own(w);
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
        call.ctx.set_own(w);
        flow
    }
}
