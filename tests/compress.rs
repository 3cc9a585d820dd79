//! The `compress` plugin through a real gateway: zstd, brotli and gzip by the client's
//! `Accept-Encoding` (decoded here to the upstream's exact bytes), identity when the
//! client accepts neither, for small answers, incompressible types and answers the
//! upstream encoded already; a streamed answer arrives compressed chunk by chunk, before
//! the upstream has finished.
#![allow(clippy::unwrap_used)]

mod common;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use common::*;
use futures::StreamExt;
use std::io::Read;
use std::time::{Duration, Instant};

fn big_json() -> String {
    let items: Vec<String> = (0..400)
        .map(|i| format!("{{\"id\":{i},\"text\":\"the quick brown fox jumps over the lazy dog\"}}"))
        .collect();
    format!("[{}]", items.join(","))
}

/// `/json` (large JSON), `/small`, `/png`, `/encoded` (already gzip) and `/stream`
/// (three NDJSON lines, 400 ms apart).
async fn upstream() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().fallback(|req: Request| async move {
        let answer = |ct: &str, body: Body| {
            Response::builder()
                .header("content-type", ct)
                .header("etag", "\"v1\"")
                .body(body)
                .unwrap()
        };
        match req.uri().path() {
            "/json" => answer("application/json", Body::from(big_json())),
            "/small" => answer("application/json", Body::from("{\"ok\":true}")),
            "/png" => answer("image/png", Body::from(vec![7u8; 5000])),
            "/encoded" => Response::builder()
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(Body::from(vec![1u8; 3000]))
                .unwrap(),
            _ => {
                let lines = futures::stream::iter(0..3).then(|i| async move {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(400)).await;
                    }
                    Ok::<_, std::io::Error>(format!("{{\"token\":{i}}}\n"))
                });
                answer("application/x-ndjson", Body::from_stream(lines))
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// A gateway whose one route sends everything to `addr` through `plugin`.
fn gateway(addr: std::net::SocketAddr, plugin: &str) -> Gateway {
    Gateway::start(&format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n  - name: c\n    match: {{ path_prefix: / }}\n    upstream: u\n    plugins: [{plugin}]\n"
    ))
}

fn decode(encoding: &str, bytes: &[u8]) -> String {
    let mut out = String::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut out)
            .unwrap(),
        "br" => brotli::Decompressor::new(bytes, 4096)
            .read_to_string(&mut out)
            .unwrap(),
        "zstd" => zstd::stream::read::Decoder::new(bytes)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap(),
        other => panic!("unexpected coding {other}"),
    };
    out
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_compressed_by_accept_encoding() {
    let (addr, _task) = upstream().await;
    let gw = gateway(addr, "{ name: compress }");
    // no automatic decompression: the raw coding is what is checked
    let c = reqwest::Client::builder().build().unwrap();
    let get = |path: &str, accept: &str| {
        let req = c.get(gw.url(path));
        if accept.is_empty() {
            req
        } else {
            req.header("accept-encoding", accept)
        }
    };
    let original = big_json();
    for (accept, want) in [
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0.4, gzip", "gzip"),
    ] {
        let r = get("/json", accept).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "content-encoding").as_deref(),
            Some(want),
            "{accept}"
        );
        assert_eq!(header(&r, "content-length"), None);
        assert_eq!(header(&r, "vary").as_deref(), Some("Accept-Encoding"));
        assert_eq!(header(&r, "etag").as_deref(), Some("W/\"v1\""));
        let bytes = r.bytes().await.unwrap();
        assert!(
            bytes.len() < original.len() / 4,
            "{want}: {} bytes",
            bytes.len()
        );
        assert_eq!(decode(want, &bytes), original, "{accept}");
    }
    // identity: not accepted, too small, not compressible, encoded already
    for (path, accept) in [
        ("/json", ""),
        ("/json", "identity"),
        ("/json", "gzip;q=0, br;q=0"),
        ("/small", "gzip"),
        ("/png", "gzip"),
    ] {
        let r = get(path, accept).send().await.unwrap();
        assert_eq!(header(&r, "content-encoding"), None, "{path} {accept}");
        assert_eq!(header(&r, "etag").as_deref(), Some("\"v1\""));
        let want = r.content_length();
        let body = r.bytes().await.unwrap();
        assert_eq!(want, Some(body.len() as u64), "{path}: length kept");
    }
    let r = get("/encoded", "gzip").send().await.unwrap();
    assert_eq!(header(&r, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(r.bytes().await.unwrap().to_vec(), vec![1u8; 3000]);
    // HEAD: never encoded
    let r = c
        .head(gw.url("/json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-encoding"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_compressed_chunk_by_chunk() {
    let (addr, _task) = upstream().await;
    let gw = gateway(addr, "{ name: compress, algorithms: [gzip] }");
    let c = reqwest::Client::new();
    let start = Instant::now();
    let r = c
        .get(gw.url("/stream"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-encoding").as_deref(), Some("gzip"));
    let mut stream = r.bytes_stream();
    let mut all = Vec::new();
    let mut first_at = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if first_at.is_none() && !chunk.is_empty() {
            first_at = Some(start.elapsed());
        }
        all.extend_from_slice(&chunk);
    }
    let total = start.elapsed();
    // the first line came before the upstream finished (two 400 ms pauses)
    let first = first_at.unwrap();
    assert!(total >= Duration::from_millis(800), "{total:?}");
    assert!(
        first + Duration::from_millis(500) < total,
        "first {first:?}, all {total:?}"
    );
    assert_eq!(
        decode("gzip", &all),
        "{\"token\":0}\n{\"token\":1}\n{\"token\":2}\n"
    );
}
