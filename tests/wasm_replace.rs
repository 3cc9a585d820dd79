//! A wasm filter's local response from the response phase (`proxy_send_local_response`
//! in `proxy_on_response_headers`) replaces the upstream's answer, as in Envoy: the
//! client gets the filter's status, headers and body with a matching Content-Length,
//! and nothing of the upstream's answer (its headers, its body, whole, streamed or
//! empty); HEAD gets the head only; built-in response plugins of the route still edit
//! the new answer; the connection is reused cleanly after it (HTTP/1.1 keep-alive, and
//! HTTP/2); a gateway's own error can be replaced too (once: no loop). When the rest
//! of the upstream's answer may be far (a stream, a large body), the exchange ends right
//! after the new answer: both connections close. From `proxy_on_response_body` the head
//! has gone: the stream is ended.
#![allow(clippy::unwrap_used)]

mod backends;
mod common;
mod wasm_common;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use common::*;
use futures::StreamExt;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasm_common::*;

/// What the filter answers instead (its JSON body).
const LOCAL_BODY: &str = r#"{"error":"bad_gateway","message":"the service failed"}"#;

/// The filter's answer: `proxy_send_local_response` of a 502 with [`LOCAL_BODY`], an
/// `x-replaced` header and its content type.
const ANSWER: &str = r#"(drop (call $local (i32.const 502) @"replaced"
    @"{\22error\22:\22bad_gateway\22,\22message\22:\22the service failed\22}"
    @"\02\00\00\00\0a\00\00\00\03\00\00\00\0c\00\00\00\10\00\00\00x-replaced\00yes\00content-type\00application/json\00"
    (i32.const -1)))"#;

/// Replaces an answer whose status is 5xx or 2x4 (204) with [`ANSWER`].
/// `BODY_CALLBACK` becomes a `proxy_on_response_body` that counts its calls in the
/// metric `replace_body_calls`, or nothing.
const REPLACE: &str = r#"
  (global $m (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $defm (i32.const 0) @"replace_body_calls" (i32.const 8)))
    (global.set $m (i32.load (i32.const 8)))
    (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (local $s i32)
    (if (call $get (i32.const 2) @":status" (i32.const 0) (i32.const 4))
      (then (return (i32.const 0))))
    (local.set $s (i32.load (i32.const 0)))
    (if (i32.or
          (i32.eq (i32.load8_u (local.get $s)) (i32.const 53))
          (i32.and
            (i32.eq (i32.load8_u (local.get $s)) (i32.const 50))
            (i32.eq (i32.load8_u offset=2 (local.get $s)) (i32.const 52))))
      (then ANSWER))
    (i32.const 0))
  BODY_CALLBACK
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
"#;

const COUNT_BODY: &str = r#"
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (drop (call $incm (global.get $m) (i64.const 1)))
    (i32.const 0))
"#;

/// Replaces every answer with [`ANSWER`] (for a streamed flow's 200).
const ALWAYS: &str = r#"
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    ANSWER
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
"#;

/// Answers from `proxy_on_response_body` (too late: the head has gone).
const LATE: &str = r#"
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (drop (call $local (i32.const 403) @"late" @"refused" (i32.const 0) (i32.const 0) (i32.const -1)))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
"#;

/// Upstream bodies of `endless` dropped (their connection closed).
static ENDLESS_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Counts its drop in [`ENDLESS_DROPPED`].
struct Dropped;

impl Drop for Dropped {
    fn drop(&mut self) {
        ENDLESS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// By the path's last segment: `error` (500, an HTML page, its own headers), `stream`
/// (500, chunked, three chunks 100 ms apart), `forever` (500, chunked, one chunk and
/// then nothing for ten minutes), `endless` (500, chunked, a chunk every
/// 100 ms without end; its drop is counted), `large` (500, 1 MiB with its length),
/// `empty` (500, no body), `nocontent` (204), `late` (200, chunked, the first chunk
/// after 100 ms), else `ok` (200).
async fn upstream() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().fallback(|req: Request| async move {
        let path = req.uri().path().to_string();
        let b = Response::builder()
            .header("x-upstream-page", "1")
            .header("set-cookie", "upstream=secret");
        let slow = |status: u16, first_wait: bool| {
            let chunks = futures::stream::iter(0..3).then(move |i| async move {
                if i > 0 || first_wait {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok::<_, std::io::Error>(format!("upstream-secret-chunk-{i};"))
            });
            Response::builder()
                .status(status)
                .header("content-type", "text/html")
                .body(Body::from_stream(chunks))
                .unwrap()
        };
        match path.rsplit('/').next().unwrap_or("") {
            "error" => b
                .status(500)
                .header("content-type", "text/html")
                .body(Body::from("<html>upstream-secret error page</html>"))
                .unwrap(),
            "stream" => slow(500, false),
            "forever" => {
                let chunks = futures::stream::iter(0..2).then(|i| async move {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_secs(600)).await;
                    }
                    Ok::<_, std::io::Error>("upstream-secret-chunk;")
                });
                b.status(500).body(Body::from_stream(chunks)).unwrap()
            }
            "endless" => {
                let chunks = futures::stream::unfold((Dropped, 0u64), |(d, i)| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let chunk = format!("upstream-secret-chunk-{i};");
                    Some((Ok::<_, std::io::Error>(chunk), (d, i + 1)))
                });
                b.status(500).body(Body::from_stream(chunks)).unwrap()
            }
            "large" => b
                .status(500)
                .body(Body::from("upstream-secret;".repeat(65536)))
                .unwrap(),
            "late" => slow(200, true),
            "empty" => b.status(500).body(Body::empty()).unwrap(),
            "nocontent" => b.status(204).body(Body::empty()).unwrap(),
            _ => b.status(200).body(Body::from("fine")).unwrap(),
        }
    });
    serve_app(app).await
}

/// A gateway with: `/r/` the counting filter; `/a/` the headers plugin then the filter
/// (without a body callback); `/b/` the filter then the headers plugin; `/down/` the
/// filter before an upstream that refuses connections; `/late/` the late filter.
async fn stack() -> (Gateway, tokio::task::JoinHandle<()>) {
    let (addr, task) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let replace = REPLACE.replace("ANSWER", ANSWER);
    let counting = replace.replace("BODY_CALLBACK", COUNT_BODY);
    write_filter(dir.path(), "replace_counting.wasm", &counting);
    write_filter(
        dir.path(),
        "replace.wasm",
        &replace.replace("BODY_CALLBACK", ""),
    );
    write_filter(dir.path(), "late.wasm", LATE);
    let down = free_port();
    let add = "{ name: response_headers, add: { x-frame-options: DENY } }";
    let route = |name: &str, up: &str, plugins: &str| {
        format!("  - name: {name}\n    match: {{ path_prefix: /{name}/ }}\n    upstream: {up}\n    plugins: [{plugins}]\n")
    };
    let routes = [
        route("r", "u", "{ name: wasm, module: replace_counting.wasm }"),
        route(
            "a",
            "u",
            &format!("{add}, {{ name: wasm, module: replace.wasm }}"),
        ),
        route(
            "b",
            "u",
            &format!("{{ name: wasm, module: replace.wasm }}, {add}"),
        ),
        route("down", "d", "{ name: wasm, module: replace.wasm }"),
        route("late", "u", "{ name: wasm, module: late.wasm }"),
    ]
    .concat();
    let config = dir.path().join("routes.yaml");
    std::fs::write(
        &config,
        format!("version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\n  d: {{ targets: [{{ addr: \"127.0.0.1:{down}\" }}] }}\nroutes:\n{routes}"),
    )
    .unwrap();
    (Gateway::spawn(dir, config, &[]), task)
}

/// One answer on a keep-alive connection: status, headers (lower-case names), body
/// (framed by its Content-Length; none for HEAD).
fn exchange(s: &mut TcpStream, method: &str, path: &str) -> (u16, HashMap<String, String>, String) {
    write!(s, "{method} {path} HTTP/1.1\r\nHost: gw\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = match (method, headers.get("content-length")) {
        ("HEAD", _) => 0,
        (_, Some(n)) => n.parse().unwrap(),
        (_, None) => panic!("no content-length: {head}"),
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, headers, String::from_utf8(body).unwrap())
}

fn connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The filter's answer exactly: its status, body, headers and a matching length;
/// nothing of the upstream's answer.
fn assert_replaced(status: u16, h: &HashMap<String, String>, body: &str, head_only: bool) {
    assert_eq!(status, 502, "{h:?} {body}");
    assert_eq!(h["content-length"], LOCAL_BODY.len().to_string());
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["x-replaced"], "yes");
    assert!(
        !h["x-request-id"].is_empty(),
        "the gateway's headers are on it"
    );
    for gone in [
        "x-upstream-page",
        "set-cookie",
        "transfer-encoding",
        "content-encoding",
    ] {
        assert!(!h.contains_key(gone), "{gone} came through: {h:?}");
    }
    assert_eq!(body, if head_only { "" } else { LOCAL_BODY });
    assert!(!body.contains("upstream-secret"));
}

#[tokio::test]
async fn a_filter_replaces_the_upstream_answer_in_the_response_phase() {
    let (gw, _up) = stack().await;
    tokio::task::spawn_blocking(move || {
        // one keep-alive connection: each answer is framed exactly, the next one works
        let mut s = connect(&gw);
        for (method, path) in [
            ("GET", "/r/error"),
            ("GET", "/r/empty"),
            ("GET", "/r/nocontent"),
            ("HEAD", "/r/error"),
            ("GET", "/r/error"),
        ] {
            let (status, h, body) = exchange(&mut s, method, path);
            assert_replaced(status, &h, &body, method == "HEAD");
            assert_eq!(h["connection"], "keep-alive", "{method} {path}");
        }
        // a streamed (chunked) upstream body: replaced as well; the connection closes
        // after it rather than wait for the stream's end
        let (status, h, body) = exchange(&mut s, "GET", "/r/stream");
        assert_replaced(status, &h, &body, false);
        assert_eq!(h["connection"], "close");
        // a stream that does not end: the whole answer at once all the same (the
        // connection's read timeout is 5 s)
        let (status, h, body) = exchange(&mut connect(&gw), "GET", "/r/forever");
        assert_replaced(status, &h, &body, false);
        assert_eq!(h["connection"], "close");
        let mut s = connect(&gw);
        // the filter's body callback never saw the dropped bodies
        let rt = tokio::runtime::Handle::current();
        let calls = |gw: &Gateway| rt.block_on(gw.metric("replace_body_calls")).unwrap_or(0.0);
        assert_eq!(calls(&gw), 0.0);
        // the requests reached the upstream: not counted as blocked
        let blocked = rt.block_on(gw.metric("gateway_requests_blocked_total{reason=\"wasm\"}"));
        assert_eq!(blocked.unwrap_or(0.0), 0.0);
        // an answer the filter keeps goes through untouched, on the same connection
        let (status, h, body) = exchange(&mut s, "GET", "/r/ok");
        assert_eq!((status, body.as_str()), (200, "fine"));
        assert_eq!(h["x-upstream-page"], "1");
        assert!(calls(&gw) >= 1.0, "the body callback runs on kept answers");
    })
    .await
    .unwrap();
}

/// The rest of the upstream's answer may be far: the new answer says
/// `Connection: close`, and the gateway closes the client's connection right after it
/// and cuts the upstream's, rather than read a stream to its end (or until the client
/// goes). The client's read timeout (5 s) bounds the wait.
#[tokio::test]
async fn the_upstream_of_a_replaced_stream_is_cut_and_the_connection_closed() {
    let (gw, _up) = stack().await;
    tokio::task::spawn_blocking(move || {
        let dropped = ENDLESS_DROPPED.load(Ordering::SeqCst);
        // `endless` never ends nor pauses; `forever` says nothing after its first chunk;
        // `large` has its length, over the 64 KiB the gateway reads to keep a connection
        for path in ["/r/endless", "/r/forever", "/r/large"] {
            let mut s = connect(&gw);
            let (status, h, body) = exchange(&mut s, "GET", path);
            assert_replaced(status, &h, &body, false);
            assert_eq!(h["connection"], "close", "{path}");
            let mut rest = Vec::new();
            let end = s.read_to_end(&mut rest);
            assert!(
                end.is_ok(),
                "{path}: the gateway kept the connection open after the answer: {end:?}"
            );
            assert!(rest.is_empty(), "{path}: more came: {rest:?}");
        }
        // the upstream's stream was dropped: its connection was closed
        let t = Instant::now();
        while ENDLESS_DROPPED.load(Ordering::SeqCst) == dropped {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the endless upstream answer is still being read"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // nothing of it is a failure: not logged as one
        let logs = gw.logs();
        assert!(!logs.contains("Fail to proxy"), "{logs}");
        assert!(!logs.contains("upstream cut"), "{logs}");
        // and the gateway serves on, a short answer keeping its connection
        let mut s = connect(&gw);
        let (status, h, body) = exchange(&mut s, "GET", "/r/error");
        assert_replaced(status, &h, &body, false);
        assert_eq!(h["connection"], "keep-alive");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn other_plugins_edit_the_replacement_and_the_gateways_own_errors_can_be_replaced() {
    let (gw, _up) = stack().await;
    let gw = tokio::task::spawn_blocking(move || {
        let mut s = connect(&gw);
        // the headers plugin before or after the filter: its header is on the new answer
        for path in ["/a/error", "/b/error", "/b/nocontent", "/a/stream"] {
            let (status, h, body) = exchange(&mut s, "GET", path);
            assert_replaced(status, &h, &body, false);
            assert_eq!(h["x-frame-options"], "DENY", "{path}");
        }
        // the gateway's own 502 (the upstream is down) is replaced once, no loop
        let mut s = connect(&gw);
        let (status, h, body) = exchange(&mut s, "GET", "/down/x");
        assert_replaced(status, &h, &body, false);
        gw
    })
    .await
    .unwrap();
    // an HTTP/2 client (h2c) gets the same answers, several on one connection
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (method, path) in [
        ("GET", "/r/error"),
        ("GET", "/r/stream"),
        ("HEAD", "/r/nocontent"),
        ("GET", "/r/empty"),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = h2.request(m, gw.url(path)).send().await.unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        let status = r.status().as_u16();
        let h: HashMap<String, String> = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let body = r.text().await.unwrap();
        assert_replaced(status, &h, &body, method == "HEAD");
    }
    let r = h2.get(gw.url("/r/ok")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "fine");
}

#[tokio::test]
async fn a_local_response_from_the_body_phase_ends_the_stream() {
    let (gw, _up) = stack().await;
    // the head went 100 ms before the first chunk: the stream is ended, incomplete
    let r = reqwest::get(gw.url("/late/late")).await.unwrap();
    assert_eq!(r.status(), 200, "the head had gone before the body");
    assert!(
        r.text().await.is_err(),
        "the stream must end without its end, not complete"
    );
    let logs = gw.logs();
    assert!(
        logs.contains("a local response from proxy_on_response_body"),
        "{logs}"
    );
    assert!(logs.contains("the stream is ended"), "{logs}");
    // a small answer (head and body may be filtered before either is written): the
    // filter's answer, whole, or the upstream's head and an incomplete body
    let r = reqwest::get(gw.url("/late/ok")).await.unwrap();
    match r.status().as_u16() {
        403 => assert_eq!(r.text().await.unwrap(), "refused"),
        200 => assert!(r.text().await.is_err(), "the upstream's body got through"),
        s => panic!("status {s}"),
    }
    // the gateway serves on
    let r = reqwest::get(gw.url("/r/ok")).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "fine");
}

/// A streamed flow answer (the gateway's own event stream, a pipeline's tokens) is
/// replaced like any other: the filter's answer, no event, on a connection that goes on.
#[tokio::test]
async fn a_streamed_flow_answer_is_replaced() {
    let (gen, enr) = backends::both().await;
    let dir = tempfile::tempdir().unwrap();
    write_filter(dir.path(), "always.wasm", &ALWAYS.replace("ANSWER", ANSWER));
    let config = dir.path().join("routes.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nupstreams:\n  generation: {{ targets: [{{ addr: \"{}\" }}] }}\n  enrichment: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - name: process\n    match: {{ path: /process, methods: [POST] }}\n    pipeline: [ {{ upstream: generation, path: /generate }}, {{ upstream: enrichment, path: /enrich }} ]\n    plugins: [ {{ name: wasm, module: always.wasm }} ]\n",
            gen.addr, enr.addr
        ),
    )
    .unwrap();
    let gw = Gateway::spawn(dir, config, &[]);
    let c = reqwest::Client::new();
    for _ in 0..2 {
        let body = serde_json::json!({"prompt": "a fox", "max_tokens": 5, "stream": true});
        let r = c.post(gw.url("/process")).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let h: HashMap<String, String> = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let body = r.text().await.unwrap();
        assert_replaced(status, &h, &body, false);
    }
}
