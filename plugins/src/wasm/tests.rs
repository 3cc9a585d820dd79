//! Building `wasm` entries: what a build refuses (and where), the compile cache across
//! builds, a filter that refuses its configuration, and the phases on a real instance.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::{Flow, PluginCtx, RequestCall, RequestInfo, Shared};
use pingora_http::{RequestHeader, ResponseHeader};
use std::path::Path;

const ABI: &str = r#"(memory (export "memory") 1)
  (global $h (mut i32) (i32.const 1024))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (local $p i32)
    (local.set $p (global.get $h)) (global.set $h (i32.add (global.get $h) (local.get 0))) (local.get $p))
  (func (export "proxy_abi_version_0_2_0"))"#;

fn write(dir: &Path, name: &str, wat_text: &str) {
    std::fs::write(dir.join(name), wat::parse_str(wat_text).unwrap()).unwrap();
}

/// A `GET /a` through the filter's phases (request, response, log), answered 200.
pub(super) async fn one_request(p: &dyn crate::Plugin, info: RequestInfo<'_>, mut ctx: PluginCtx) {
    let mut req = RequestHeader::build("GET", b"/a", None).unwrap();
    p.on_request(&mut RequestCall::new(&mut req, info, &mut ctx))
        .await
        .unwrap();
    let mut resp = ResponseHeader::build(200, None).unwrap();
    p.on_response(&mut resp, &mut ctx);
    p.on_log(200, &mut ctx);
}

pub(super) fn build(
    shared: &Arc<Shared>,
    dir: &Path,
    settings: serde_json::Value,
) -> Result<Arc<dyn Plugin>, SettingsError> {
    let cx = BuildCtx {
        shared,
        base_dir: dir,
        route: Some("r"),
    };
    Wasm::build(crate::parse_settings(&settings).unwrap(), &cx)
}

#[test]
fn bad_modules_are_refused_at_module() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("text.wasm"), "hello").unwrap();
    write(d, "no_abi.wasm", "(module)");
    write(
        d,
        "unknown.wasm",
        &format!(r#"(module (import "env" "proxy_nope" (func)) {ABI})"#),
    );
    write(
        d,
        "wrong_sig.wasm",
        &format!(r#"(module (import "env" "proxy_log" (func (param i32))) {ABI})"#),
    );
    let shared = Shared::dry();
    for (file, want) in [
        ("missing.wasm", "cannot read"),
        ("text.wasm", "not a WebAssembly module"),
        ("no_abi.wasm", "not a proxy-wasm filter"),
        ("unknown.wasm", "env.proxy_nope"),
        ("wrong_sig.wasm", "do not match"),
    ] {
        let e = build(&shared, d, serde_json::json!({ "module": file }))
            .err()
            .unwrap();
        assert_eq!(e.path, "module", "{file}");
        assert!(e.message.contains(want), "{file}: {}", e.message);
    }
}

#[test]
fn modules_compile_once_per_content() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "f.wasm", &format!("(module {ABI})"));
    let shared = Shared::with_env(false, |_| None);
    build(&shared, d, serde_json::json!({ "module": "f.wasm" })).unwrap();
    build(
        &shared,
        d,
        serde_json::json!({ "module": "f.wasm", "configuration": "x" }),
    )
    .unwrap();
    let modules = Modules::of(&shared).unwrap();
    assert_eq!(modules.cached(), 1);
    write(
        d,
        "f.wasm",
        &format!("(module {ABI} (func (export \"proxy_on_tick\") (param i32)))"),
    );
    build(&shared, d, serde_json::json!({ "module": "f.wasm" })).unwrap();
    assert_eq!(modules.cached(), 2);
}

#[test]
fn a_refused_configuration_refuses_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "f.wasm",
        &format!(
            r#"(module {ABI} (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0)))"#
        ),
    );
    let live = Shared::with_env(false, |_| None);
    let e = build(&live, d, serde_json::json!({ "module": "f.wasm" }))
        .err()
        .unwrap();
    assert!(
        e.message.contains("proxy_on_configure returned false"),
        "{}",
        e.message
    );
    // a dry build runs nothing
    assert!(build(&Shared::dry(), d, serde_json::json!({ "module": "f.wasm" })).is_ok());
    // a memory larger than max_memory is refused
    write(
        d,
        "big.wasm",
        &format!(
            "(module {})",
            ABI.replace(
                "(memory (export \"memory\") 1)",
                "(memory (export \"memory\") 64)"
            )
        ),
    );
    let e = build(
        &live,
        d,
        serde_json::json!({ "module": "big.wasm", "max_memory": "1MiB" }),
    )
    .err()
    .unwrap();
    assert_eq!(e.path, "max_memory");
}

#[tokio::test]
async fn phases_run_on_a_live_instance() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "f.wasm",
        &format!(
            r#"(module
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  {ABI}
  (data (i32.const 16) "x-req") (data (i32.const 32) "x-resp") (data (i32.const 48) "1")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 48) (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 32) (i32.const 6) (i32.const 48) (i32.const 1)))
    (i32.const 0)))"#
        ),
    );
    let shared = Shared::with_env(false, |_| None);
    let p = build(&shared, d, serde_json::json!({ "module": "f.wasm" })).unwrap();
    let mut req = RequestHeader::build("GET", b"/a", None).unwrap();
    let info = RequestInfo::new("r", "/a");
    let mut ctx = PluginCtx::default();
    let mut call = RequestCall::new(&mut req, info, &mut ctx);
    // no HTTP call: decided at once, without a future to build
    assert!(matches!(
        p.request_step(&mut call),
        crate::Step::Now(Ok(Flow::Continue))
    ));
    assert_eq!(req.headers["x-req"], "1");
    let mut resp = ResponseHeader::build(200, None).unwrap();
    p.on_response(&mut resp, &mut ctx);
    assert_eq!(resp.headers["x-resp"], "1");
    p.on_log(200, &mut ctx);
}

/// What instance-per-request would cost against the kept per-thread instances: the time
/// to make and start an instance of a filter, and the time of a whole request's
/// callbacks on a kept one. Prints both (`--ignored --nocapture`).
#[tokio::test]
#[ignore]
async fn wasm_cost() {
    let dir = tempfile::tempdir().unwrap();
    let headers = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/wasm-headers.wasm");
    std::fs::copy(headers, dir.path().join("f.wasm")).unwrap();
    let shared = Shared::with_env(false, |_| None);
    let n = 2000u32;
    let began = std::time::Instant::now();
    for _ in 0..200 {
        build(
            &shared,
            dir.path(),
            serde_json::json!({ "module": "f.wasm" }),
        )
        .unwrap();
    }
    // a build starts one instance (the others start on first use per thread)
    let per_instance = began.elapsed() / 200;
    let p = build(
        &shared,
        dir.path(),
        serde_json::json!({ "module": "f.wasm" }),
    )
    .unwrap();
    let info = RequestInfo::new("r", "/a");
    let began = std::time::Instant::now();
    for _ in 0..n {
        one_request(p.as_ref(), info, PluginCtx::default()).await;
    }
    let per_request = began.elapsed() / n;
    println!("wasm_cost: instantiate+start {per_instance:?} per instance; a request's callbacks on a kept instance {per_request:?}");
}
