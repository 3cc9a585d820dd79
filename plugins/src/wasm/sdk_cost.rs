//! What filters built with the real SDKs cost (`--ignored --nocapture`, after
//! `plugins/wasm-examples/build.sh`): making and starting one instance, a whole
//! request's callbacks on a kept instance, and `proxy_on_request_body` per piece of a
//! streamed body, for the Go, C++ and AssemblyScript filters
//! beside the benchmark's WAT headers filter. Printed, not asserted (a measure).
#![allow(clippy::unwrap_used)]

use crate::{PluginCtx, RequestInfo, Shared};
use std::path::PathBuf;

fn filters() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
        .join("wasm-filters")
}

async fn cost(file: PathBuf, root_id: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&file, dir.path().join("f.wasm")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run plugins/wasm-examples/build.sh)",
            file.display()
        )
    });
    let shared = Shared::with_env(false, |_| None);
    let settings = serde_json::json!({ "module": "f.wasm", "root_id": root_id, "max_time": "1s" });
    let build = || super::tests::build(&shared, dir.path(), settings.clone()).unwrap();
    let began = std::time::Instant::now();
    let p = build();
    let first = began.elapsed();
    let builds = 10u32;
    let began = std::time::Instant::now();
    for _ in 0..builds {
        build();
    }
    // a build starts one instance (the others start on first use by a thread)
    let per_instance = began.elapsed() / builds;
    let per_request = time_requests(p.as_ref(), 2000).await;
    let per_piece = body_pieces(p.as_ref(), info()).await;
    let size = std::fs::metadata(&file).unwrap().len() / 1024;
    println!(
        "sdk_cost {root_id}: {size} KiB; first build (compile + 1 instance) {first:?}; instantiate+start {per_instance:?} per instance; a request's callbacks {per_request:?}; proxy_on_request_body {per_piece:?} per 16 KiB piece"
    );
}

/// The streaming body phase's cost per piece: 200 `POST`s of 16 pieces of 16 KiB
/// each (the filter's context made by the request phase, ended by the log phase).
async fn body_pieces(p: &dyn crate::Plugin, info: RequestInfo<'_>) -> std::time::Duration {
    let piece = bytes::Bytes::from(vec![b'x'; 16 * 1024]);
    let (requests, pieces) = (200u32, 16u32);
    let mut took = std::time::Duration::ZERO;
    for _ in 0..requests {
        let mut ctx = PluginCtx {
            request_id: Some(http::HeaderValue::from_static("id-1")),
            ..Default::default()
        };
        let mut req = pingora_http::RequestHeader::build("POST", b"/a", None).unwrap();
        req.insert_header("content-length", (16 * 1024 * pieces).to_string())
            .unwrap();
        p.on_request(&mut crate::RequestCall::new(&mut req, info, &mut ctx))
            .await
            .unwrap();
        let began = std::time::Instant::now();
        for i in 0..pieces {
            let mut body = Some(piece.clone());
            let mut call = crate::ChunkCall {
                body: &mut body,
                end_of_stream: i + 1 == pieces,
                rewritten: false,
                req: &req,
                info,
                ctx: &mut ctx,
            };
            p.on_request_chunk(&mut call).await.unwrap();
        }
        took += began.elapsed();
        p.on_log(200, &mut ctx);
    }
    took / (requests * pieces)
}

#[tokio::test]
#[ignore]
async fn sdk_cost() {
    let f = filters();
    let bench = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bench/wasm-headers.wasm"
    ));
    cost(bench, "wat_headers").await;
    cost(f.join("correlation.wasm"), "correlation").await;
    cost(f.join("cpp_filter.wasm"), "cpp_filter").await;
    cost(f.join("go_filter.wasm"), "go_filter").await;
    cost(f.join("rust_filter.wasm"), "rust_filter").await;
}

/// A plugin that does nothing: the harness's own cost per request.
struct Nothing;
impl crate::Plugin for Nothing {}

/// What the filter reads of the measured requests.
fn info() -> RequestInfo<'static> {
    RequestInfo {
        client_ip: Some([127, 0, 0, 1].into()),
        client_port: Some(40000),
        ..RequestInfo::new("r", "/a")
    }
}

/// The time per request of `p`'s phases called directly, without the proxy, over `n`
/// requests.
async fn time_requests(p: &dyn crate::Plugin, n: u32) -> std::time::Duration {
    let began = std::time::Instant::now();
    for _ in 0..n {
        let ctx = PluginCtx {
            request_id: Some(http::HeaderValue::from_static("id-1")),
            ..Default::default()
        };
        super::tests::one_request(p, info(), ctx).await;
    }
    began.elapsed() / n
}

/// [`time_requests`]: the median of 7 rounds of 20,000 requests.
async fn per_request(p: &dyn crate::Plugin) -> std::time::Duration {
    let mut rounds = Vec::new();
    for _ in 0..7 {
        rounds.push(time_requests(p, 20_000).await);
    }
    rounds.sort();
    rounds[rounds.len() / 2]
}

/// What the benchmark's filters (bench/wasm-noop.wasm, bench/wasm-headers.wasm) cost a
/// request on their own: the plugin's phases on a kept instance (context create,
/// request headers, response headers, log, done, delete) less the harness's time with
/// a plugin that does nothing. The proxy's share (the chain any plugin brings) is not
/// in it: `bench/callgrind.sh` and `bench/run.sh` measure the whole.
#[tokio::test]
#[ignore]
async fn bench_filters_cost() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::with_env(false, |_| None);
    let bench = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench"));
    let base = per_request(&Nothing).await;
    for name in ["wasm-noop", "wasm-headers"] {
        std::fs::copy(
            bench.join(format!("{name}.wasm")),
            dir.path().join("f.wasm"),
        )
        .unwrap();
        let settings = serde_json::json!({ "module": "f.wasm" });
        let p = super::tests::build(&shared, dir.path(), settings).unwrap();
        let t = per_request(p.as_ref()).await;
        println!(
            "bench_filters_cost {name}: {t:?} per request, {:?} over a plugin that does nothing ({base:?})",
            t.saturating_sub(base)
        );
    }
}
