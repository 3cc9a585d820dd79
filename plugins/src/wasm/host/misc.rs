//! Logging, time, timers, the stream (local response, continue), HTTP calls and
//! metrics.

use super::{read, slice, split, write, write_u32, Host, PendingCall};
use crate::wasm::abi::{code, decode_pairs, level_name, Status};
use crate::wasm::metrics::MetricKind;
use crate::{Reply, ReplyBody};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use wasmtime::Caller;

/// `proxy_log`: to the gateway's log, with the route, the request id and the filter.
pub fn log(mut c: Caller<'_, Host>, level: i32, p: i32, l: i32) -> i32 {
    if !enabled(level) {
        return Status::Ok as i32;
    }
    code((|| {
        let (data, host) = split(&mut c)?;
        let msg = String::from_utf8_lossy(slice(data, p, l)?);
        emit(host, level, &msg);
        Ok(())
    })())
}

/// Whether the gateway's log keeps lines of `level` (checked before reading them).
fn enabled(level: i32) -> bool {
    let l = match level {
        0 => tracing::Level::TRACE,
        1 => tracing::Level::DEBUG,
        2 => tracing::Level::INFO,
        3 => tracing::Level::WARN,
        _ => tracing::Level::ERROR,
    };
    l <= tracing::level_filters::LevelFilter::current()
}

/// Writes a line of the filter's to the log at its level.
pub fn emit(host: &Host, level: i32, msg: &str) {
    let (route, request_id) = host.log_fields();
    let filter = host.filter.name.as_str();
    let lvl = level_name(level);
    macro_rules! at {
        ($m:ident) => {
            tracing::$m!(
                plugin = "wasm",
                filter,
                route,
                request_id,
                level = lvl,
                "{msg}"
            )
        };
    }
    match level {
        0 => at!(trace),
        1 => at!(debug),
        2 => at!(info),
        3 => at!(warn),
        _ => at!(error),
    }
}

/// `proxy_get_log_level`: the most verbose level the gateway's log keeps.
pub fn log_level(mut c: Caller<'_, Host>, rp: i32) -> i32 {
    let level = match tracing::level_filters::LevelFilter::current() {
        f if f >= tracing::Level::TRACE => 0,
        f if f >= tracing::Level::DEBUG => 1,
        f if f >= tracing::Level::INFO => 2,
        f if f >= tracing::Level::WARN => 3,
        _ => 4,
    };
    code(write_u32(&mut c, rp, level))
}

pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn current_time(mut c: Caller<'_, Host>, rp: i32) -> i32 {
    code(write(&mut c, rp, &now_nanos().to_le_bytes()))
}

/// `proxy_set_tick_period_milliseconds`: `proxy_on_tick` on the root context every
/// period (0 stops it).
pub fn set_tick(mut c: Caller<'_, Host>, ms: i32) -> i32 {
    c.data_mut().tick_ms = ms as u32;
    Status::Ok as i32
}

/// `proxy_send_local_response`: the request is answered with this (the upstream never
/// sees it).
#[allow(clippy::too_many_arguments)]
pub fn local_response(
    mut c: Caller<'_, Host>,
    status: i32,
    _dp: i32,
    _dl: i32,
    bp: i32,
    bl: i32,
    hp: i32,
    hl: i32,
    _grpc: i32,
) -> i32 {
    code((|| {
        let (data, host) = split(&mut c)?;
        let body = Bytes::copy_from_slice(slice(data, bp, bl)?);
        let raw = slice(data, hp, hl)?;
        let pairs = decode_pairs(raw).ok_or(Status::BadArgument)?;
        let status = u16::try_from(status)
            .ok()
            .filter(|s| (200..=599).contains(s))
            .ok_or(Status::BadArgument)?;
        let mut content_type = None;
        let mut headers = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let name = HeaderName::from_bytes(k).map_err(|_| Status::BadArgument)?;
            let value = HeaderValue::from_bytes(v).map_err(|_| Status::BadArgument)?;
            if name == http::header::CONTENT_TYPE {
                content_type = Some(value);
            } else {
                headers.push((name, value));
            }
        }
        host.cx.local = Some(Box::new(Reply {
            status,
            headers,
            body: ReplyBody::Raw(content_type, body),
            blocked: Some("wasm"),
        }));
        Ok(())
    })())
}

/// `proxy_continue_stream`, `proxy_continue_request`, `proxy_continue_response`.
pub fn resume(c: &mut Caller<'_, Host>) -> i32 {
    c.data_mut().cx.resumed = true;
    Status::Ok as i32
}

/// `proxy_http_call(upstream, headers, body, trailers, timeout)`: `upstream` names a
/// pool of routes.yaml; `:method` and `:path` come from the headers. The call is sent
/// when the callback returns; its answer comes to `proxy_on_http_call_response`.
#[allow(clippy::too_many_arguments)]
pub fn http_call(
    mut c: Caller<'_, Host>,
    up: i32,
    ul: i32,
    hp: i32,
    hl: i32,
    bp: i32,
    bl: i32,
    _tp: i32,
    _tl: i32,
    timeout_ms: i32,
    rp: i32,
) -> i32 {
    code((|| {
        let (data, host) = split(&mut c)?;
        let upstream = std::str::from_utf8(slice(data, up, ul)?)
            .map_err(|_| Status::BadArgument)?
            .to_string();
        let pairs = decode_pairs(slice(data, hp, hl)?).ok_or(Status::BadArgument)?;
        let body = Bytes::copy_from_slice(slice(data, bp, bl)?);
        let (mut method, mut path) = (http::Method::GET, String::from("/"));
        let mut headers = http::HeaderMap::new();
        for (k, v) in pairs {
            match k {
                b":method" => {
                    method = http::Method::from_bytes(v).map_err(|_| Status::BadArgument)?
                }
                b":path" => {
                    path = String::from_utf8(v.to_vec()).map_err(|_| Status::BadArgument)?
                }
                b":authority" | b":scheme" => {}
                _ => {
                    let name = HeaderName::from_bytes(k).map_err(|_| Status::BadArgument)?;
                    let value = HeaderValue::from_bytes(v).map_err(|_| Status::BadArgument)?;
                    headers.append(name, value);
                }
            }
        }
        if upstream.is_empty() {
            return Err(Status::BadArgument);
        }
        let token = host.take_token();
        host.cx.calls.push(PendingCall {
            token,
            upstream,
            method,
            path,
            headers,
            body,
            timeout: std::time::Duration::from_millis(u64::from(timeout_ms.max(1) as u32)),
            grpc: false,
        });
        write_u32(&mut c, rp, token)
    })())
}

pub fn define_metric(mut c: Caller<'_, Host>, kind: i32, np: i32, nl: i32, rp: i32) -> i32 {
    code((|| {
        let name = String::from_utf8(read(&mut c, np, nl)?).map_err(|_| Status::BadArgument)?;
        let kind = MetricKind::of(kind).ok_or(Status::BadArgument)?;
        let m = c.data().filter.metrics.define(kind, &name)?;
        let host = c.data_mut();
        host.metrics.push(m);
        let id = host.metrics.len() as u32 - 1;
        write_u32(&mut c, rp, id)
    })())
}

pub fn increment_metric(c: Caller<'_, Host>, id: i32, offset: i64) -> i32 {
    code(match c.data().metrics.get(id as u32 as usize) {
        Some(m) => m.increment(offset),
        None => Err(Status::NotFound),
    })
}

pub fn record_metric(c: Caller<'_, Host>, id: i32, value: i64) -> i32 {
    code(match c.data().metrics.get(id as u32 as usize) {
        Some(m) => m.record(value as u64),
        None => Err(Status::NotFound),
    })
}

pub fn get_metric(mut c: Caller<'_, Host>, id: i32, rp: i32) -> i32 {
    code((|| {
        let v = c
            .data()
            .metrics
            .get(id as u32 as usize)
            .ok_or(Status::NotFound)?
            .value()?;
        write(&mut c, rp, &v.to_le_bytes())
    })())
}
