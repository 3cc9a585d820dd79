//! Reading and checking an HTTP/1 request head before pingora sees it. The bytes read
//! are handed to pingora as its parse buffer (no copy), so a head is read once; the
//! check refuses what pingora would refuse with a bare 400 (or hang on), so that the
//! gateway can answer in its own JSON shape.

use bytes::BytesMut;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// The HTTP/2 connection preface of a prior-knowledge (h2c) client.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most headers a request may have (pingora's limit).
const MAX_HEADERS: usize = 256;

/// The longest request target (the `http` crate's limit for a URI).
pub const MAX_URI: usize = 65_534;

/// First buffer for a head: one allocation holds any usual request.
const INITIAL_BUF: usize = 4096;

/// Why a head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not HTTP/1 syntax (request line or a header line).
    Malformed,
    /// `Content-Length` not a number, or several that differ.
    BadContentLength,
    /// `Transfer-Encoding` on HTTP/1.0, or not ending in `chunked`.
    BadTransferEncoding,
    /// The request target is longer than the limit.
    UriTooLong,
    /// The head is larger than `server.max_header_size`, or has too many headers.
    HeaderTooLarge,
    /// Two `Host` fields, userinfo (`user@`) in the authority, or an absolute-form
    /// target whose authority is not the `Host` field (RFC 9112 §3.2.2): which host
    /// the request is for would depend on who reads it.
    AmbiguousHost,
}

impl Refusal {
    /// Status, `gateway_requests_blocked_total` reason and the message sent.
    pub fn answer(self) -> (u16, &'static str, &'static str) {
        match self {
            Refusal::Malformed => (
                400,
                "malformed_request",
                "the request is not valid HTTP/1.1",
            ),
            Refusal::BadContentLength => (
                400,
                "bad_content_length",
                "Content-Length must be one non-negative number",
            ),
            Refusal::BadTransferEncoding => (
                400,
                "bad_transfer_encoding",
                "Transfer-Encoding must end with chunked (and needs HTTP/1.1)",
            ),
            Refusal::UriTooLong => (414, "uri_too_long", "the request target is too long"),
            Refusal::AmbiguousHost => (
                400,
                "ambiguous_host",
                "the request names its host twice (two Host fields, userinfo, or an absolute-form target whose authority is not the Host field)",
            ),
            Refusal::HeaderTooLarge => (
                431,
                "header_too_large",
                "the request head is too large or has too many headers",
            ),
        }
    }
}

/// What a parsed (or refused) head says about itself, for the refusal's log line.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub method: Option<String>,
    /// The path without its query (a query may carry credentials).
    pub path: Option<String>,
    pub request_id: Option<http::HeaderValue>,
}

/// The outcome of reading a head.
#[derive(Debug)]
pub enum Head {
    /// The client closed (or the connection broke) before a whole head.
    Closed,
    /// An h2c connection preface (nothing consumed beyond it).
    H2c(BytesMut),
    /// A complete head that pingora can parse; the buffer may hold body bytes after it.
    Ready(BytesMut),
    /// Refused; the connection is answered and closed.
    Refused(Refusal, Seen),
}

/// Bytes read by the first read of a head, on the stack of that one poll.
const FIRST_READ: usize = 2048;

/// The first bytes of a request, read into a buffer that exists only while the read is
/// polled: a parked keep-alive connection holds no buffer, and a request costs the same
/// read calls as reading straight into a heap buffer (a zero-length read to wait for
/// readability would add a system call per request). Empty: the client closed.
pub async fn first_bytes<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
) -> std::io::Result<BytesMut> {
    poll_fn(|cx| {
        let mut tmp = [0u8; FIRST_READ];
        let mut rb = ReadBuf::new(&mut tmp);
        match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let got = rb.filled();
                let mut buf = BytesMut::with_capacity(INITIAL_BUF.max(got.len()));
                buf.extend_from_slice(got);
                Poll::Ready(Ok(buf))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Reads one request head. `h2c`: a prior-knowledge HTTP/2 preface is recognised.
/// `limit`: the largest head accepted (`server.max_header_size`).
pub async fn read<S: AsyncRead + Unpin + ?Sized>(stream: &mut S, h2c: bool, limit: usize) -> Head {
    let mut buf = match first_bytes(stream).await {
        Ok(b) if !b.is_empty() => b,
        _ => return Head::Closed,
    };
    let mut first = true;
    loop {
        if !first {
            if buf.len() == buf.capacity() {
                buf.reserve(buf.len().min(limit));
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Head::Closed,
                Ok(_) => {}
            }
        }
        first = false;
        if h2c && H2_PREFACE.starts_with(&buf[..buf.len().min(H2_PREFACE.len())]) {
            if buf.len() >= H2_PREFACE.len() {
                return Head::H2c(buf);
            }
            continue;
        }
        match check(&buf, limit) {
            Checked::Partial | Checked::TooMany => {}
            Checked::Complete => return Head::Ready(buf),
            Checked::Refused(r, seen) => return Head::Refused(r, seen),
        }
    }
}

enum Checked {
    Partial,
    /// More headers than the slots given.
    TooMany,
    Complete,
    Refused(Refusal, Seen),
}

/// Parses what was read so far (pingora's parser: httparse), into header slots left
/// uninitialised (httparse writes those it fills; initialising them cost more than parsing).
fn check(buf: &[u8], limit: usize) -> Checked {
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    match check_with(buf, limit, &mut headers) {
        Checked::TooMany => Checked::Refused(Refusal::HeaderTooLarge, Seen::default()),
        c => c,
    }
}

fn check_with<'b>(
    buf: &'b [u8],
    limit: usize,
    headers: &mut [std::mem::MaybeUninit<httparse::Header<'b>>],
) -> Checked {
    let mut req = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .parse_request_with_uninit_headers(&mut req, buf, headers);
    match parsed {
        Ok(httparse::Status::Complete(len)) => match checked_head(&req, len, limit) {
            Ok(()) => Checked::Complete,
            Err(r) => Checked::Refused(r, seen(&req)),
        },
        Ok(httparse::Status::Partial) => {
            if buf.len() > limit {
                let r = if req.path.is_none() && buf.len() > MAX_URI.min(limit) {
                    Refusal::UriTooLong
                } else {
                    Refusal::HeaderTooLarge
                };
                return Checked::Refused(r, Seen::default());
            }
            Checked::Partial
        }
        Err(httparse::Error::TooManyHeaders) => Checked::TooMany,
        // characters httparse refuses in the request line: pingora escapes them in the
        // target, once the whole head is there
        Err(httparse::Error::Token | httparse::Error::Version) if plausible_line(buf) => {
            if memchr_end(buf) {
                Checked::Complete
            } else if buf.len() > limit {
                Checked::Refused(Refusal::HeaderTooLarge, Seen::default())
            } else {
                Checked::Partial
            }
        }
        Err(_) => Checked::Refused(Refusal::Malformed, Seen::default()),
    }
}

/// `METHOD SP target SP HTTP/1.x` with a token method: a line pingora may repair.
fn plausible_line(buf: &[u8]) -> bool {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = &buf[..line_end];
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    let method = &line[..sp];
    !method.is_empty()
        && method.iter().all(|b| b.is_ascii_alphabetic())
        && (line.ends_with(b" HTTP/1.1\r") || line.ends_with(b" HTTP/1.0\r"))
}

fn memchr_end(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n")
}

fn seen(req: &httparse::Request<'_, '_>) -> Seen {
    let request_id = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("x-request-id"))
        .and_then(|h| http::HeaderValue::from_bytes(h.value).ok())
        .filter(crate::proxy::valid_request_id);
    Seen {
        method: req.method.map(str::to_owned),
        path: req.path.map(|p| {
            p.split('?')
                .next()
                .unwrap_or("")
                .chars()
                .take(256)
                .collect()
        }),
        request_id,
    }
}

/// The checks pingora makes after parsing, plus the size limits.
fn checked_head(req: &httparse::Request<'_, '_>, len: usize, limit: usize) -> Result<(), Refusal> {
    let target = req.path.unwrap_or("");
    if target.len() > MAX_URI.min(limit) {
        return Err(Refusal::UriTooLong);
    }
    if len > limit {
        return Err(Refusal::HeaderTooLarge);
    }
    let mut te_last: Option<&[u8]> = None;
    let mut length: Option<u64> = None;
    let mut bad_length = false;
    let mut host: Option<&[u8]> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            if host.is_some() || h.value.contains(&b'@') {
                return Err(Refusal::AmbiguousHost);
            }
            host = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te_last = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for part in h.value.split(|&b| b == b',') {
                match parse_length(part) {
                    Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                    _ => bad_length = true,
                }
            }
        }
    }
    if let Some(authority) = absolute_authority(target) {
        if authority.contains(&b'@') || host.is_some_and(|h| !h.eq_ignore_ascii_case(authority)) {
            return Err(Refusal::AmbiguousHost);
        }
    }
    if let Some(te) = te_last {
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3)
        let last = te.rsplit(|&b| b == b',').next().unwrap_or(b"");
        if req.version == Some(0) || !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            return Err(Refusal::BadTransferEncoding);
        }
    } else if bad_length {
        return Err(Refusal::BadContentLength);
    }
    Ok(())
}

/// The authority of an absolute-form `http://` or `https://` target.
fn absolute_authority(target: &str) -> Option<&[u8]> {
    let b = target.as_bytes();
    let rest = ["http://", "https://"].iter().find_map(|s| {
        (b.len() >= s.len() && b[..s.len()].eq_ignore_ascii_case(s.as_bytes()))
            .then(|| &b[s.len()..])
    })?;
    let end = rest
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// One `Content-Length` element: digits only (optional surrounding whitespace).
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(head: &[u8]) -> Option<Refusal> {
        match check(head, 64 * 1024) {
            Checked::Refused(r, _) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn good_heads_pass() {
        assert_eq!(refused(b"GET / HTTP/1.0\r\n\r\n"), None);
        assert_eq!(refused(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc"),
            None
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            None
        );
    }

    #[test]
    fn bad_heads_are_refused() {
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nHost x\r\n\r\n"),
            Some(Refusal::Malformed)
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
            Some(Refusal::BadContentLength)
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Some(Refusal::BadContentLength)
        );
        assert_eq!(
            refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(Refusal::BadTransferEncoding)
        );
        assert!(matches!(
            check(b"GET /aaaa", 4),
            Checked::Refused(Refusal::UriTooLong, _)
        ));
    }

    #[test]
    fn ambiguous_hosts_are_refused() {
        for head in [
            &b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
            b"GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n",
            b"GET HTTP://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(refused(head), Some(Refusal::AmbiguousHost), "{head:?}");
        }
        assert_eq!(
            refused(b"GET http://a:8080/x HTTP/1.1\r\nHost: A:8080\r\n\r\n"),
            None
        );
        assert_eq!(refused(b"GET https://a HTTP/1.1\r\nHost: a\r\n\r\n"), None);
    }
}
