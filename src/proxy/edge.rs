//! Request hygiene before routing: `Host` (RFC 9112 §3.2), the head's size, HTTP/2
//! connection-specific headers (RFC 9113 §8.2.2) and header names with `_`, which CGI
//! and WSGI servers fold into the same variable as the `-` spelling
//! (docs/security.md).

use super::routing::Refusal;
use crate::config::UnderscoreHeaders;
use crate::runtime::Runtime;
use http::header;
use pingora_http::RequestHeader;

/// RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without `Host`.
pub(super) fn check_host(req: &RequestHeader) -> Result<(), Refusal> {
    if req.version == http::Version::HTTP_11 && !req.headers.contains_key(header::HOST) {
        return Err(Refusal::new(
            400,
            "missing_host",
            "an HTTP/1.1 request needs a Host header",
        ));
    }
    Ok(())
}

/// The head's size, then the HTTP/2 and underscore rules. A dropped underscore header
/// is removed from `req`, so no plugin and no upstream sees it.
pub(super) fn check_head(rt: &Runtime, req: &mut RequestHeader) -> Result<(), Refusal> {
    let size = req.uri.path().len()
        + req.uri.query().map_or(0, str::len)
        + req
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if size > rt.max_header_bytes {
        let msg = format!(
            "the request head is larger than {} bytes",
            rt.max_header_bytes
        );
        return Err(Refusal::new(431, "header_too_large", msg));
    }
    if req.version == http::Version::HTTP_2 {
        check_h2(req)?;
    }
    underscores(rt.underscore_headers, req)
}

/// Connection-specific headers make an HTTP/2 request malformed (`TE` but `trailers`
/// too): refused, never proxied, so no HTTP/1 upstream reads them as framing.
fn check_h2(req: &RequestHeader) -> Result<(), Refusal> {
    const NAMES: [&str; 5] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ];
    let bad = req.headers.keys().find(|k| NAMES.contains(&k.as_str()));
    let te_bad = req
        .headers
        .get_all(header::TE)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    let name = match (bad, te_bad) {
        (Some(n), _) => n.as_str().to_string(),
        (None, true) => "te".to_string(),
        (None, false) => return Ok(()),
    };
    let msg = format!(
        "an HTTP/2 request must not carry the connection-specific header `{name}` (RFC 9113 8.2.2)"
    );
    Err(Refusal::new(400, "malformed_h2", msg).kind("malformed_request"))
}

/// `server.underscore_headers`: drop (default), reject or keep names with `_`.
fn underscores(policy: UnderscoreHeaders, req: &mut RequestHeader) -> Result<(), Refusal> {
    if policy == UnderscoreHeaders::Keep {
        return Ok(());
    }
    let mut found = req
        .headers
        .keys()
        .filter(|k| k.as_str().as_bytes().contains(&b'_'))
        .peekable();
    if found.peek().is_none() {
        return Ok(());
    }
    if policy == UnderscoreHeaders::Reject {
        let name = found
            .next()
            .map(|k| k.as_str().to_string())
            .unwrap_or_default();
        let msg = format!(
            "header names with `_` are refused (`{name}`): upstreams may read it as its `-` spelling"
        );
        return Err(Refusal::new(400, "underscore_header", msg).kind("underscore_header"));
    }
    let names: Vec<http::HeaderName> = found.cloned().collect();
    for n in names {
        req.remove_header(&n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(version: http::Version, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        r.set_version(version);
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn h2_connection_headers_are_malformed() {
        let h2 = http::Version::HTTP_2;
        assert!(check_h2(&req(h2, &[("accept", "*/*"), ("te", "trailers")])).is_ok());
        for (k, v) in [
            ("connection", "keep-alive"),
            ("keep-alive", "5"),
            ("proxy-connection", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "gzip"),
        ] {
            let e = check_h2(&req(h2, &[(k, v)])).unwrap_err();
            assert_eq!((e.status, e.kind), (400, "malformed_request"), "{k}");
            assert!(e.message.contains(k), "{}", e.message);
        }
    }

    #[test]
    fn underscore_policies() {
        let h1 = http::Version::HTTP_11;
        let headers = [("x_user_id", "admin"), ("x-user-id", "alice"), ("a_b", "1")];
        let mut r = req(h1, &headers);
        underscores(UnderscoreHeaders::Drop, &mut r).unwrap();
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers["x-user-id"], "alice");
        let mut r = req(h1, &headers);
        let e = underscores(UnderscoreHeaders::Reject, &mut r).unwrap_err();
        assert_eq!((e.status, e.kind), (400, "underscore_header"));
        let mut r = req(h1, &headers);
        underscores(UnderscoreHeaders::Keep, &mut r).unwrap();
        assert_eq!(r.headers.len(), 3);
    }
}
