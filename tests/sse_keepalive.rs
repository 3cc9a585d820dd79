//! SSE keep-alive comments (a route's `sse_keepalive`), with a real upstream that paces
//! its event stream (raw HTTP/1.1, chunk by chunk, with pauses): while the upstream is
//! silent between two events the client gets `: keep-alive` comments, never inside an
//! event (the upstream pauses mid-event too) and never on an answer that is not
//! `text/event-stream`; the upstream's events arrive intact; the stream outlives the
//! route's `timeout`; keep-alives are not upstream activity, so `stream_idle_timeout`
//! still ends a silent upstream's stream; without `sse_keepalive` nothing is added. The
//! gateway's own streams follow the setting: the streamed pipeline (while its first
//! step is silent) and job events (while a stage runs). An HTTP/2 (h2c) client gets them
//! too.
#![allow(clippy::unwrap_used)]

mod common;

use common::{jobs, Gateway};
use futures::StreamExt;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEEP_ALIVE: &str = ": keep-alive\n\n";

/// What the upstream sends on a path: content type, then chunks each followed by a
/// pause (ms); `None` chunks: a whole JSON answer after the pause.
fn script(path: &str) -> (&'static str, Vec<(&'static str, u64)>) {
    match path {
        "/paced" => (
            "text/event-stream",
            vec![
                ("data: one\n\n", 700),
                ("data: tw", 700), // silent in the middle of an event
                ("o\n\n", 50),
                ("data: three\n\n", 0),
            ],
        ),
        "/ndjson" => (
            "application/x-ndjson",
            vec![("{\"a\":1}\n\n", 700), ("{\"b\":2}\n\n", 0)],
        ),
        "/silent" => (
            "text/event-stream",
            vec![("data: one\n\n", 3000), ("data: late\n\n", 0)],
        ),
        "/gen-stream" => (
            "text/event-stream",
            vec![
                ("data: {\"text\":\"The\"}\n\n", 700),
                ("data: {\"text\":\" fox\"}\n\n", 0),
                ("data: {\"done\":true,\"tokens\":2,\"model\":\"m\"}\n\n", 0),
            ],
        ),
        _ => ("application/json", vec![]),
    }
}

/// Reads one request (head and `Content-Length` body); its path.
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Some(head.split_whitespace().nth(1)?.to_string())
}

/// The paced upstream: one request per connection, answered by [`script`]; the job
/// stages' `/gen-json` and `/enrich-slow` (1 s) answer JSON.
async fn paced_upstream() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let Some(path) = read_request(&mut s).await else {
                    return;
                };
                let json_answer = match path.as_str() {
                    "/gen-json" => Some((0, json!({"text": "The fox", "tokens": 2}))),
                    "/enrich-slow" => Some((1000, json!({"keywords": ["fox"]}))),
                    _ => None,
                };
                if let Some((pause, body)) = json_answer {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    let body = body.to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                    return;
                }
                let (ctype, chunks) = script(&path);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                );
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for (chunk, pause) in chunks {
                    let c = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                    if s.write_all(c.as_bytes()).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                let _ = s.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    addr
}

fn table(up: SocketAddr) -> String {
    format!(
        r#"version: 1
upstreams:
  paced: {{ targets: [{{ addr: "{up}" }}], timeouts: {{ read: 5s }} }}
routes:
  - name: keepalive
    match: {{ path_prefix: /ka }}
    upstream: paced
    rewrite: {{ strip_prefix: /ka }}
    timeout: 300ms
    stream_idle_timeout: 2s
    sse_keepalive: 150ms
  - name: keepalive-idle
    match: {{ path_prefix: /idle }}
    upstream: paced
    rewrite: {{ strip_prefix: /idle }}
    stream_idle_timeout: 1s
    sse_keepalive: 150ms
  - name: plain
    match: {{ path_prefix: /plain }}
    upstream: paced
    rewrite: {{ strip_prefix: /plain }}
  - name: process
    match: {{ path: /process, methods: [POST] }}
    pipeline: [ {{ upstream: paced, path: /gen-stream }} ]
    sse_keepalive: 150ms
  - name: async
    match: {{ path: /async, methods: [POST] }}
    async: {{ topic: t, generation: {{ upstream: paced, path: /gen-json }}, enrichment: {{ upstream: paced, path: /enrich-slow }} }}
  - name: job-events
    match: {{ path: "/api/v1/jobs/{{job_id}}/events", methods: [GET] }}
    jobs: {{}}
    sse_keepalive: 150ms
"#
    )
}

/// The whole body as text, when each chunk came, and whether it ended cleanly.
struct Read {
    text: String,
    /// (offset in `text` where the chunk starts, when it arrived)
    chunks: Vec<(usize, Duration)>,
    clean: bool,
}

async fn read(r: reqwest::Response) -> Read {
    let start = Instant::now();
    let mut out = Read {
        text: String::new(),
        chunks: Vec::new(),
        clean: true,
    };
    let mut body = r.bytes_stream();
    while let Some(c) = body.next().await {
        match c {
            Ok(c) => {
                out.chunks.push((out.text.len(), start.elapsed()));
                out.text.push_str(std::str::from_utf8(&c).unwrap());
            }
            Err(_) => {
                out.clean = false;
                break;
            }
        }
    }
    out
}

/// The offsets of the keep-alive comments in `text`, each checked to stand between two
/// events (at the start, or right after a blank line or another comment).
fn comments_between_events(text: &str) -> Vec<usize> {
    let at: Vec<usize> = text.match_indices(KEEP_ALIVE).map(|(i, _)| i).collect();
    for &i in &at {
        let before = &text[..i];
        assert!(
            before.is_empty() || before.ends_with("\n\n"),
            "a keep-alive inside an event at {i}: {text:?}"
        );
    }
    at
}

/// Sends `req`, checks a 200 answer that ends cleanly, and reads it: the body and the
/// offsets of its keep-alives (each checked to stand between two events).
async fn read_clean(req: reqwest::RequestBuilder) -> (Read, Vec<usize>) {
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got = read(r).await;
    assert!(got.clean);
    let at = comments_between_events(&got.text);
    (got, at)
}

fn without_comments(text: &str) -> String {
    text.replace(KEEP_ALIVE, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_flow_between_events_while_the_upstream_is_silent() {
    let up = paced_upstream().await;
    let gw = Gateway::start(&table(up));
    let c = reqwest::Client::new();
    let get = |p: &str| c.get(gw.url(p)).send();
    // the same stream to an HTTP/2 client too (h2c)
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let (ka, plain, ndjson, over_h2) = tokio::join!(
        get("/ka/paced"),
        get("/plain/paced"),
        get("/ka/ndjson"),
        h2.get(gw.url("/ka/paced")).send()
    );
    let (ka, plain, ndjson, over_h2) = (
        ka.unwrap(),
        plain.unwrap(),
        ndjson.unwrap(),
        over_h2.unwrap(),
    );
    assert_eq!(ka.status(), 200);
    assert_eq!(over_h2.version(), reqwest::Version::HTTP_2);
    let (ka, plain, ndjson, over_h2) =
        tokio::join!(read(ka), read(plain), read(ndjson), read(over_h2));

    // the events intact, in order, the stream ended cleanly past the route's 300 ms timeout
    assert!(ka.clean, "{:?}", ka.text);
    assert_eq!(
        without_comments(&ka.text),
        "data: one\n\ndata: two\n\ndata: three\n\n"
    );
    let at = comments_between_events(&ka.text);
    // keep-alives every 150 ms during the 700 ms after `one` (then the upstream was
    // inside `two`, where none may go)
    let one_end = ka.text.find("data: one\n\n").unwrap() + "data: one\n\n".len();
    let two = ka.text.find("data: tw").unwrap();
    let in_pause = at.iter().filter(|&&i| i >= one_end && i < two).count();
    assert!(
        in_pause >= 2,
        "{in_pause} keep-alives in the pause: {:?}",
        ka.text
    );
    assert!(
        at.iter()
            .all(|&i| i < two || i > ka.text.find("o\n\n").unwrap()),
        "{:?}",
        ka.text
    );
    // each came as the upstream was silent, not with the next event
    let arrived = |off: usize| {
        ka.chunks
            .iter()
            .rev()
            .find(|(start, _)| *start <= off)
            .unwrap()
            .1
    };
    let first_ka = arrived(at[0]);
    assert!(
        first_ka < arrived(two),
        "the first keep-alive at {first_ka:?}, `two` at {:?}",
        arrived(two)
    );

    assert!(over_h2.clean, "{:?}", over_h2.text);
    assert_eq!(without_comments(&over_h2.text), without_comments(&ka.text));
    assert!(
        comments_between_events(&over_h2.text).len() >= 2,
        "{:?}",
        over_h2.text
    );

    // without sse_keepalive, and on an answer that is not an event stream: nothing added
    assert!(plain.clean);
    assert_eq!(plain.text, "data: one\n\ndata: two\n\ndata: three\n\n");
    assert!(ndjson.clean);
    assert_eq!(ndjson.text, "{\"a\":1}\n\n{\"b\":2}\n\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_do_not_hold_off_stream_idle_timeout() {
    let up = paced_upstream().await;
    let gw = Gateway::start(&table(up));
    let r = reqwest::get(gw.url("/idle/silent")).await.unwrap();
    assert_eq!(r.status(), 200);
    let got = read(r).await;
    // keep-alives went out while the upstream was silent ...
    let at = comments_between_events(&got.text);
    assert!(at.len() >= 2, "{:?}", got.text);
    // ... but the upstream's silence (1 s of stream_idle_timeout) ended the stream
    // before its late event (3 s)
    assert!(got.text.starts_with("data: one\n\n"), "{:?}", got.text);
    assert!(!got.text.contains("late"), "{:?}", got.text);
    assert!(
        !got.clean,
        "a cut stream does not end cleanly: {:?}",
        got.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_streams_follow_the_setting() {
    let up = paced_upstream().await;
    let gw = Gateway::start(&table(up));
    let c = reqwest::Client::new();
    // the streamed pipeline: keep-alives while its first step is silent
    let (got, at) = read_clean(
        c.post(gw.url("/process"))
            .json(&json!({"prompt": "The fox", "stream": true})),
    )
    .await;
    let fox = got.text.find("\" fox\"").unwrap();
    assert!(
        at.iter().filter(|&&i| i < fox).count() >= 2,
        "{:?}",
        got.text
    );
    let events = without_comments(&got.text);
    assert!(
        events.starts_with("data: {\"text\":\"The\"}\n\ndata: {\"text\":\" fox\"}\n\n"),
        "{events:?}"
    );
    assert!(events.contains("event: result\n"), "{events:?}");

    // job events: keep-alives while the enrichment stage runs (1 s), every 150 ms
    // instead of the default 15 s
    let id = jobs::submit_accepted(&c, &gw, "/async", &json!({"prompt": "The fox"}), None).await;
    let (got, at) = read_clean(c.get(gw.url(&format!("/api/v1/jobs/{id}/events")))).await;
    let enriching = got.text.find("event: enriching").unwrap();
    let done = got.text.find("event: done").unwrap();
    let during = at.iter().filter(|&&i| i > enriching && i < done).count();
    assert!(during >= 3, "{during} keep-alives: {:?}", got.text);
    let names: Vec<String> = without_comments(&got.text)
        .lines()
        .filter_map(|l| l.strip_prefix("event: ").map(str::to_string))
        .collect();
    assert_eq!(names, ["queued", "generating", "enriching", "done"]);
}
