//! The plugin phases of a filter, in Envoy's order: `proxy_on_context_create`,
//! `proxy_on_request_headers`, `proxy_on_request_body` (each piece as it arrives, when
//! the filter exports it), `proxy_on_response_headers`, `proxy_on_response_body` (each
//! chunk, when exported), `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
//!
//! `Pause` (any action but Continue): in the request phases the request waits for the
//! filter's HTTP calls and their callbacks, then goes on unless the filter answered
//! (`proxy_send_local_response`); a pause with no call pending goes on at once. In
//! `proxy_on_request_body` and `proxy_on_response_body`, `Pause` before the last chunk
//! holds the bytes back: the next call sees them and the new chunk together (Envoy's
//! StopIterationAndBuffer). Response headers cannot wait: a pause there goes on.

use super::abi::Action;
use super::request::{ReqProps, WasmReq};
use super::vm::{Effects, Fault, Lend, Parts, Vm};
use crate::{
    ChunkCall, Decision, Flow, Plugin, PluginCtx, PluginFailure, RequestCall, Step, Waiting,
};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use pingora_http::ResponseHeader;
use std::ops::ControlFlow;
use std::sync::Arc;

/// Which phases the filter takes part in (from its exports).
#[derive(Debug, Clone, Copy)]
pub struct Exports {
    pub request_body: bool,
    pub response_body: bool,
    pub tick: bool,
}

impl Exports {
    pub fn of(m: &wasmtime::Module) -> Self {
        let has = |n: &str| m.get_export(n).is_some();
        Self {
            request_body: has("proxy_on_request_body"),
            response_body: has("proxy_on_response_body"),
            tick: has("proxy_on_tick"),
        }
    }
}

/// A `wasm` entry: its instances (none in a dry build).
pub struct WasmFilter {
    pub(super) vm: Option<Arc<Vm>>,
    pub(super) exports: Exports,
}

impl WasmFilter {
    /// Runs `f` with this filter's context of the request while the response
    /// callbacks still apply to it (the filter loaded, the context neither failed nor
    /// answered the request itself): what `f` gave.
    pub(super) fn with_response_ctx<R>(
        &self,
        ctx: &mut PluginCtx,
        f: impl FnOnce(&Arc<Vm>, &mut WasmReq) -> Option<R>,
    ) -> Option<R> {
        let vm = self.vm.as_ref()?;
        let w = ctx.own::<WasmReq>()?;
        if w.over || w.answered {
            None
        } else {
            f(vm, w)
        }
    }

    pub fn dry(exports: Exports) -> Self {
        Self { vm: None, exports }
    }

    pub fn live(vm: Arc<Vm>, exports: Exports) -> Self {
        Self {
            vm: Some(vm),
            exports,
        }
    }

    /// A fault in a request phase: 503, or on with `fail: open`.
    #[cold]
    #[inline(never)]
    fn failed(vm: &Vm, f: &Fault) -> Result<Flow, PluginFailure> {
        if vm.fail_open {
            Ok(Flow::Continue)
        } else {
            Err(PluginFailure::unavailable(
                "wasm",
                format!(
                    "filter `{}` failed ({}): {}",
                    vm.filter.name, f.reason, f.message
                ),
            ))
        }
    }

    /// The request's decision after a request-phase callback when it made no HTTP
    /// call (or failed): `Break`; else the action and effects to settle: `Continue`.
    fn decide_now(
        vm: &Vm,
        w: &mut WasmReq,
        r: Result<Option<(i32, Effects)>, Fault>,
    ) -> ControlFlow<Decision, (i32, Effects)> {
        match r {
            Err(f) => {
                w.over = true;
                ControlFlow::Break(Self::failed(vm, &f))
            }
            Ok(None) => ControlFlow::Break(Ok(Flow::Continue)),
            Ok(Some((action, e))) if e.calls.is_empty() => {
                ControlFlow::Break(Ok(Self::decided(vm, w, action, e)))
            }
            Ok(Some(pending)) => ControlFlow::Continue(pending),
        }
    }

    /// The request's decision after a request-phase callback and its HTTP calls.
    pub(super) async fn decide(
        vm: &Vm,
        w: &mut WasmReq,
        parts: Parts<'_>,
        r: Result<Option<(i32, Effects)>, Fault>,
    ) -> Decision {
        match Self::decide_now(vm, w, r) {
            ControlFlow::Break(d) => d,
            ControlFlow::Continue((action, effects)) => {
                Self::settled(vm, w, parts, action, effects).await
            }
        }
    }

    /// The request's decision once the callback's HTTP calls (in `effects`) and their
    /// callbacks have run.
    async fn settled(
        vm: &Vm,
        w: &mut WasmReq,
        parts: Parts<'_>,
        action: i32,
        effects: Effects,
    ) -> Decision {
        // boxed: the calls' future is large, and the body phase's future (boxed whole
        // by async_trait on every piece) holds this one
        let settled = Box::pin(vm.settle(w.slot, w.gen, w.ctx, parts, &mut w.props, effects));
        match settled.await {
            Ok(e) => Ok(Self::decided(vm, w, action, e)),
            Err(f) => {
                w.over = true;
                Self::failed(vm, &f)
            }
        }
    }

    /// The request's decision once the callback's HTTP calls (if any) are settled:
    /// the filter's answer, or on.
    pub(super) fn decided(vm: &Vm, w: &mut WasmReq, action: i32, effects: Effects) -> Flow {
        w.continued = effects.resumed;
        match effects.local {
            Some(reply) => {
                w.answered = true;
                Flow::Respond(*reply)
            }
            None => {
                if Action::of(action) == Action::Pause && !effects.resumed {
                    tracing::debug!(plugin = "wasm", filter = %vm.filter.name,
                        "pause with no answer: the request goes on");
                }
                Flow::Continue
            }
        }
    }
}

#[async_trait]
impl Plugin for WasmFilter {
    async fn on_request(&self, call: &mut RequestCall<'_>) -> Decision {
        self.request_step(call).decision().await
    }

    /// `proxy_on_request_headers` decides at once unless the filter made HTTP calls:
    /// only then is there a future to build.
    fn request_step<'a>(&'a self, call: &'a mut RequestCall<'_>) -> Step<'a> {
        let Some(vm) = &self.vm else {
            return Step::Now(Ok(Flow::Continue));
        };
        let slot = vm.pick();
        let mut props = ReqProps {
            request_id: call.ctx.request_id.clone(),
            client_ip: call.info.client_ip,
            client_port: call.info.client_port,
            // a shared buffer: the clone counts a reference (pingora clones the same
            // URI for the upstream request anyway)
            path: match call.req.uri.path_and_query() {
                Some(p) => p.clone(),
                None => PathAndQuery::try_from(call.info.path)
                    .unwrap_or_else(|_| PathAndQuery::from_static("/")),
            },
            method: call.req.method.clone(),
            version: call.req.version,
            started: call.ctx.started,
            upstream: None,
            body_bytes: None,
            local: call.info.local,
            tls: call.info.tls,
            conn: call.info.tls_conn.cloned(),
            status: 0,
            custom: Vec::new(),
        };
        let n = call.req.headers.len() as i32 + 4;
        // `end_of_stream` of the headers callback
        let eos = i32::from(call.info.body_empty);
        let lend = Lend {
            req: Some(&mut *call.req),
            props: Some(&mut props),
            ..Default::default()
        };
        // the context is made and its request headers seen under one lock
        let (gen, id, out) = match vm.open(slot, lend, n, eos) {
            Ok(opened) => opened,
            // the instance was replaced: no context is left to end
            Err(f) => return Step::Now(Self::failed(vm, &f)),
        };
        let mut w = WasmReq {
            vm: vm.clone(),
            slot,
            gen,
            ctx: id,
            props,
            held: BytesMut::new(),
            req_held: BytesMut::new(),
            over: false,
            answered: false,
            continued: false,
        };
        match Self::decide_now(vm, &mut w, Ok(out)) {
            ControlFlow::Break(d) => {
                call.ctx.set_own(w);
                Step::Now(d)
            }
            ControlFlow::Continue((action, effects)) => Step::Later(Box::pin(async move {
                let parts = Parts {
                    req: Some(&mut *call.req),
                    ..Default::default()
                };
                let d = Self::settled(vm, &mut w, parts, action, effects).await;
                call.ctx.set_own(w);
                d
            })),
        }
    }

    fn wants_request_chunks(&self) -> bool {
        self.exports.request_body
    }

    async fn on_request_chunk(&self, call: &mut ChunkCall<'_>) -> Decision {
        self.request_chunk(call).await
    }

    fn on_response(&self, resp: &mut ResponseHeader, ctx: &mut PluginCtx) {
        // nothing waits here: a pause's calls go out in the background
        let _ = self.response_headers(resp, ctx, false);
    }

    fn response_step<'a>(
        &'a self,
        resp: &'a mut ResponseHeader,
        ctx: &'a mut PluginCtx,
    ) -> Option<Waiting<'a>> {
        self.response_headers(resp, ctx, true)
    }

    fn wants_response_body(&self) -> bool {
        self.exports.response_body
    }

    fn on_response_body(&self, body: &mut Option<Bytes>, end_of_stream: bool, ctx: &mut PluginCtx) {
        self.response_body(body, end_of_stream, ctx);
    }

    fn on_log(&self, status: u16, ctx: &mut PluginCtx) {
        let (upstream, body_bytes) = (ctx.upstream, ctx.body_bytes);
        if let Some(w) = ctx.own::<WasmReq>() {
            w.props.status = status;
            w.props.upstream = upstream;
            w.props.body_bytes = body_bytes;
            w.end(true);
        }
    }
}

/// Runs the filter's ticks (`proxy_on_tick`) on a thread of its own until the filter
/// is gone (a reload replaced it).
pub fn start_ticks(vm: &Arc<Vm>) {
    let weak = Arc::downgrade(vm);
    let n = vm.slots();
    let started =
        crate::spawn_with_runtime("wasm-tick", "wasm proxy_on_tick", move || async move {
            let mut due = vec![std::time::Instant::now(); n];
            loop {
                let Some(vm) = weak.upgrade() else { break };
                let (period, calls) = vm.tick(&mut due);
                // HTTP calls made by a tick (a root context's: e.g. refreshing keys)
                // are sent on this thread's runtime, their answers to
                // `proxy_on_http_call_response` of the root context; ticks go on
                for (slot, gen, effects) in calls {
                    vm.detach(slot, gen, effects);
                }
                drop(vm);
                let wait = if period == 0 { 50 } else { period.min(50) };
                tokio::time::sleep(std::time::Duration::from_millis(u64::from(wait))).await;
            }
        });
    if let Err(e) = started {
        tracing::error!(plugin = "wasm", error = %e, "cannot start the tick thread: proxy_on_tick is not called");
    }
}
