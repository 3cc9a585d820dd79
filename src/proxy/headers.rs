//! Header hygiene between client and upstream: hop-by-hop removal (RFC 9110 §7.6.1),
//! `X-Forwarded-*`, request ids.

use http::{HeaderMap, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};

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

/// Every name [`strip_response`] may remove.
const RESPONSE_STRIPPED: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "upgrade",
    "trailer",
];

/// Whether a header of `h` is one of `names`.
fn any_of(h: &HeaderMap, names: &[&str]) -> bool {
    h.keys().any(|k| names.contains(&k.as_str()))
}

/// Header names listed in `Connection`, which are hop-by-hop too.
fn connection_listed(h: &HeaderMap) -> Vec<String> {
    h.get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty() && s != "close" && s != "keep-alive" && s != "upgrade")
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
    if resp.status == http::StatusCode::SWITCHING_PROTOCOLS
        || !any_of(&resp.headers, &RESPONSE_STRIPPED)
    {
        return;
    }
    for name in connection_listed(&resp.headers) {
        resp.remove_header(name.as_str());
    }
    for name in [
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "upgrade",
        "trailer",
    ] {
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

/// Appends the client address to `X-Forwarded-For` and sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host` (from the client's Host).
pub fn forwarded(
    req: &mut RequestHeader,
    client_ip: Option<std::net::IpAddr>,
    tls: bool,
    client_host: Option<&HeaderValue>,
) {
    if let Some(ip) = client_ip {
        let ip = ip.to_string();
        let xff = match req
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
            _ => ip,
        };
        let _ = req.insert_header("x-forwarded-for", xff);
    }
    let _ = req.insert_header("x-forwarded-proto", if tls { "https" } else { "http" });
    if let Some(h) = client_host {
        let _ = req.insert_header("x-forwarded-host", h.clone());
    }
}
