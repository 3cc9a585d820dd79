//! Header hygiene between client and upstream: hop-by-hop removal (RFC 9110 §7.6.1),
//! `X-Forwarded-*`, request ids.

use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader, StaticHeaderName};
use pingora_proxy::Session;

/// A header name the gateway sets per request, parsed once: inserting it skips parsing
/// the name again (vendor patch 0008), in the case written here.
macro_rules! static_header {
    ($(#[$m:meta])* $id:ident, $name:literal) => {
        $(#[$m])*
        pub(crate) static $id: StaticHeaderName =
            StaticHeaderName::new(HeaderName::from_static($name), $name);
    };
}

static_header!(X_REQUEST_ID, "x-request-id");
static_header!(TRACEPARENT, "traceparent");
static_header!(X_FORWARDED_FOR, "x-forwarded-for");
static_header!(X_FORWARDED_PROTO, "x-forwarded-proto");
static_header!(X_FORWARDED_HOST, "x-forwarded-host");

const HOP_BY_HOP: [&str; 7] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Every name [`strip_request`] may remove (`Connection` lists more, `TE` is checked).
const REQUEST_STRIPPED: [&str; 8] = [
    "connection",
    "te",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "trailer",
    "upgrade",
];

/// Every name [`strip_response`] may remove (`Connection` only by the names it lists).
static RESPONSE_STRIPPED: [HeaderName; 6] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::UPGRADE,
    http::header::TRAILER,
];

/// Whether a header of `h` is one of `names`.
fn any_of(h: &HeaderMap, names: &[&str]) -> bool {
    h.keys().any(|k| names.contains(&k.as_str()))
}

/// Header names listed in `Connection`, which are hop-by-hop too (nothing is allocated
/// for the usual `keep-alive` / `close` / `upgrade`).
fn connection_listed(h: &HeaderMap) -> Vec<String> {
    h.get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| {
            !s.is_empty()
                && !s.eq_ignore_ascii_case("close")
                && !s.eq_ignore_ascii_case("keep-alive")
                && !s.eq_ignore_ascii_case("upgrade")
        })
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Removes hop-by-hop headers from a request going upstream. An upgrade request
/// (WebSocket) keeps `Connection: upgrade` and `Upgrade` so it can pass through.
/// `TE: trailers` is kept (gRPC needs it); pingora sets framing headers itself.
pub fn strip_request(req: &mut RequestHeader, upgrade: bool) {
    // usually none is there: one pass over the headers instead of a removal per name
    if !upgrade && !any_of(&req.headers, &REQUEST_STRIPPED) {
        return;
    }
    for name in connection_listed(&req.headers) {
        req.remove_header(name.as_str());
    }
    for name in HOP_BY_HOP {
        if upgrade && name == "upgrade" {
            continue;
        }
        if name == "transfer-encoding" {
            // pingora manages framing; keep what it needs to stream the body
            continue;
        }
        req.remove_header(name);
    }
    let te_trailers = req
        .headers
        .get(http::header::TE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    if !te_trailers {
        req.remove_header(&http::header::TE);
    }
    if upgrade {
        let _ = req.insert_header(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
    } else {
        req.remove_header(&http::header::CONNECTION);
    }
}

/// Removes hop-by-hop headers from a response going to the client, except on a
/// `101 Switching Protocols`.
pub fn strip_response(resp: &mut ResponseHeader) {
    if resp.status == http::StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    // one pass over the answer's names; usually only `Connection: keep-alive` is there
    let mut present = [false; RESPONSE_STRIPPED.len()];
    for k in resp.headers.keys() {
        if let Some(i) = RESPONSE_STRIPPED.iter().position(|n| n == k) {
            present[i] = true;
        }
    }
    if present[0] {
        for name in connection_listed(&resp.headers) {
            resp.remove_header(name.as_str());
        }
    }
    for (name, _) in RESPONSE_STRIPPED
        .iter()
        .zip(present)
        .skip(1)
        .filter(|(_, p)| *p)
    {
        resp.remove_header(name);
    }
}

/// A client request id is kept when it is 1–200 characters of `[A-Za-z0-9._:-]`.
pub fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 200
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// A new request id (UUID v4).
pub fn new_request_id() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let s = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The client's IP address (none for a Unix socket).
pub(super) fn client_ip(session: &Session) -> Option<std::net::IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// Whether the client connection is TLS.
pub(super) fn is_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// Appends the client address to `X-Forwarded-For` and sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host` (from the client's Host).
pub fn forwarded(
    req: &mut RequestHeader,
    client_ip: Option<std::net::IpAddr>,
    tls: bool,
    client_host: Option<&HeaderValue>,
) {
    if let Some(ip) = client_ip {
        let prev = req
            .headers
            .get(X_FORWARDED_FOR.name())
            .map(|v| v.as_bytes().trim_ascii())
            .filter(|p| !p.is_empty());
        let mut xff = Vec::with_capacity(prev.map_or(0, |p| p.len() + 2) + 39);
        if let Some(p) = prev {
            xff.extend_from_slice(p);
            xff.extend_from_slice(b", ");
        }
        push_ip(&mut xff, ip);
        if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(xff)) {
            let _ = req.insert_header(&X_FORWARDED_FOR, v);
        }
    }
    let proto = HeaderValue::from_static(if tls { "https" } else { "http" });
    let _ = req.insert_header(&X_FORWARDED_PROTO, proto);
    if let Some(h) = client_host {
        let _ = req.insert_header(&X_FORWARDED_HOST, h.clone());
    }
}

/// Appends `ip` in its usual text form (IPv4 without `fmt`: it is on every request).
fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut num = itoa::Buffer::new();
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(num.format(o).as_bytes());
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}
