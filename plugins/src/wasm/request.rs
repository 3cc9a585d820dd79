//! A request's state in a filter: its context (slot, instance generation, id), the
//! properties its callbacks read, request and response body held back by `Pause`. Kept in the
//! request's [`crate::PluginCtx`]; a request that ends without the log phase (a
//! client gone) still gets `proxy_on_done` and `proxy_on_delete` when it is dropped.

use super::vm::Vm;
use bytes::BytesMut;
use http::HeaderValue;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What the properties of a request are made of.
#[derive(Default)]
pub struct ReqProps {
    pub request_id: Option<HeaderValue>,
    pub client_ip: Option<IpAddr>,
    /// The client's port (`source.address` is `ip:port`, as in Envoy).
    pub client_port: Option<u16>,
    /// Path and query as the client sent them.
    pub path: String,
    pub method: http::Method,
    pub tls: bool,
    /// The answer's status once known (`response.code`).
    pub status: u16,
    /// Properties the filter set (`proxy_set_property`).
    pub custom: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One filter's context for one request.
pub struct WasmReq {
    pub vm: Arc<Vm>,
    pub slot: usize,
    pub gen: u64,
    pub ctx: i32,
    pub props: ReqProps,
    /// Response body held back by a `Pause` of `proxy_on_response_body`.
    pub held: BytesMut,
    /// Request body held back by a `Pause` of `proxy_on_request_body`.
    pub req_held: BytesMut,
    /// The filter failed (open) or is done: no more callbacks.
    pub over: bool,
    /// The filter answered this request itself (its response callbacks are skipped).
    pub answered: bool,
}

impl WasmReq {
    /// Ends the context once (`proxy_on_log` when `log`, `proxy_on_done`,
    /// `proxy_on_delete`).
    pub fn end(&mut self, log: bool) {
        if !self.over {
            self.over = true;
            self.vm
                .end(self.slot, self.gen, self.ctx, &mut self.props, log);
        }
    }
}

impl Drop for WasmReq {
    fn drop(&mut self) {
        self.end(false);
    }
}

/// The contexts of a request, one per wasm entry of its chain.
#[derive(Clone, Default)]
pub struct WasmReqs(pub Arc<Mutex<Vec<WasmReq>>>);

impl WasmReqs {
    /// Takes the context of `vm` out (for a phase that awaits); [`WasmReqs::put`]
    /// puts it back.
    pub fn take(&self, vm: &Arc<Vm>) -> Option<WasmReq> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let i = all.iter().position(|r| Arc::ptr_eq(&r.vm, vm))?;
        Some(all.swap_remove(i))
    }

    pub fn put(&self, r: WasmReq) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }

    /// Runs `f` on the context of `vm`, if the request has one.
    pub fn with<R>(&self, vm: &Arc<Vm>, f: impl FnOnce(&mut WasmReq) -> R) -> Option<R> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.iter_mut().find(|r| Arc::ptr_eq(&r.vm, vm)).map(f)
    }
}
