//! Hand-written proxy-wasm filters for the wasm tests: WAT with every host function
//! imported, a bump allocator, and `@"text"` for a string constant (replaced by its
//! pointer and length, the text put in a data segment; `\hh` is one byte).
#![allow(dead_code, clippy::unwrap_used)]

pub mod sdk;

use std::path::{Path, PathBuf};

const IMPORTS: &str = r#"
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $setbuf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $sget (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $sset (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $defm (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $incm (param i32 i64) (result i32)))
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_request" (func $continue_request (result i32)))
  (import "env" "proxy_grpc_call" (func $grpc_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_cancel" (func $grpc_cancel (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
"#;

/// Memory, the allocator (bump, reset when the first 2 pages are used), scratch words
/// (0..8 for returned pointer and size, 8..12 a CAS, 16..24 a u64) and `$itoa` (a u64 in
/// decimal, written in the second page, below 65600).
const RUNTIME: &str = r#"
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 131072))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $n)) (i32.const 262144))
      (then (global.set $heap (i32.const 131072))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (i32.add (local.get $n) (i32.const 8))))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  ;; writes $v in decimal to end at 65600: where it starts (its length: 65600 - start)
  (func $itoa (param $v i64) (result i32) (local $p i32)
    (local.set $p (i32.const 65600))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (local.get $p))
"#;

/// Bytes of a WAT string body (an escape `\hh` counts one).
fn wat_len(s: &str) -> usize {
    s.len() - 2 * s.matches('\\').count()
}

/// A filter module (WAT text) with `body` (functions, globals; `@"..."` constants).
pub fn filter_wat(body: &str) -> String {
    let mut out = String::new();
    let mut data = String::new();
    let mut at = 1024usize;
    let mut rest = body;
    while let Some(i) = rest.find("@\"") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('"').unwrap();
        let text = &after[..end];
        let len = wat_len(text);
        out.push_str(&format!("(i32.const {at}) (i32.const {len})"));
        data.push_str(&format!("  (data (i32.const {at}) \"{text}\")\n"));
        at += len + 1;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    assert!(at < 65536, "constants overflow the data area");
    format!("(module\n{IMPORTS}{RUNTIME}{data}{out})")
}

/// Writes `body` as a compiled filter at `dir/name`.
pub fn write_filter(dir: &Path, name: &str, body: &str) -> PathBuf {
    let wasm = wat::parse_str(filter_wat(body)).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, wasm).unwrap();
    p
}

/// Writes raw WAT (a whole module) compiled at `dir/name`.
pub fn write_raw(dir: &Path, name: &str, wat_text: &str) -> PathBuf {
    let wasm = wat::parse_str(wat_text).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, wasm).unwrap();
    p
}

/// Copies header `from` of map `fm` into a new header `to` of map `tm` (when found).
pub fn copy_header(fm: u32, from: &str, tm: u32, to: &str) -> String {
    format!(
        r#"(if (i32.eqz (call $get (i32.const {fm}) @"{from}" (i32.const 0) (i32.const 4)))
          (then (drop (call $add (i32.const {tm}) @"{to}" (i32.load (i32.const 0)) (i32.load (i32.const 4))))))"#
    )
}

/// Copies property `path` (segments joined by `\00`) into header `to` of map `tm`.
pub fn copy_property(path: &str, tm: u32, to: &str) -> String {
    format!(
        r#"(if (i32.eqz (call $prop @"{path}" (i32.const 0) (i32.const 4)))
          (then (drop (call $add (i32.const {tm}) @"{to}" (i32.load (i32.const 0)) (i32.load (i32.const 4))))))"#
    )
}

/// A filter whose every callback returns Continue and does nothing (the benchmark's).
pub const NOOP: &str = r#"
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
"#;

/// Adds `x-wasm-request: 1` upstream and `x-wasm-response: 1` to the answer (the
/// benchmark's headers filter).
pub const HEADERS: &str = r#"
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 0) @"x-wasm-request" @"1"))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 2) @"x-wasm-response" @"1"))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
"#;

/// A gateway whose route `route` (every path) goes to `upstream` through the filter
/// `body` (WAT; `entry`: more settings of its plugin entry), with pool `calls.0` at
/// `calls.1` for the filter's calls when given.
pub fn filter_gateway(
    body: &str,
    route: &str,
    entry: &str,
    upstream: std::net::SocketAddr,
    calls: Option<(&str, std::net::SocketAddr)>,
) -> crate::common::Gateway {
    let dir = tempfile::tempdir().unwrap();
    write_filter(dir.path(), "f.wasm", body);
    let config = dir.path().join("routes.yaml");
    let pool = calls
        .map(|(name, at)| format!("  {name}: {{ targets: [{{ addr: \"{at}\" }}] }}\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{upstream}\" }}] }}\n{pool}routes:\n  - name: {route}\n    match: {{ path_prefix: / }}\n    upstream: u\n    plugins: [{{ name: wasm, module: f.wasm{entry} }}]\n"
        ),
    )
    .unwrap();
    crate::common::Gateway::spawn(dir, config, &[])
}
