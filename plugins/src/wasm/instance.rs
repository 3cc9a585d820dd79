//! One instance of a filter: its store, the callbacks it exports, and its start as
//! Envoy does it (`_initialize`, then the root context: `proxy_on_context_create`,
//! `proxy_on_vm_start`, `proxy_on_configure`).

use super::glue::Glue;
use super::host::shared_data::QueueOwner;
use super::host::{FilterInfo, Host};
use std::sync::Arc;
use wasmtime::{Instance, InstancePre, Module, Store, StoreLimitsBuilder, TypedFunc};

/// The root context's id in every instance; request contexts count from 2.
pub const ROOT: i32 = 1;

/// `proxy_on_http_call_response(context, token, headers, body size, trailers)`.
type HttpCallResponse = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// The callbacks a filter exports (each optional), and the glue that chains the
/// request callbacks always called together.
pub struct Callbacks {
    pub context_create: Option<TypedFunc<(i32, i32), ()>>,
    pub request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub tick: Option<TypedFunc<i32, ()>>,
    pub queue_ready: Option<TypedFunc<(i32, i32), ()>>,
    pub http_call_response: Option<HttpCallResponse>,
    /// `proxy_on_grpc_receive(context, token, message size)`.
    pub grpc_receive: Option<TypedFunc<(i32, i32, i32), ()>>,
    /// `proxy_on_grpc_close(context, token, status code)`.
    pub grpc_close: Option<TypedFunc<(i32, i32, i32), ()>>,
    /// The request callbacks chained ([`super::glue`]).
    pub glue: Glue,
}

/// A live instance.
pub struct Inst {
    pub store: Store<Host>,
    pub cb: Callbacks,
}

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("export `{0}` does not have the proxy-wasm signature")]
    Signature(&'static str),
    #[error("{0} returned false (the filter refused its configuration)")]
    Refused(&'static str),
    #[error("cannot start the filter: {0}")]
    Failed(String),
}

impl From<wasmtime::Error> for StartError {
    fn from(e: wasmtime::Error) -> Self {
        StartError::Failed(super::vm::Fault::of(&e).message)
    }
}

/// Export `name` typed, `None` when absent.
fn typed<P, R>(
    inst: &Instance,
    store: &mut Store<Host>,
    name: &'static str,
) -> Result<Option<TypedFunc<P, R>>, StartError>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    match inst.get_func(&mut *store, name) {
        None => Ok(None),
        Some(f) => f
            .typed::<P, R>(&*store)
            .map(Some)
            .map_err(|_| StartError::Signature(name)),
    }
}

/// What an instance is made with.
pub struct Recipe<'a> {
    pub pre: &'a InstancePre<Host>,
    pub glue: &'a Module,
    pub filter: &'a Arc<FilterInfo>,
    pub max_memory: usize,
    /// Epoch ticks the start may take.
    pub start_ticks: u64,
    pub owner: QueueOwner,
}

/// Instantiates the filter and starts its root context.
pub fn start(r: &Recipe<'_>) -> Result<Inst, StartError> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(r.max_memory)
        .trap_on_grow_failure(true)
        // the filter's and its glue's
        .instances(2)
        .build();
    let mut host = Host::new(r.filter.clone(), limits);
    host.owner = Some(r.owner.clone());
    let mut store = Store::new(r.pre.module().engine(), host);
    store.limiter(|h| &mut h.limits);
    store.set_epoch_deadline(r.start_ticks);
    let inst = r.pre.instantiate(&mut store)?;
    let memory = inst.get_memory(&mut store, "memory");
    store.data_mut().memory = memory;
    let alloc = match typed::<i32, i32>(&inst, &mut store, "proxy_on_memory_allocate")? {
        Some(f) => Some(f),
        None => typed::<i32, i32>(&inst, &mut store, "malloc")?,
    };
    store.data_mut().alloc = alloc;
    if let Some(init) = typed::<(), ()>(&inst, &mut store, "_initialize")? {
        init.call(&mut store, ())?;
    } else if let Some(start) = typed::<(), ()>(&inst, &mut store, "_start")? {
        start.call(&mut store, ())?;
    }
    // the callbacks the glue chains: their signatures checked here, for a clear error
    typed::<(i32, i32, i32), i32>(&inst, &mut store, "proxy_on_request_headers")?;
    typed::<i32, ()>(&inst, &mut store, "proxy_on_log")?;
    typed::<i32, i32>(&inst, &mut store, "proxy_on_done")?;
    typed::<i32, ()>(&inst, &mut store, "proxy_on_delete")?;
    let cb = Callbacks {
        context_create: typed(&inst, &mut store, "proxy_on_context_create")?,
        request_body: typed(&inst, &mut store, "proxy_on_request_body")?,
        response_headers: typed(&inst, &mut store, "proxy_on_response_headers")?,
        response_body: typed(&inst, &mut store, "proxy_on_response_body")?,
        tick: typed(&inst, &mut store, "proxy_on_tick")?,
        queue_ready: typed(&inst, &mut store, "proxy_on_queue_ready")?,
        http_call_response: typed(&inst, &mut store, "proxy_on_http_call_response")?,
        grpc_receive: typed(&inst, &mut store, "proxy_on_grpc_receive")?,
        grpc_close: typed(&inst, &mut store, "proxy_on_grpc_close")?,
        glue: Glue::new(&mut store, r.glue, &inst)?,
    };
    let vm_start = typed::<(i32, i32), i32>(&inst, &mut store, "proxy_on_vm_start")?;
    let configure = typed::<(i32, i32), i32>(&inst, &mut store, "proxy_on_configure")?;
    store.data_mut().cx.ctx_id = ROOT as u32;
    if let Some(f) = &cb.context_create {
        f.call(&mut store, (ROOT, 0))?;
    }
    if let Some(f) = vm_start {
        if f.call(&mut store, (ROOT, 0))? == 0 {
            return Err(StartError::Refused("proxy_on_vm_start"));
        }
    }
    if let Some(f) = configure {
        let len = r.filter.configuration.len() as i32;
        if f.call(&mut store, (ROOT, len))? == 0 {
            return Err(StartError::Refused("proxy_on_configure"));
        }
    }
    Ok(Inst { store, cb })
}
