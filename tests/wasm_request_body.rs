//! A proxy-wasm filter's request body phase through a real gateway, as Envoy runs it:
//! `proxy_on_request_body` on each piece as it arrives. A hand-written filter (WAT)
//! steered by the request's `x-mode` header lets pieces go on (the upstream has the
//! first before the client sent the second), holds the body to its end (Pause), puts
//! a prefix before the whole body (`proxy_set_buffer_bytes`; with `content-length`
//! removed it goes upstream chunked, with it kept the gateway refuses the body),
//! answers from the body phase (the upstream never gets a whole request), makes an
//! HTTP call there (the body waits for its answer) and traps (503 with `fail: closed`,
//! the body as sent with `fail: open`); a held body over the route's limit is a 413; a
//! body the filter let through unchanged is retried, a rewritten one is not. The
//! upstream records what it received, piece by piece.
#![allow(clippy::unwrap_used)]

mod common;
mod wasm_common;
use common::*;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasm_common::*;

/// `x-mode`: `c` continue, `p` hold to the end, `r` hold to the end then put `wasm:`
/// before the body, `l` answer 403 `body refused`, `L` answer 403 `late` at the end,
/// `t` trap, `a` hold to the end then
/// call pool `u` (`GET /check`) and answer 202 with the call's answer body, `v` call
/// pool `u` on the first piece (pausing) and, in the call's callback, put the held
/// bytes in brackets and resume (`proxy_continue_request`).
/// `x-drop-length` removes `content-length` in the request headers phase (as a filter
/// that changes the body's length does).
const BODY_FILTER: &str = r#"
  (func (export "proxy_on_context_create") (param i32 i32))
  (func $mode (result i32)
    (if (result i32) (i32.eqz (call $get (i32.const 0) @"x-mode" (i32.const 0) (i32.const 4)))
      (then (i32.load8_u (i32.load (i32.const 0))))
      (else (i32.const 0))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $get (i32.const 0) @"x-drop-length" (i32.const 0) (i32.const 4)))
      (then (drop (call $remove (i32.const 0) @"content-length"))))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $len i32) (param $eos i32) (result i32)
    (local $m i32)
    (local.set $m (call $mode))
    (if (i32.eq (local.get $m) (i32.const 112))
      (then (return (i32.eqz (local.get $eos)))))
    (if (i32.eq (local.get $m) (i32.const 114))
      (then
        (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
        (drop (call $setbuf (i32.const 0) (i32.const 0) (i32.const 0) @"wasm:"))
        (return (i32.const 0))))
    (if (i32.eq (local.get $m) (i32.const 108))
      (then
        (drop (call $local (i32.const 403) @"no" @"body refused" (i32.const 0) (i32.const 0) (i32.const 0)))
        (return (i32.const 1))))
    (if (i32.eq (local.get $m) (i32.const 76))
      (then
        (if (local.get $eos)
          (then
            (drop (call $local (i32.const 403) @"no" @"late" (i32.const 0) (i32.const 0) (i32.const 0)))
            (return (i32.const 1))))
        (return (i32.const 0))))
    (if (i32.eq (local.get $m) (i32.const 116)) (then unreachable))
    (if (i32.eq (local.get $m) (i32.const 118))
      (then
        (if (i32.eqz (local.get $eos))
          (then
            (drop (call $http_call @"u" @"\01\00\00\00\05\00\00\00\06\00\00\00:path\00/check\00"
              (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 8)))
            (return (i32.const 1))))
        (return (i32.const 0))))
    (if (i32.eq (local.get $m) (i32.const 97))
      (then
        (if (local.get $eos)
          (then (drop (call $http_call @"u" @"\01\00\00\00\05\00\00\00\06\00\00\00:path\00/check\00"
            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 8)))))
        (return (i32.const 1))))
    (i32.const 0))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32) (param $size i32) (param i32)
    (if (i32.eq (call $mode) (i32.const 118))
      (then
        ;; the held request body (buffer 0) becomes "[" body "]", then the request goes on
        (drop (call $buf (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 0) (i32.const 4)))
        (i32.store8 (i32.const 65536) (i32.const 91))
        (memory.copy (i32.const 65537) (i32.load (i32.const 0)) (i32.load (i32.const 4)))
        (i32.store8 (i32.add (i32.const 65537) (i32.load (i32.const 4))) (i32.const 93))
        (drop (call $setbuf (i32.const 0) (i32.const 0) (i32.load (i32.const 4))
          (i32.const 65536) (i32.add (i32.load (i32.const 4)) (i32.const 2))))
        (drop (call $continue_request))
        (return)))
    (drop (call $buf (i32.const 4) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (drop (call $local (i32.const 202) @"" (i32.load (i32.const 0)) (i32.load (i32.const 4))
      (i32.const 0) (i32.const 0) (i32.const 0))))
"#;

/// What the upstream got for one path: the body's pieces as they came, the headers,
/// and whether the request was whole.
#[derive(Default, Clone, Debug)]
struct Got {
    pieces: Vec<Vec<u8>>,
    headers: HashMap<String, String>,
    whole: bool,
}

impl Got {
    fn body(&self) -> String {
        String::from_utf8(self.pieces.concat()).unwrap()
    }
}

type Seen = Arc<Mutex<HashMap<String, Got>>>;

/// A gateway ([`gateway`]) before an upstream that records each request's body piece
/// by piece, by path, on three listeners (the main pool's and the twins').
async fn stack() -> (Gateway, Seen) {
    let seen = Seen::default();
    let mut at = Vec::new();
    for _ in 0..3 {
        at.push(serve_app(recorder_app(&seen)).await.0);
    }
    (gateway(at[0], [at[1], at[2]]), seen)
}

/// The recorder; the first request for a `/retry/` path is answered 503 (after its
/// body).
fn recorder_app(seen: &Seen) -> axum::Router {
    use axum::http::StatusCode;
    let s = seen.clone();
    axum::Router::new().fallback(move |req: axum::extract::Request| {
        let seen = s.clone();
        async move {
            let (parts, body) = req.into_parts();
            let path = parts.uri.path().to_string();
            let headers = parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let got = Got {
                headers,
                ..Default::default()
            };
            let first = seen.lock().unwrap().insert(path.clone(), got).is_none();
            if path.starts_with("/closed/early") {
                // answered before the body
                return (StatusCode::OK, "early");
            }
            let mut stream = body.into_data_stream();
            while let Some(piece) = stream.next().await {
                let Ok(piece) = piece else {
                    return (StatusCode::BAD_REQUEST, "broken");
                };
                let mut all = seen.lock().unwrap();
                all.get_mut(&path).unwrap().pieces.push(piece.to_vec());
            }
            seen.lock().unwrap().get_mut(&path).unwrap().whole = true;
            if first && path.starts_with("/retry/") {
                return (StatusCode::SERVICE_UNAVAILABLE, "again");
            }
            (StatusCode::OK, "ok")
        }
    })
}

fn got(seen: &Seen, path: &str) -> Got {
    seen.lock().unwrap().get(path).cloned().unwrap_or_default()
}

/// Whether the upstream has received `body` for `path` within 5 s.
async fn reaches(seen: &Seen, path: &str, body: &str) -> bool {
    let arrived = wait_until(Duration::from_secs(5), || async {
        got(seen, path).body() == body
    });
    arrived.await.is_some()
}

/// Routes `/closed/`, `/mixed/` (a whole-body plugin before the filter), `/open/`
/// (`fail: open`), `/small/` (16-byte body limit) to
/// `upstream`, and `/retry/` to `twins` (two listeners of one recorder), retried once
/// on 503.
fn gateway(upstream: std::net::SocketAddr, twins: [std::net::SocketAddr; 2]) -> Gateway {
    let wasm = wat::parse_str(filter_wat(BODY_FILTER)).unwrap();
    let route = |name: &str, pool: &str, extra: &str| {
        // `mixed`: a whole-body plugin first (mirror, copying nothing)
        format!(
            "  - name: {name}\n    match: {{ path_prefix: /{name}/ }}\n    upstream: {pool}\n{extra}    plugins: [{}{{ name: wasm, module: body.wasm, fail: {} }}]\n",
            if name == "mixed" { "{ name: mirror, upstream: u, percent: 0 }, " } else { "" },
            if name == "open" { "open" } else { "closed" }
        )
    };
    let [a, b] = twins;
    let routes = format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{upstream}\" }}] }}\n  twins:\n    targets: [{{ addr: \"{a}\" }}, {{ addr: \"{b}\" }}]\n    retry: {{ attempts: 2, backoff: 1ms, on: [503] }}\nroutes:\n{}{}{}{}{}",
        route("closed", "u", ""),
        route("mixed", "u", ""),
        route("open", "u", ""),
        route("small", "u", "    max_body_size: 16\n"),
        route(
            "retry",
            "twins",
            "    retry_non_idempotent: true\n    max_body_size: 16\n",
        ),
    );
    Gateway::start_with_files(&routes, &[("body.wasm", &wasm)], &[])
}

/// A client that writes its request in pieces, when told.
struct Slow(TcpStream);

impl Slow {
    /// Connects and sends the head: `POST path` with `headers` (CRLF-ended lines).
    async fn open(gw: &Gateway, path: &str, headers: &str) -> Slow {
        let mut s = TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
        let head =
            format!("POST {path} HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n{headers}\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        Slow(s)
    }

    async fn send(&mut self, bytes: &str) {
        self.0.write_all(bytes.as_bytes()).await.unwrap();
        self.0.flush().await.unwrap();
    }

    /// The answer's status and body (read until the gateway closes).
    async fn answer(mut self) -> (u16, String) {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(10), self.0.read(&mut buf));
            match read.await.expect("an answer in time") {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }
}

/// A request in two pieces with `x-mode: {mode}` (`mode` may end with more header
/// lines): `before` runs between them (while the client still owes the rest).
async fn in_two(gw: &Gateway, path: &str, mode: &str, before: impl AsyncFnOnce()) -> (u16, String) {
    let headers = format!("x-mode: {mode}\r\ncontent-length: 10\r\n");
    let mut c = Slow::open(gw, path, &headers).await;
    c.send("hello").await;
    before().await;
    c.send("world").await;
    c.answer().await
}

#[tokio::test]
async fn pieces_go_on_as_they_come_and_a_pause_holds_them_to_the_end() {
    let (gw, seen) = stack().await;

    // Continue: the upstream has the first piece while the client still owes the second
    let (status, _) = in_two(&gw, "/closed/go", "c", async || {
        assert!(
            reaches(&seen, "/closed/go", "hello").await,
            "the first piece did not reach the upstream before the rest was sent: {:?}",
            got(&seen, "/closed/go")
        );
    })
    .await;
    assert_eq!(status, 200);
    let g = got(&seen, "/closed/go");
    assert!(g.whole);
    assert_eq!(g.body(), "helloworld");
    assert_eq!(g.headers["content-length"], "10");

    // Pause: nothing goes before the end; then all of it
    let (status, _) = in_two(&gw, "/closed/hold", "p", async || {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let g = got(&seen, "/closed/hold");
        assert!(
            g.pieces.concat().is_empty(),
            "held bytes went upstream: {g:?}"
        );
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(got(&seen, "/closed/hold").body(), "helloworld");
}

#[tokio::test]
async fn a_filter_replaces_the_body_and_it_goes_chunked() {
    let (gw, seen) = stack().await;

    // the filter removed content-length: the longer body goes upstream chunked, whole,
    // the held first piece in it
    let headers = "x-mode: r\r\nx-drop-length: 1\r\ncontent-length: 10\r\n";
    let mut c = Slow::open(&gw, "/closed/replaced", headers).await;
    c.send("hello").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send("world").await;
    let (status, body) = c.answer().await;
    assert_eq!(status, 200, "{body}");
    let g = got(&seen, "/closed/replaced");
    assert!(g.whole);
    assert_eq!(g.body(), "wasm:helloworld");
    assert_eq!(
        g.headers.get("transfer-encoding").map(String::as_str),
        Some("chunked")
    );
    assert!(!g.headers.contains_key("content-length"), "{g:?}");

    // beside a plugin that reads the body whole, the filter gets it whole (one piece)
    // and what it made is what goes upstream
    let (status, _) = in_two(&gw, "/mixed/replaced", "r\r\nx-drop-length: 1", async || {}).await;
    assert_eq!(status, 200);
    assert_eq!(got(&seen, "/mixed/replaced").body(), "wasm:helloworld");
    let (status, _) = in_two(&gw, "/mixed/lying", "r", async || {}).await;
    assert_eq!(status, 500);
    assert!(!got(&seen, "/mixed/lying").whole);

    // content-length kept: the gateway will not send 15 bytes under Content-Length: 10
    let (status, body) = in_two(&gw, "/closed/lying", "r", async || {}).await;
    assert_eq!(status, 500, "{body}");
    assert!(!got(&seen, "/closed/lying").whole);
    let logged = wait_until(Duration::from_secs(5), || async {
        gw.logs().contains("declares Content-Length: 10")
    });
    assert!(logged.await.is_some(), "{}", gw.logs());
}

#[tokio::test]
async fn the_body_phase_answers_fails_and_is_bounded() {
    let (gw, seen) = stack().await;

    // a local response from the body phase: the upstream never gets the whole request
    let (status, body) = in_two(&gw, "/closed/refused", "l", async || {}).await;
    assert_eq!(status, 403);
    assert_eq!(body, "body refused");
    assert!(!got(&seen, "/closed/refused").whole);

    // an HTTP call from the body callback: the body waits for its answer, which the
    // filter answers the client with
    let (status, body) = in_two(&gw, "/closed/called", "a", async || {}).await;
    assert_eq!((status, body.as_str()), (202, "ok"));
    assert!(got(&seen, "/check").whole);
    assert!(!got(&seen, "/closed/called").whole);

    // a pause with an HTTP call before the end: the call's callback reads and replaces
    // the held bytes and resumes, and they go upstream before the client sends the rest
    let (status, _) = in_two(
        &gw,
        "/closed/checked",
        "v\r\nx-drop-length: 1",
        async || {
            assert!(
                reaches(&seen, "/closed/checked", "[hello]").await,
                "the held piece did not go on at proxy_continue_request: {:?}",
                got(&seen, "/closed/checked")
            );
        },
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got(&seen, "/closed/checked").body(), "[hello]world");

    // the upstream answered before the body's end: a later answer of the filter is
    // dropped (logged), the upstream's goes on
    let mut c = Slow::open(&gw, "/closed/early", "x-mode: L\r\ncontent-length: 10\r\n").await;
    c.send("hello").await;
    let mut head = Vec::new();
    while !String::from_utf8_lossy(&head).contains("early") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), c.0.read(&mut buf));
        let n = n.await.expect("the upstream's answer").unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&head));
        head.extend_from_slice(&buf[..n]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    c.send("world").await;
    let (_, rest) = c.answer().await;
    assert!(!rest.contains("late"), "a second answer: {rest}");
    let dropped = wait_until(Duration::from_secs(5), || async {
        gw.logs().contains("the plugin's answer is dropped")
    });
    assert!(dropped.await.is_some(), "{}", gw.logs());

    // a trap: 503 with fail: closed; the body as the client sent it with fail: open
    let (status, _) = in_two(&gw, "/closed/trap", "t", async || {}).await;
    assert_eq!(status, 503);
    assert!(!got(&seen, "/closed/trap").whole);
    let (status, _) = in_two(&gw, "/open/trap", "t", async || {}).await;
    assert_eq!(status, 200);
    assert_eq!(got(&seen, "/open/trap").body(), "helloworld");

    // a held body past the route's limit (16 bytes; chunked, so no length to refuse first)
    let headers = "x-mode: p\r\ntransfer-encoding: chunked\r\n";
    let mut c = Slow::open(&gw, "/small/big", headers).await;
    c.send("a\r\n0123456789\r\n").await;
    c.send("a\r\n0123456789\r\n0\r\n\r\n").await;
    let (status, body) = c.answer().await;
    assert_eq!(status, 413, "{body}");
    assert!(got(&seen, "/small/big").pieces.concat().is_empty());
}

#[tokio::test]
async fn a_body_the_filter_let_through_is_retried_and_a_rewritten_one_is_not() {
    let (gw, seen) = stack().await;

    // the first try is answered 503: the body went through the filter unchanged, so
    // the retry sends it again (without the filter seeing it twice)
    let (status, _) = in_two(&gw, "/retry/same", "c", async || {}).await;
    assert_eq!(status, 200);
    let g = got(&seen, "/retry/same");
    assert!(g.whole);
    assert_eq!(g.body(), "helloworld");

    // a body the filter rewrote cannot be sent again as the client sent it: the 503
    // goes to the client
    let headers = "x-mode: r\r\nx-drop-length: 1\r\ncontent-length: 10\r\n";
    let mut c = Slow::open(&gw, "/retry/rewritten", headers).await;
    c.send("helloworld").await;
    let (status, _) = c.answer().await;
    assert_eq!(status, 503);
    assert_eq!(got(&seen, "/retry/rewritten").body(), "wasm:helloworld");
}

#[tokio::test]
async fn an_upgraded_connection_is_not_a_body() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    // a WebSocket echo upstream
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() {
                        let echo = format!("echo: {}", m.to_text().unwrap());
                        let _ = ws.send(Message::text(echo)).await;
                    }
                }
            });
        }
    });
    let wasm = wat::parse_str(filter_wat(BODY_FILTER)).unwrap();
    let routes = format!(
        "version: 1\nupstreams:\n  ws: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n  - name: ws\n    match: {{ path_prefix: / }}\n    upstream: ws\n    plugins: [{{ name: wasm, module: body.wasm }}]\n"
    );
    let gw = Gateway::start_with_files(&routes, &[("body.wasm", &wasm)], &[]);
    // the filter would hold a body to its end: the frames are not one
    let mut req = format!("ws://127.0.0.1:{}/ws", gw.port)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("x-mode", "p".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    for i in 0..2 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        let m = m.expect("the frame came back").unwrap().unwrap();
        assert_eq!(m.to_text().unwrap(), format!("echo: hello {i}"));
    }
    server.abort();
}
