//! The response phases of a filter: `proxy_on_response_headers` on the head that goes
//! to the client and `proxy_on_response_body` on each chunk (when exported).

use super::abi::{Action, BufferType};
use super::filter::WasmFilter;
use super::vm::Lend;
use crate::PluginCtx;
use bytes::Bytes;
use pingora_http::ResponseHeader;

impl WasmFilter {
    pub(super) fn response_headers(&self, resp: &mut ResponseHeader, ctx: &mut PluginCtx) {
        self.with_response_ctx(ctx, |vm, w| {
            w.props.status = resp.status.as_u16();
            let (slot, gen, id) = (w.slot, w.gen, w.ctx);
            let n = resp.headers.len() as i32 + 1;
            let lend = Lend {
                resp: Some(resp),
                props: Some(&mut w.props),
                ..Default::default()
            };
            let r = vm.call(slot, gen, id, lend, |cb, st| {
                cb.response_headers.as_ref().map(|f| f.call(st, (id, n, 0)))
            });
            match r {
                Err(_) => w.over = true,
                Ok(Some((_, e))) if e.local.is_some() => {
                    tracing::warn!(plugin = "wasm", filter = %vm.filter.name,
                        "a local response from the response phase is ignored (the answer has started)");
                }
                _ => {}
            }
        });
    }

    pub(super) fn response_body(
        &self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut PluginCtx,
    ) {
        self.with_response_ctx(ctx, |vm, w| {
            let mut chunk = match (body.take(), w.held.is_empty()) {
                (Some(b), true) => b,
                (b, _) => {
                    if let Some(b) = b {
                        w.held.extend_from_slice(&b);
                    }
                    w.held.split().freeze()
                }
            };
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
            match r {
                Ok(Some((a, _))) if Action::of(a) == Action::Pause && !end_of_stream => {
                    w.held.extend_from_slice(&chunk);
                }
                Err(_) => {
                    w.over = true;
                    *body = (!chunk.is_empty()).then_some(chunk);
                }
                _ => *body = (!chunk.is_empty()).then_some(chunk),
            }
        });
    }
}
