//! Request heads the engine refuses before any filter runs: each gets the gateway's
//! JSON error with an `X-Request-ID`, is counted in the metrics and logged; and short
//! HTTP/1.0 requests are answered at once (no wait for a 24-byte h2c preface).
#![allow(clippy::unwrap_used)]

mod common;

use common::{raw_json, raw_request, Echo, Gateway};
use std::time::{Duration, Instant};

fn routes(addr: std::net::SocketAddr) -> String {
    format!("version: 1\nserver: {{ max_header_size: 8KiB }}\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n  - {{ name: all, match: {{ path_prefix: / }}, upstream: u }}\n")
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    let head = resp.split_once("\r\n\r\n").map_or(resp, |(h, _)| h);
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_heads_get_json_errors_counted_and_logged() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&routes(up.addr));
    let long_uri = "a".repeat(9 * 1024);
    let cases: [(String, &str, &str); 6] = [
        (
            "GET /x HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n".into(),
            "400",
            "malformed_request",
        ),
        (
            "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 12abc\r\nX-Request-ID: rid-cl-1\r\n\r\n"
                .into(),
            "400",
            "bad_content_length",
        ),
        (
            "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
                .into(),
            "400",
            "bad_content_length",
        ),
        (
            "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(),
            "400",
            "bad_transfer_encoding",
        ),
        (
            format!("GET /{long_uri} HTTP/1.1\r\nHost: t\r\n\r\n"),
            "414",
            "uri_too_long",
        ),
        (
            format!("GET /x HTTP/1.1\r\nHost: t\r\nX-Big: {long_uri}\r\n\r\n"),
            "431",
            "header_too_large",
        ),
    ];
    let mut ids = Vec::new();
    for (req, status, reason) in &cases {
        let r = raw_request(gw.port, req).unwrap();
        assert!(
            r.starts_with(&format!("HTTP/1.1 {status} ")),
            "{reason}: {}",
            &r[..r.len().min(300)]
        );
        assert_eq!(header(&r, "content-type"), Some("application/json"), "{r}");
        assert_eq!(header(&r, "connection"), Some("close"), "{r}");
        let rid = header(&r, "x-request-id").unwrap().to_string();
        let body = raw_json(&r);
        assert_eq!(body["request_id"], rid.as_str(), "{r}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{r}"
        );
        ids.push(rid);
    }
    // a valid client request id is kept
    assert_eq!(ids[1], "rid-cl-1");

    for (reason, n) in [
        ("malformed_request", 1.0),
        ("bad_content_length", 2.0),
        ("bad_transfer_encoding", 1.0),
        ("uri_too_long", 1.0),
        ("header_too_large", 1.0),
    ] {
        let series = format!("gateway_requests_blocked_total{{reason=\"{reason}\"}}");
        assert_eq!(gw.metric(&series).await, Some(n), "{series}");
    }
    let series = "http_requests_total{method=\"POST\",route=\"none\",status=\"400\"}";
    assert_eq!(gw.metric(series).await, Some(3.0), "{series}");

    // each is logged with its request id
    let logs = gw.logs();
    for (id, (_, status, reason)) in ids.iter().zip(&cases) {
        let line = logs
            .lines()
            .find(|l| l.contains(id.as_str()) && l.contains(reason))
            .unwrap_or_else(|| panic!("no log line for {reason} ({id}):\n{logs}"));
        assert!(
            line.contains(&format!("\"status_code\":{status}")),
            "{line}"
        );
    }
    // the gateway still serves
    let r = raw_request(
        gw.port,
        "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_http10_requests_are_answered_at_once() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&routes(up.addr));
    // 18 bytes, fewer than an h2c preface: pingora alone waits for 24 until timeout
    let started = Instant::now();
    let r = raw_request(gw.port, "GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // an HTTP/1.1 request without Host is a 400 (RFC 9112 §3.2)
    let r = raw_request(gw.port, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(header(&r, "x-request-id").is_some(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_in_pieces_and_after_idling_are_served() {
    use std::io::{Read, Write};
    let up = Echo::start("u").await;
    let gw = Gateway::start(&routes(up.addr));
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let read_answer = |s: &mut std::net::TcpStream| {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = Vec::new();
        loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = header(head, "content-length").unwrap().parse().unwrap();
                if body.len() >= len {
                    return text;
                }
            }
        }
    };
    for i in 0..3 {
        // the head in three writes, with pauses, on one kept-alive connection
        s.write_all(b"GET /piece").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(format!("s/{i} HTTP/1.1\r\nHo").as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"st: t\r\n\r\n").unwrap();
        let r = read_answer(&mut s);
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains(&format!("/pieces/{i}")), "{r}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
