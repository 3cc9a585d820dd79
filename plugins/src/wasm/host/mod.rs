//! The host side of the ABI: the state a filter instance's calls see ([`Host`], the
//! data of its wasmtime store), guest memory access, and the host functions by group.
//!
//! A call into the filter lends the request's parts to the store's [`CallCx`] for the
//! call ([`lent::Lent`]): no copy, and a host function finds them in
//! `caller.data_mut()`.

pub mod buffers;
pub mod configuration;
pub mod grpc;
pub mod headers;
pub mod lent;
pub mod link;
pub mod misc;
pub mod properties;
pub mod shared_data;

use super::abi::{HostResult, Status};
use super::metrics::{FilterMetric, WasmMetrics};
use super::request::ReqProps;
use crate::{Reply, UpstreamCalls};
use bytes::Bytes;
use pingora_http::{RequestHeader, ResponseHeader};
use std::sync::Arc;
use wasmtime::{Caller, Memory, StoreLimits, TypedFunc};

/// What every instance of one filter (one plugin entry) shares.
pub struct FilterInfo {
    /// The `plugin` label of the failure counter and logs: `root_id`, else the module's
    /// file stem.
    pub name: String,
    /// The route of the entry (`None`: a global plugin).
    pub route: Option<String>,
    pub root_id: String,
    pub configuration: Bytes,
    pub store: Arc<shared_data::SharedStore>,
    pub metrics: Arc<WasmMetrics>,
    pub calls: Arc<dyn UpstreamCalls>,
}

/// An HTTP call the filter made (`proxy_http_call`, or `proxy_grpc_call`'s request),
/// sent once the callback returns.
pub struct PendingCall {
    pub token: u32,
    pub upstream: String,
    pub method: http::Method,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub timeout: std::time::Duration,
    /// A gRPC call: sent over HTTP/2, answered to the gRPC callbacks ([`grpc`]).
    pub grpc: bool,
}

/// The answer to a call, while its callback runs (`proxy_on_http_call_response`, or
/// the gRPC ones: then `body` is the message).
#[derive(Default)]
pub struct CallAnswer {
    pub status: u16,
    pub headers: Vec<(String, Bytes)>,
    pub body: Bytes,
    pub trailers: Vec<(String, Bytes)>,
    /// A gRPC call that ended without a message: its status.
    pub grpc: Option<grpc::GrpcStatus>,
}

/// A header map as the pairs a call's answer keeps.
pub fn pairs(m: &http::HeaderMap) -> Vec<(String, Bytes)> {
    m.iter()
        .map(|(k, v)| (k.as_str().to_string(), Bytes::copy_from_slice(v.as_bytes())))
        .collect()
}

/// The request parts and effects of the call running now.
pub struct CallCx {
    /// The context the callback runs for (the root context outside requests).
    pub ctx_id: u32,
    /// The request head, when lent.
    pub req: lent::Lent<RequestHeader>,
    pub resp: lent::Lent<ResponseHeader>,
    /// The body chunk of the body phases, and which body it is.
    pub body: lent::Lent<Bytes>,
    pub body_of: Option<super::abi::BufferType>,
    /// The request's properties, when a request's callback runs.
    pub props: lent::Lent<ReqProps>,
    /// The properties outside requests (the root context's).
    pub root_props: ReqProps,
    /// `proxy_send_local_response`: the answer instead of the upstream's.
    /// Boxed: calls move their effects by value, and most have no answer.
    pub local: Option<Box<Reply>>,
    /// `proxy_http_call`s to send.
    pub calls: Vec<PendingCall>,
    /// The answer of the call whose callback runs now (boxed: most calls have none,
    /// and call contexts move).
    pub answer: Option<Box<CallAnswer>>,
    /// `proxy_continue_stream` / `proxy_continue_request` was called.
    pub resumed: bool,
    /// Shared queues enqueued to during the call (their owners are told afterwards).
    pub enqueued: Vec<u32>,
    /// gRPC calls the callback cancelled while they were out (sent before it ran).
    pub cancels: Vec<u32>,
}

impl CallCx {
    /// The request head lent to this call, read-only.
    pub fn req(&self) -> Option<&RequestHeader> {
        self.req.get()
    }

    /// The request head, when this call may change it (lent writable: the request
    /// phase).
    pub fn req_mut(&mut self) -> Option<&mut RequestHeader> {
        self.req.get_mut()
    }

    pub fn resp(&self) -> Option<&ResponseHeader> {
        self.resp.get()
    }

    pub fn resp_mut(&mut self) -> Option<&mut ResponseHeader> {
        self.resp.get_mut()
    }

    /// The body chunk of this call, when it is of body `t`.
    pub fn body(&self, t: super::abi::BufferType) -> Option<&Bytes> {
        self.body.get().filter(|_| self.body_of == Some(t))
    }

    pub fn body_mut(&mut self, t: super::abi::BufferType) -> Option<&mut Bytes> {
        if self.body_of == Some(t) {
            self.body.get_mut()
        } else {
            None
        }
    }

    /// The request's properties (the root context's outside requests).
    pub fn props(&self) -> &ReqProps {
        self.props.get().unwrap_or(&self.root_props)
    }

    pub fn props_mut(&mut self) -> &mut ReqProps {
        match self.props.get_mut() {
            Some(p) => p,
            None => &mut self.root_props,
        }
    }
}

/// The data of an instance's store.
pub struct Host {
    pub limits: StoreLimits,
    pub filter: Arc<FilterInfo>,
    pub memory: Option<Memory>,
    /// `proxy_on_memory_allocate` (or `malloc`): where returned data is written.
    pub alloc: Option<TypedFunc<i32, i32>>,
    pub cx: CallCx,
    /// Metrics defined by this instance, by id.
    pub metrics: Vec<FilterMetric>,
    /// `proxy_set_tick_period_milliseconds` (0: no tick).
    pub tick_ms: u32,
    /// The next token of `proxy_http_call` and `proxy_grpc_call`.
    pub next_token: u32,
    /// gRPC calls cancelled while queued (the latest few).
    pub cancelled: Vec<u32>,
    /// This instance, for the queues it registers.
    pub owner: Option<shared_data::QueueOwner>,
    /// Header names the filter edited (parsed once).
    pub names: headers::Names,
}

impl Host {
    pub fn new(filter: Arc<FilterInfo>, limits: StoreLimits) -> Self {
        Self {
            limits,
            filter,
            memory: None,
            alloc: None,
            cx: CallCx {
                ctx_id: 0,
                req: lent::Lent::default(),
                resp: lent::Lent::default(),
                body: lent::Lent::default(),
                body_of: None,
                props: lent::Lent::default(),
                root_props: ReqProps::default(),
                local: None,
                calls: Vec::new(),
                answer: None,
                resumed: false,
                enqueued: Vec::new(),
                cancels: Vec::new(),
            },
            metrics: Vec::new(),
            tick_ms: 0,
            next_token: 1,
            cancelled: Vec::new(),
            owner: None,
            names: headers::Names::default(),
        }
    }

    /// A fresh token for a call (`proxy_http_call`, `proxy_grpc_call`): never 0.
    pub fn take_token(&mut self) -> u32 {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(1);
        token
    }

    /// The route and request id for a log line.
    pub fn log_fields(&self) -> (&str, &str) {
        let route = self.filter.route.as_deref().unwrap_or("");
        let id = self
            .cx
            .props()
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        (route, id)
    }
}

/// The filter's memory.
fn memory(caller: &mut Caller<'_, Host>) -> Result<Memory, Status> {
    if let Some(m) = caller.data().memory {
        return Ok(m);
    }
    match caller.get_export("memory") {
        Some(wasmtime::Extern::Memory(m)) => {
            caller.data_mut().memory = Some(m);
            Ok(m)
        }
        _ => Err(Status::InternalFailure),
    }
}

/// `len` bytes at `ptr` of `data` (guest memory).
pub fn slice(data: &[u8], ptr: i32, len: i32) -> Result<&[u8], Status> {
    let (p, l) = (ptr as u32 as usize, len as u32 as usize);
    data.get(p..p.checked_add(l).ok_or(Status::InvalidMemoryAccess)?)
        .ok_or(Status::InvalidMemoryAccess)
}

/// Guest memory and the host data at once.
pub fn split<'a>(caller: &'a mut Caller<'_, Host>) -> Result<(&'a mut [u8], &'a mut Host), Status> {
    let m = memory(caller)?;
    Ok(m.data_and_store_mut(caller))
}

/// A copy of `len` bytes at `ptr`.
pub fn read(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    let (data, _) = split(caller)?;
    slice(data, ptr, len).map(<[u8]>::to_vec)
}

/// Writes `bytes` at `ptr`.
pub fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> HostResult {
    let m = memory(caller)?;
    m.write(caller, ptr as u32 as usize, bytes)
        .map_err(|_| Status::InvalidMemoryAccess)
}

pub fn write_u32(caller: &mut Caller<'_, Host>, ptr: i32, v: u32) -> HostResult {
    write(caller, ptr, &v.to_le_bytes())
}

/// Hands `bytes` to the filter: memory from its allocator, then the pointer and the
/// size written at `ptr_ptr` and `size_ptr` (the ABI's way to return data).
pub fn give(
    caller: &mut Caller<'_, Host>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    let alloc = caller.data().alloc.clone().ok_or(Status::InternalFailure)?;
    let at = alloc
        .call(&mut *caller, bytes.len().max(1) as i32)
        .map_err(|_| Status::InternalFailure)?;
    if at == 0 {
        return Err(Status::InternalFailure);
    }
    write(caller, at, bytes)?;
    write_u32(caller, ptr_ptr, at as u32)?;
    write_u32(caller, size_ptr, bytes.len() as u32)
}
