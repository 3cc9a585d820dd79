//! Properties: `proxy_get_property` and `proxy_set_property`, with Envoy's names and
//! encodings (strings as bytes, integers as 8-byte little-endian, maps as header
//! pairs). A path is its segments joined by NUL bytes (`request\0path`).

use super::{give, slice, split, Host};
use crate::wasm::abi::{code, encode_pairs, HostResult, Status};
use crate::{ClientCert, San};
use wasmtime::Caller;

/// The value of property `path` now.
fn property(host: &Host, path: &[&[u8]]) -> Result<Vec<u8>, Status> {
    let cx = &host.cx;
    let p = cx.props();
    let s = |v: &str| Ok(v.as_bytes().to_vec());
    let req_header = |name: &str| -> Result<Vec<u8>, Status> {
        cx.req()
            .ok_or(Status::NotFound)?
            .headers
            .get(name)
            .map(|v| v.as_bytes().to_vec())
            .ok_or(Status::NotFound)
    };
    // Envoy's peer certificate properties: NotFound without a verified certificate
    let peer = p
        .conn
        .as_deref()
        .and_then(|c| c.cert.as_ref())
        .ok_or(Status::NotFound);
    match path {
        [b"request", b"path"] => s(p.path.as_str()),
        [b"request", b"url_path"] => s(p.path.path()),
        [b"request", b"query"] => s(p.path.query().unwrap_or("")),
        [b"request", b"method"] => s(p.method.as_str()),
        [b"request", b"scheme"] => s(if p.tls { "https" } else { "http" }),
        [b"request", b"protocol"] => s(match p.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        }),
        // Envoy's timestamps and durations: int64 nanoseconds (since the epoch)
        [b"request", b"time"] => p
            .started
            .and_then(|t| std::time::SystemTime::now().checked_sub(t.elapsed()))
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(Err(Status::NotFound), |d| int(d.as_nanos())),
        [b"request", b"duration"] => p
            .started
            .map_or(Err(Status::NotFound), |t| int(t.elapsed().as_nanos())),
        [b"request", b"id"] => p
            .request_id
            .as_ref()
            .map(|v| v.as_bytes().to_vec())
            .ok_or(Status::NotFound),
        // Envoy: the request's `content-length` until the body is read, then its size
        [b"request", b"size"] => match p.body_bytes {
            Some(b) => int(b.read),
            None => req_header("content-length").and_then(|v| {
                let n = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
                n.map_or(Err(Status::NotFound), int)
            }),
        },
        [b"response", b"size"] => p.body_bytes.map_or(Err(Status::NotFound), |b| int(b.sent)),
        [b"request", b"host"] => req_header("host"),
        [b"request", b"referer"] => req_header("referer"),
        [b"request", b"useragent"] => req_header("user-agent"),
        [b"request", b"headers"] if cx.req.is_some() => Ok(encode_pairs(
            cx.req()
                .map(|r| &r.headers)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())),
        )),
        [b"response", b"code"] if p.status != 0 => int(p.status),
        [b"response", b"headers"] if cx.resp.is_some() => Ok(encode_pairs(
            cx.resp()
                .map(|r| &r.headers)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())),
        )),
        [b"source", b"address"] => p
            .client_ip
            .map(|ip| match p.client_port {
                Some(port) => std::net::SocketAddr::new(ip, port).to_string().into_bytes(),
                None => ip.to_string().into_bytes(),
            })
            .ok_or(Status::NotFound),
        [b"source", b"port"] => p.client_port.map_or(Err(Status::NotFound), int),
        [b"upstream", b"address"] => address(p.upstream),
        [b"upstream", b"port"] => p.upstream.map_or(Err(Status::NotFound), |a| int(a.port())),
        [b"destination", b"address"] => address(p.local),
        [b"destination", b"port"] => p.local.map_or(Err(Status::NotFound), |a| int(a.port())),
        [b"connection", b"mtls"] => Ok(vec![u8::from(peer.is_ok())]),
        [b"connection", b"tls_version"] => p
            .conn
            .as_deref()
            .and_then(|c| c.version)
            .map_or(Err(Status::NotFound), s),
        // as Envoy: empty when the client sent no name (or the connection is plain)
        [b"connection", b"requested_server_name"] => s(p
            .conn
            .as_deref()
            .and_then(|c| c.sni.as_deref())
            .unwrap_or("")),
        [b"connection", b"subject_peer_certificate"] => peer.map(|c| c.subject.as_bytes().to_vec()),
        [b"connection", b"sha256_peer_certificate_digest"] => {
            peer.map(|c| c.fingerprint.as_bytes().to_vec())
        }
        [b"connection", b"uri_san_peer_certificate"] => first_san(peer?, |n| match n {
            San::Uri(u) => Some(u.as_str()),
            _ => None,
        }),
        [b"connection", b"dns_san_peer_certificate"] => first_san(peer?, |n| match n {
            San::Dns(d) => Some(d.as_str()),
            _ => None,
        }),
        [b"route_name"] | [b"xds", b"route_name"] => s(host.filter.route.as_deref().unwrap_or("")),
        [b"plugin_root_id"] | [b"xds", b"root_id"] => s(&host.filter.root_id),
        [b"plugin_name"] | [b"xds", b"plugin_name"] => s(&host.filter.name),
        [b"plugin_vm_id"] | [b"xds", b"vm_id"] => s(""),
        _ => {
            let key = path.join(&0u8);
            p.custom
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .ok_or(Status::NotFound)
        }
    }
}

/// An address property (`ip:port`, as Envoy gives it); NotFound without one.
fn address(a: Option<std::net::SocketAddr>) -> Result<Vec<u8>, Status> {
    a.map(|a| a.to_string().into_bytes())
        .ok_or(Status::NotFound)
}

/// An integer property: int64, little-endian, as Envoy encodes integers, times and
/// durations (nanoseconds); a value past `i64::MAX` is clamped to it.
fn int(v: impl TryInto<i64>) -> Result<Vec<u8>, Status> {
    Ok(v.try_into().unwrap_or(i64::MAX).to_le_bytes().to_vec())
}

/// The first subject alternative name of `cert` that `pick` takes, as Envoy gives it.
fn first_san(cert: &ClientCert, pick: impl Fn(&San) -> Option<&str>) -> Result<Vec<u8>, Status> {
    cert.sans
        .iter()
        .find_map(pick)
        .map(|v| v.as_bytes().to_vec())
        .ok_or(Status::NotFound)
}

/// Splits a property path at its NUL bytes (a trailing NUL is ignored); a path without
/// NUL at its dots (`request.path`, as some SDKs write it).
fn segments(raw: &[u8]) -> Vec<&[u8]> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    let sep = if raw.contains(&0) { 0 } else { b'.' };
    raw.split(|b| *b == sep).collect()
}

pub fn get(mut c: Caller<'_, Host>, pp: i32, pl: i32, rp: i32, rs: i32) -> i32 {
    let v = (|| {
        let (data, host) = split(&mut c)?;
        let raw = slice(data, pp, pl)?;
        property(host, &segments(raw))
    })();
    code(v.and_then(|v| give(&mut c, &v, rp, rs)))
}

/// Sets a property of the request (kept for its later callbacks); Envoy's own names
/// cannot be set.
fn set(host: &mut Host, path: &[u8], value: &[u8]) -> HostResult {
    let segs = segments(path);
    let key = segs.join(&0u8);
    let ours = host.cx.props().custom.iter().any(|(k, _)| *k == key);
    if !ours && property(host, &segs).is_ok() {
        return Err(Status::BadArgument);
    }
    let custom = &mut host.cx.props_mut().custom;
    match custom.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => *v = value.to_vec(),
        None => custom.push((key, value.to_vec())),
    }
    Ok(())
}

pub fn set_call(mut c: Caller<'_, Host>, pp: i32, pl: i32, vp: i32, vl: i32) -> i32 {
    code((|| {
        let (data, host) = split(&mut c)?;
        let path = slice(data, pp, pl)?.to_vec();
        let value = slice(data, vp, vl)?.to_vec();
        set(host, &path, &value)
    })())
}
