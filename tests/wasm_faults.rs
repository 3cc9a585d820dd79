//! The `wasm` plugin's sandbox through a real gateway: a trap, an infinite loop (cut by
//! `max_time`) and a memory overrun (`max_memory`) each answer 503 with `fail: closed`
//! and go on to the upstream with `fail: open`; each is counted in
//! `gateway_wasm_failures_total{plugin,reason}`, the instance is recreated (the next
//! request is served), and a route without the filter is served throughout. And
//! `api-gateway check` refuses a missing module, a file that is not wasm, a module
//! without the proxy-wasm ABI export and one with an unknown import, at the plugin's
//! line.
#![allow(clippy::unwrap_used)]

mod common;
mod wasm_common;
use common::*;
use std::time::{Duration, Instant};
use wasm_common::*;

/// Traps on `x-trap`, loops forever on `x-loop`, grows memory past any limit on
/// `x-grow`; otherwise adds `x-faults: ok` upstream.
const FAULTS: &str = r#"
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (if (i32.eqz (call $get (i32.const 0) @"x-trap" (i32.const 0) (i32.const 4)))
      (then unreachable))
    (if (i32.eqz (call $get (i32.const 0) @"x-loop" (i32.const 0) (i32.const 4)))
      (then (loop $forever (br $forever))))
    (if (i32.eqz (call $get (i32.const 0) @"x-grow" (i32.const 0) (i32.const 4)))
      (then (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))))
    (drop (call $add (i32.const 0) @"x-faults" @"ok"))
    (i32.const 0))
"#;

fn gateway(upstream: std::net::SocketAddr) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    write_filter(dir.path(), "faults.wasm", FAULTS);
    let config = dir.path().join("routes.yaml");
    let filter = |fail: &str| {
        format!("[{{ name: wasm, module: faults.wasm, fail: {fail}, max_time: 50ms, max_memory: 2MiB }}]")
    };
    std::fs::write(
        &config,
        format!(
            "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{upstream}\" }}] }}\nroutes:\n  - name: closed\n    match: {{ path_prefix: /closed }}\n    upstream: u\n    plugins: {}\n  - name: open\n    match: {{ path_prefix: /open }}\n    upstream: u\n    plugins: {}\n  - name: plain\n    match: {{ path_prefix: /plain }}\n    upstream: u\n",
            filter("closed"),
            filter("open")
        ),
    )
    .unwrap();
    Gateway::spawn(dir, config, &[])
}

async fn send(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    fault: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut r = c.get(gw.url(path));
    if let Some(h) = fault {
        r = r.header(h, "1");
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn each_fault_is_contained() {
    let echo = Echo::start("up").await;
    let gw = gateway(echo.addr);
    let c = reqwest::Client::new();
    for fault in ["x-trap", "x-loop", "x-grow"] {
        let began = Instant::now();
        let (status, body) = send(&c, &gw, "/closed/a", Some(fault)).await;
        assert_eq!(status, 503, "{fault}: {body}");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{fault} took {:?}",
            began.elapsed()
        );
        // the instance was recreated: the next request goes through the filter
        let (status, body) = send(&c, &gw, "/closed/a", None).await;
        assert_eq!(status, 200, "after {fault}: {body}");
        assert_eq!(body["headers"]["x-faults"], "ok");
        // fail: open skips the filter and reaches the upstream
        let (status, body) = send(&c, &gw, "/open/a", Some(fault)).await;
        assert_eq!(status, 200, "open {fault}: {body}");
        assert!(body["headers"].get("x-faults").is_none());
        let (status, _) = send(&c, &gw, "/plain/a", Some(fault)).await;
        assert_eq!(status, 200);
    }
    for reason in ["trap", "timeout", "memory"] {
        let series =
            format!("gateway_wasm_failures_total{{plugin=\"faults\",reason=\"{reason}\"}}");
        assert_eq!(gw.metric(&series).await, Some(2.0), "{series}");
    }
}

#[tokio::test]
async fn other_requests_are_served_while_filters_fail() {
    let echo = Echo::start("up").await;
    let gw = gateway(echo.addr);
    let c = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (c, url) = (
            c.clone(),
            gw.url(if i % 2 == 0 { "/closed/x" } else { "/plain/x" }),
        );
        tasks.push(tokio::spawn(async move {
            let mut r = c.get(url);
            if i % 4 == 0 {
                r = r.header("x-loop", "1");
            }
            (i, r.send().await.unwrap().status().as_u16())
        }));
    }
    for t in tasks {
        let (i, status) = t.await.unwrap();
        let want = if i % 4 == 0 { 503 } else { 200 };
        assert_eq!(status, want, "request {i}");
    }
}

fn check(dir: &std::path::Path, module: &str) -> (bool, String) {
    let config = dir.join("routes.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"127.0.0.1:9\" }}] }}\nroutes:\n  - name: r\n    match: {{ path_prefix: / }}\n    upstream: u\n    plugins:\n      - name: wasm\n        module: {module}\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(gateway_bin())
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_refuses_bad_modules_at_the_plugin_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_filter(d, "good.wasm", NOOP);
    std::fs::write(d.join("text.wasm"), "not a module").unwrap();
    write_raw(d, "no_abi.wasm", "(module (memory (export \"memory\") 1))");
    write_raw(
        d,
        "unknown.wasm",
        r#"(module (import "env" "proxy_teleport" (func (param i32) (result i32)))
             (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_0")))"#,
    );
    let (ok, out) = check(d, "good.wasm");
    assert!(ok, "{out}");
    for (module, want) in [
        ("missing.wasm", "cannot read"),
        ("text.wasm", "not a WebAssembly module"),
        ("no_abi.wasm", "proxy_abi_version_0_2_0"),
        ("unknown.wasm", "env.proxy_teleport"),
    ] {
        let (ok, out) = check(d, module);
        assert!(!ok, "{module} passed: {out}");
        assert!(out.contains(want), "{module}: {out}");
        // the plugin's `module` option is on line 10 of routes.yaml
        assert!(out.contains("line 10"), "{module} not located: {out}");
    }
}
