//! Header maps: `proxy_{get,add,replace,remove}_header_map_value`,
//! `proxy_{get,set}_header_map_pairs`, `proxy_get_header_map_size`. The request head
//! (with Envoy's pseudo headers `:method`, `:path`, `:authority`, `:scheme`) is
//! writable in the request headers callback and goes upstream as the filter left it;
//! the response head (`:status`) in the response headers callback, as the client gets
//! it; a call's answer (an HTTP call's headers and trailers, a gRPC call's initial and
//! trailing metadata) is read-only.

use super::{give, split, write_u32, Host};
use crate::wasm::abi::{code, decode_pairs, encode_pairs, HostResult, MapType, Status};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use wasmtime::Caller;

/// Header names a filter edits, parsed once per instance: a filter names the same few
/// headers on every request. A parsed custom name is a buffer of its own, which the
/// gateway then clones (into the upstream request's copy and pingora's case map); the
/// first clone of a fresh name allocates again to share it. A kept name clones by a
/// reference count.
#[derive(Default)]
pub struct Names(Vec<HeaderName>);

/// The most names kept per instance (a filter that names more still works: the others
/// are parsed at each use).
const NAMES_KEPT: usize = 32;

impl Names {
    /// The header name `key` (as the filter wrote it: SDKs send lower case).
    fn name(&mut self, key: &[u8]) -> Result<HeaderName, Status> {
        if let Some(n) = self.0.iter().find(|n| n.as_str().as_bytes() == key) {
            return Ok(n.clone());
        }
        let name = HeaderName::from_bytes(key).map_err(|_| Status::BadArgument)?;
        if self.0.len() < NAMES_KEPT && !self.0.contains(&name) {
            self.0.push(name.clone());
        }
        Ok(name)
    }
}

/// The pseudo headers of a request, in Envoy's order.
const REQUEST_PSEUDO: [&str; 4] = [":authority", ":path", ":method", ":scheme"];

/// A pseudo header's value (`None`: not one).
fn pseudo(host: &Host, map: MapType, key: &[u8]) -> Option<Vec<u8>> {
    match (map, key) {
        (MapType::RequestHeaders, b":path") => Some(
            host.cx
                .req()?
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .as_bytes()
                .to_vec(),
        ),
        (MapType::RequestHeaders, b":method") => {
            Some(host.cx.req()?.method.as_str().as_bytes().to_vec())
        }
        (MapType::RequestHeaders, b":authority") => {
            let req = host.cx.req()?;
            Some(
                req.headers
                    .get(http::header::HOST)
                    .map(|v| v.as_bytes().to_vec())
                    .or_else(|| req.uri.authority().map(|a| a.as_str().as_bytes().to_vec()))
                    .unwrap_or_default(),
            )
        }
        (MapType::RequestHeaders, b":scheme") => Some(if host.cx.props().tls {
            b"https".to_vec()
        } else {
            b"http".to_vec()
        }),
        (MapType::ResponseHeaders, b":status") => {
            Some(host.cx.resp()?.status.as_str().as_bytes().to_vec())
        }
        _ => None,
    }
}

/// The headers of `map`, when it can be read now.
fn headers(host: &Host, map: MapType) -> Result<&http::HeaderMap, Status> {
    match map {
        MapType::RequestHeaders => host.cx.req().map(|r| &r.headers).ok_or(Status::NotFound),
        MapType::ResponseHeaders => host.cx.resp().map(|r| &r.headers).ok_or(Status::NotFound),
        _ => Err(Status::NotFound),
    }
}

/// A map of the answer of the call whose callback runs: `Some` when `map` is one (an
/// error when there is no answer now), with the `:status` of an HTTP call's headers.
type AnswerMap<'a> = (Option<String>, &'a [(String, Bytes)]);

fn answer_map(host: &Host, map: MapType) -> Option<Result<AnswerMap<'_>, Status>> {
    let a = host.cx.answer.as_deref().ok_or(Status::NotFound);
    Some(match map {
        // a failed call has no status (as in Envoy)
        MapType::HttpCallResponseHeaders => a.map(|a| {
            (
                (a.status != 0).then(|| a.status.to_string()),
                &a.headers[..],
            )
        }),
        MapType::GrpcReceiveInitialMetadata => a.map(|a| (None, &a.headers[..])),
        MapType::HttpCallResponseTrailers | MapType::GrpcReceiveTrailingMetadata => {
            a.map(|a| (None, &a.trailers[..]))
        }
        _ => return None,
    })
}

/// The value of `key` in `map` (several values joined by `,`).
fn value_of(host: &Host, map: MapType, key: &[u8]) -> Result<Option<Vec<u8>>, Status> {
    if let Some(a) = answer_map(host, map) {
        let (status, pairs) = a?;
        if key == b":status" {
            return Ok(status.map(String::into_bytes));
        }
        return Ok(pairs
            .iter()
            .find(|(k, _)| k.as_bytes().eq_ignore_ascii_case(key))
            .map(|(_, v)| v.to_vec()));
    }
    let h = headers(host, map)?;
    if let Some(v) = pseudo(host, map, key) {
        return Ok(Some(v));
    }
    let Ok(name) = HeaderName::from_bytes(key) else {
        return Ok(None);
    };
    let mut all = h.get_all(&name).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    let mut v = first.as_bytes().to_vec();
    for more in all {
        v.push(b',');
        v.extend_from_slice(more.as_bytes());
    }
    Ok(Some(v))
}

/// Every pair of `map`, pseudo headers first.
fn pairs_of(host: &Host, map: MapType) -> Result<Vec<u8>, Status> {
    if let Some(a) = answer_map(host, map) {
        let (status, pairs) = a?;
        let it = status
            .as_deref()
            .map(|s| (&b":status"[..], s.as_bytes()))
            .into_iter()
            .chain(pairs.iter().map(|(k, v)| (k.as_bytes(), &v[..])));
        return Ok(encode_pairs(it));
    }
    let h = headers(host, map)?;
    let pseudo_names: &[&str] = match map {
        MapType::RequestHeaders => &REQUEST_PSEUDO,
        _ => &[":status"],
    };
    let pseudo_values: Vec<(&[u8], Vec<u8>)> = pseudo_names
        .iter()
        .filter_map(|k| pseudo(host, map, k.as_bytes()).map(|v| (k.as_bytes(), v)))
        .collect();
    let it = pseudo_values
        .iter()
        .map(|(k, v)| (*k, &v[..]))
        .chain(h.iter().map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())));
    Ok(encode_pairs(it))
}

/// How a header of a writable map changes.
enum Edit<'a> {
    Add(&'a [u8]),
    Replace(&'a [u8]),
    Remove,
}

/// Applies `edit` of `key` to `map`.
fn edit(host: &mut Host, map: MapType, key: &[u8], edit: Edit<'_>) -> HostResult {
    let writable = match map {
        MapType::RequestHeaders => host.cx.req_mut().is_some(),
        MapType::ResponseHeaders => host.cx.resp().is_some(),
        MapType::HttpCallResponseHeaders
        | MapType::HttpCallResponseTrailers
        | MapType::GrpcReceiveInitialMetadata
        | MapType::GrpcReceiveTrailingMetadata => return Err(Status::BadArgument),
        _ => false,
    };
    if !writable {
        return Err(Status::NotFound);
    }
    if key.first() == Some(&b':') {
        return set_pseudo(host, map, key, edit);
    }
    let name = host.names.name(key)?;
    let value = |v: &[u8]| HeaderValue::from_bytes(v).map_err(|_| Status::BadArgument);
    let done = if map == MapType::RequestHeaders {
        let req = host.cx.req_mut().ok_or(Status::NotFound)?;
        match edit {
            Edit::Add(v) => req.append_header(name, value(v)?).map(drop),
            Edit::Replace(v) => req.insert_header(name, value(v)?),
            Edit::Remove => {
                req.remove_header(&name);
                Ok(())
            }
        }
    } else {
        let resp = host.cx.resp_mut().ok_or(Status::NotFound)?;
        match edit {
            Edit::Add(v) => resp.append_header(name, value(v)?).map(drop),
            Edit::Replace(v) => resp.insert_header(name, value(v)?),
            Edit::Remove => {
                resp.remove_header(&name);
                Ok(())
            }
        }
    };
    done.map_err(|_| Status::BadArgument)
}

/// Sets a pseudo header (`:path`, `:method`, `:authority`, `:status`); others are
/// refused.
fn set_pseudo(host: &mut Host, map: MapType, key: &[u8], edit: Edit<'_>) -> HostResult {
    let v = match edit {
        Edit::Add(v) | Edit::Replace(v) => v,
        Edit::Remove => return Err(Status::BadArgument),
    };
    let bad = |_| Status::BadArgument;
    match (map, key) {
        (MapType::RequestHeaders, b":path") => {
            let uri = http::Uri::try_from(v).map_err(|_| Status::BadArgument)?;
            host.cx.req_mut().ok_or(Status::NotFound)?.set_uri(uri);
            Ok(())
        }
        (MapType::RequestHeaders, b":method") => {
            let m = http::Method::from_bytes(v).map_err(|_| Status::BadArgument)?;
            host.cx.req_mut().ok_or(Status::NotFound)?.set_method(m);
            Ok(())
        }
        (MapType::RequestHeaders, b":authority") => {
            let hv = HeaderValue::from_bytes(v).map_err(|_| Status::BadArgument)?;
            host.cx
                .req_mut()
                .ok_or(Status::NotFound)?
                .insert_header(http::header::HOST, hv)
                .map_err(bad)
        }
        (MapType::ResponseHeaders, b":status") => {
            let s: u16 = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(Status::BadArgument)?;
            host.cx
                .resp_mut()
                .ok_or(Status::NotFound)?
                .set_status(s)
                .map_err(bad)
        }
        _ => Err(Status::BadArgument),
    }
}

/// Replaces every header of `map` with `pairs`.
fn set_pairs(host: &mut Host, map: MapType, pairs: &[(&[u8], &[u8])]) -> HostResult {
    let names: Vec<HeaderName> = match map {
        MapType::RequestHeaders => match host.cx.req_mut() {
            Some(r) => r.headers.keys().cloned().collect(),
            None => return Err(Status::NotFound),
        },
        MapType::ResponseHeaders => match host.cx.resp() {
            Some(r) => r.headers.keys().cloned().collect(),
            None => return Err(Status::NotFound),
        },
        _ => return Err(Status::NotFound),
    };
    for n in names {
        edit(host, map, n.as_str().as_bytes(), Edit::Remove)?;
    }
    for (k, v) in pairs {
        edit(host, map, k, Edit::Add(v))?;
    }
    Ok(())
}

pub fn get_value(mut c: Caller<'_, Host>, map: i32, kp: i32, kl: i32, rp: i32, rs: i32) -> i32 {
    let found = (|| {
        let (data, host) = split(&mut c)?;
        let key = super::slice(data, kp, kl)?;
        value_of(host, MapType::of(map), key)
    })();
    code(match found {
        Ok(Some(v)) => give(&mut c, &v, rp, rs),
        Ok(None) => Err(Status::NotFound),
        Err(e) => Err(e),
    })
}

fn edit_call(
    c: &mut Caller<'_, Host>,
    map: i32,
    kp: i32,
    kl: i32,
    op: u8,
    vp: i32,
    vl: i32,
) -> i32 {
    code((|| {
        let (data, host) = split(c)?;
        let key = super::slice(data, kp, kl)?;
        let value = if op == b'r' {
            &[][..]
        } else {
            super::slice(data, vp, vl)?
        };
        let e = match op {
            b'a' => Edit::Add(value),
            b'p' => Edit::Replace(value),
            _ => Edit::Remove,
        };
        edit(host, MapType::of(map), key, e)
    })())
}

pub fn add_value(mut c: Caller<'_, Host>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32) -> i32 {
    edit_call(&mut c, map, kp, kl, b'a', vp, vl)
}

pub fn replace_value(mut c: Caller<'_, Host>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32) -> i32 {
    edit_call(&mut c, map, kp, kl, b'p', vp, vl)
}

pub fn remove_value(mut c: Caller<'_, Host>, map: i32, kp: i32, kl: i32) -> i32 {
    edit_call(&mut c, map, kp, kl, b'r', 0, 0)
}

pub fn get_pairs(mut c: Caller<'_, Host>, map: i32, rp: i32, rs: i32) -> i32 {
    code(pairs_of(c.data(), MapType::of(map)).and_then(|p| give(&mut c, &p, rp, rs)))
}

pub fn set_pairs_call(mut c: Caller<'_, Host>, map: i32, p: i32, l: i32) -> i32 {
    code((|| {
        let (data, host) = split(&mut c)?;
        let raw = super::slice(data, p, l)?.to_vec();
        let pairs = decode_pairs(&raw).ok_or(Status::BadArgument)?;
        set_pairs(host, MapType::of(map), &pairs)
    })())
}

pub fn get_size(mut c: Caller<'_, Host>, map: i32, rp: i32) -> i32 {
    let host = c.data();
    let m = MapType::of(map);
    let n = match answer_map(host, m) {
        Some(a) => a.ok().map(|(_, pairs)| pairs.len()),
        None => headers(host, m).ok().map(|h| h.len()),
    };
    code(match n {
        Some(n) => write_u32(&mut c, rp, n as u32),
        None => Err(Status::NotFound),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_once_and_the_cache_is_bounded() {
        let mut n = Names::default();
        assert_eq!(n.name(b"x-a").unwrap().as_str(), "x-a");
        assert_eq!(n.name(b"X-A").unwrap().as_str(), "x-a");
        assert_eq!(n.0.len(), 1, "one name, whatever its case");
        assert_eq!(n.name(b"bad name"), Err(Status::BadArgument));
        for i in 0..40 {
            let key = format!("x-{i}");
            assert_eq!(n.name(key.as_bytes()).unwrap().as_str(), key);
        }
        assert_eq!(n.0.len(), NAMES_KEPT);
        assert_eq!(
            n.name(b"x-39").unwrap().as_str(),
            "x-39",
            "past the bound: parsed"
        );
    }
}
