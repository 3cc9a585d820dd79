//! Buffers: `proxy_get_buffer_bytes`, `proxy_get_buffer_status`, `proxy_set_buffer_bytes`.
//! The request body chunk in `proxy_on_request_body` and the response body chunk in
//! `proxy_on_response_body` (each with what the filter held back before it; readable
//! and replaceable); an HTTP call's answer body and a gRPC call's message; the plugin
//! configuration (`configuration`) and an empty VM configuration.

use super::{give, slice, split, write_u32, Host};
use crate::wasm::abi::{code, BufferType, HostResult, Status};
use bytes::{Bytes, BytesMut};
use wasmtime::Caller;

/// The bytes of buffer `t`, when it exists now.
fn buffer(host: &Host, t: BufferType) -> Result<Bytes, Status> {
    match t {
        BufferType::RequestBody | BufferType::ResponseBody => {
            host.cx.body(t).cloned().ok_or(Status::NotFound)
        }
        BufferType::HttpCallResponseBody | BufferType::GrpcReceiveBuffer => host
            .cx
            .answer
            .as_ref()
            .map(|a| a.body.clone())
            .ok_or(Status::NotFound),
        BufferType::PluginConfiguration => Ok(host.filter.configuration.clone()),
        BufferType::VmConfiguration => Ok(Bytes::new()),
        _ => Err(Status::NotFound),
    }
}

pub fn get_bytes(mut c: Caller<'_, Host>, t: i32, start: i32, max: i32, rp: i32, rs: i32) -> i32 {
    code((|| {
        let b = buffer(c.data(), BufferType::of(t))?;
        let start = (start as u32 as usize).min(b.len());
        let end = start.saturating_add(max as u32 as usize).min(b.len());
        if start == end {
            // nothing to copy: Ok and nothing written, as Envoy's host does (SDKs
            // depend on it: the AssemblyScript one reads an empty configuration so)
            return Ok(());
        }
        give(&mut c, &b[start..end], rp, rs)
    })())
}

pub fn get_status(mut c: Caller<'_, Host>, t: i32, len_ptr: i32, flags_ptr: i32) -> i32 {
    code((|| {
        let b = buffer(c.data(), BufferType::of(t))?;
        write_u32(&mut c, len_ptr, b.len() as u32)?;
        write_u32(&mut c, flags_ptr, 0)
    })())
}

/// Replaces `size` bytes at `start` of the body chunk of this call (request or
/// response) with `data` (all of it when `start` is 0 and `size` covers it).
fn set(host: &mut Host, t: BufferType, start: usize, size: usize, data: &[u8]) -> HostResult {
    let Some(old) = host.cx.body_mut(t) else {
        return Err(Status::NotFound);
    };
    let start = start.min(old.len());
    let end = start.saturating_add(size).min(old.len());
    let mut out = BytesMut::with_capacity(old.len() - (end - start) + data.len());
    out.extend_from_slice(&old[..start]);
    out.extend_from_slice(data);
    out.extend_from_slice(&old[end..]);
    *old = out.freeze();
    Ok(())
}

pub fn set_bytes(mut c: Caller<'_, Host>, t: i32, start: i32, size: i32, dp: i32, dl: i32) -> i32 {
    code((|| {
        let (data, host) = split(&mut c)?;
        let bytes = slice(data, dp, dl)?;
        set(
            host,
            BufferType::of(t),
            start as u32 as usize,
            size as u32 as usize,
            bytes,
        )
    })())
}
