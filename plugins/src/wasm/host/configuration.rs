//! `proxy_get_configuration` (ABI 0.1's way to read the configuration, which the C++
//! SDK still declares) and `proxy_get_status` (the status of the last gRPC call, read
//! by the C++ SDK's `getStatus` and the Rust SDK's `get_grpc_status`), answered as
//! Envoy does: the plugin's configuration, and in `proxy_on_grpc_close` the call's code
//! and message (elsewhere 0 and an empty message).

use super::{give, write_u32, Host};
use crate::wasm::abi::code;
use wasmtime::Caller;

/// `proxy_get_configuration(ptr_ptr, size_ptr)`: the plugin configuration, as
/// `proxy_get_buffer_bytes` of `PluginConfiguration` gives it.
pub fn get_configuration(mut c: Caller<'_, Host>, rp: i32, rs: i32) -> i32 {
    let config = c.data().filter.configuration.clone();
    code(give(&mut c, &config, rp, rs))
}

/// `proxy_get_status(code_ptr, message_ptr_ptr, message_size_ptr)`: the status of the
/// gRPC call whose close callback runs, else 0 and "".
pub fn get_status(mut c: Caller<'_, Host>, cp: i32, rp: i32, rs: i32) -> i32 {
    let (status, message) = match c.data().cx.answer.as_ref().and_then(|a| a.grpc.as_ref()) {
        Some(s) => (s.code, s.message.clone().into_bytes()),
        None => (0, Vec::new()),
    };
    code(write_u32(&mut c, cp, status).and_then(|()| give(&mut c, &message, rp, rs)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::wasm::Wasm;
    use crate::{BuildCtx, Factory, Flow, PluginCtx, RequestCall, RequestInfo, Shared};
    use pingora_http::RequestHeader;

    /// A filter that puts what `proxy_get_configuration` and `proxy_get_status` answer
    /// in request headers: `x-config` (the bytes), `x-status` (`ok` when both answered
    /// Ok and the status is code 0 with an empty message).
    const FILTER: &str = r#"(module
  (import "env" "proxy_get_configuration" (func $config (param i32 i32) (result i32)))
  (import "env" "proxy_get_status" (func $status (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $h (mut i32) (i32.const 1024))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (local $p i32)
    (local.set $p (global.get $h)) (global.set $h (i32.add (global.get $h) (local.get 0))) (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (data (i32.const 64) "x-config") (data (i32.const 80) "x-status") (data (i32.const 96) "ok")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $config (i32.const 0) (i32.const 4)))
      (then (drop (call $add (i32.const 0) (i32.const 64) (i32.const 8)
        (i32.load (i32.const 0)) (i32.load (i32.const 4))))))
    (i32.store (i32.const 8) (i32.const 99))
    (if (i32.and (i32.eqz (call $status (i32.const 8) (i32.const 0) (i32.const 4)))
          (i32.and (i32.eqz (i32.load (i32.const 8))) (i32.eqz (i32.load (i32.const 4)))))
      (then (drop (call $add (i32.const 0) (i32.const 80) (i32.const 8) (i32.const 96) (i32.const 2)))))
    (i32.const 0)))"#;

    #[tokio::test]
    async fn configuration_and_status_answer_as_envoy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.wasm"), wat::parse_str(FILTER).unwrap()).unwrap();
        let shared = Shared::with_env(false, |_| None);
        let cx = BuildCtx {
            shared: &shared,
            base_dir: dir.path(),
            route: Some("r"),
        };
        let settings = serde_json::json!({ "module": "f.wasm", "configuration": {"a": 1} });
        let p = Wasm::build(crate::parse_settings(&settings).unwrap(), &cx).unwrap();
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        let info = RequestInfo::new("r", "/");
        let mut ctx = PluginCtx::default();
        let flow = p
            .on_request(&mut RequestCall::new(&mut req, info, &mut ctx))
            .await
            .unwrap();
        assert!(matches!(flow, Flow::Continue));
        assert_eq!(req.headers["x-config"], r#"{"a":1}"#);
        assert_eq!(req.headers["x-status"], "ok");
        p.on_log(200, &mut ctx);
    }
}
