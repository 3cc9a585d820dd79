//! The `compress` plugin through a real gateway: zstd, brotli and gzip by the client's
//! `Accept-Encoding` (decoded here to the upstream's exact bytes), identity when the
//! client accepts neither, for small answers, incompressible types and answers the
//! upstream encoded already; a streamed answer arrives compressed chunk by chunk, before
//! the upstream has finished; a 50 MB answer streams through without the gateway's
//! memory growing with it.
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

/// Chunks of the `/big` answer: 800 x 64 KiB = 50 MiB.
const BIG_CHUNKS: usize = 800;

/// Chunk `i` of `/big`: NDJSON-like lines that differ from chunk to chunk.
fn big_chunk(i: usize) -> bytes::Bytes {
    let mut out = String::with_capacity(65536);
    let mut j = 0;
    while out.len() < 65536 - 80 {
        out.push_str(&format!(
            "{{\"chunk\":{i},\"line\":{j},\"text\":\"lazy dog {}\"}}\n",
            i * 7919 + j
        ));
        j += 1;
    }
    while out.len() < 65536 {
        out.push(' ');
    }
    bytes::Bytes::from(out)
}

/// The gateway's resident memory (VmRSS), in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// `/big` (50 MiB of JSON, streamed), `/json` (large JSON), `/small`, `/png`, `/encoded` (already gzip) and `/stream`
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
            "/big" => {
                let chunks = futures::stream::iter(0..BIG_CHUNKS)
                    .map(|i| Ok::<_, std::io::Error>(big_chunk(i)));
                answer("application/json", Body::from_stream(chunks))
            }
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
    let (addr, task) = serve_app(app).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_answer_streams_through_compression_without_memory_growth() {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let (addr, _task) = upstream().await;
    let gw = gateway(addr, "{ name: compress, algorithms: [gzip] }");
    let c = reqwest::Client::new();
    // warm up: the first request allocates what every request will reuse
    let r = c
        .get(gw.url("/json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let before = rss(gw.pid());
    let r = c
        .get(gw.url("/big"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-encoding").as_deref(), Some("gzip"));
    assert!(header(&r, "content-length").is_none());
    /// Decoded bytes, hashed and counted as they come.
    struct Sink(Sha256, usize);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.update(b);
            self.1 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut decoder = flate2::write::GzDecoder::new(Sink(Sha256::new(), 0));
    let (mut wire, mut peak, mut n) = (0usize, before, 0usize);
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        wire += chunk.len();
        decoder.write_all(&chunk).unwrap();
        n += 1;
        if n % 16 == 0 {
            peak = peak.max(rss(gw.pid()));
        }
    }
    let sink = decoder.finish().unwrap();
    let mut want = Sha256::new();
    for i in 0..BIG_CHUNKS {
        want.update(big_chunk(i));
    }
    assert_eq!(sink.1, BIG_CHUNKS * 65536, "every byte decoded");
    assert_eq!(
        sink.0.finalize(),
        want.finalize(),
        "decoded = the upstream's bytes"
    );
    let growth = peak.saturating_sub(before);
    println!(
        "50 MiB through compress: {wire} bytes on the wire, gateway RSS {} -> peak {} KiB (+{} KiB)",
        before / 1024,
        peak / 1024,
        growth / 1024
    );
    // buffering the answer would grow it by 50 MiB; streaming keeps it to buffers
    assert!(
        growth < 16 << 20,
        "gateway RSS grew by {} KiB",
        growth / 1024
    );
}
