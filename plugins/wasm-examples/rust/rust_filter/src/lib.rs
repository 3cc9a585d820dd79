//! rust_filter: a proxy-wasm filter built with the Rust SDK (the `proxy-wasm` crate of
//! crates.io), compiled to wasm32-wasip1 by plugins/wasm-examples/build-rust.sh. It runs
//! unchanged in Envoy; it does what the Go and C++ example filters do, so that
//! tests/wasm_sdk_go_cpp.rs checks the three SDKs alike.
//!
//! Request: a request with `x-rust-deny` gets a local 403 (the upstream never sees it);
//! one with `x-rust-panic` panics (the SDK's panic hook logs the message at critical
//! level, then the module traps; the gateway answers 503 and starts a fresh instance).
//! Otherwise the upstream sees `x-rust-request: 1`, the plugin configuration in
//! `x-rust-config`, `x-rust-replace` replaced by `replaced` and `x-rust-remove` removed.
//! A request with `x-rust-call: <token>` waits for an HTTP call to the `auth` pool
//! (`GET /check`, `authorization: Bearer <token>`): a 200 adds its `x-user` answer header
//! upstream as `x-rust-user`, anything else is a local 403. A request with
//! `x-rust-grpc: <word>` waits for a unary gRPC call to the `grpc` pool
//! (`check.Checker/Check`, the word as the message, `x-from: rust_filter` as metadata):
//! an answer `allow` goes on with `x-rust-grpc-answer: allow` upstream, another answer
//! is a local 403 with it in `x-rust-grpc-answer`, and a failed call (a gRPC status
//! other than OK) a local 503 with `x-rust-grpc-status` and `x-rust-grpc-message`.
//! With `x-rust-grpc-cancel` too, it makes a second call (`deny`) and cancels it at
//! once: only the first call's answer comes back.
//!
//! Response: `x-rust-response: 1`, and what the filter read: the `request.path`,
//! `source.address`, `source.port`, `plugin_root_id`, `route_name` and `response.code`
//! properties, and `x-rust-hits`, a count kept in shared data (compare-and-swap) across
//! every instance. Every request also increments the counter metric
//! `rust_filter_requests` and writes a log line.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(FilterRoot { config: String::new(), requests: 0 })
    });
}}

struct FilterRoot {
    config: String,
    requests: u32,
}

impl Context for FilterRoot {}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Some(c) = self.get_plugin_configuration() {
            self.config = String::from_utf8_lossy(&c).into_owned();
        }
        match hostcalls::define_metric(MetricType::Counter, "rust_filter_requests") {
            Ok(id) => {
                self.requests = id;
                true
            }
            Err(e) => {
                log::error!("cannot define the metric rust_filter_requests: {e:?}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            config: self.config.clone(),
            requests: self.requests,
            path: String::new(),
            source: String::new(),
            hits: 0,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    config: String,
    requests: u32,
    path: String,
    source: String,
    hits: u64,
}

impl Filter {
    /// A string property ("" when the host has none).
    fn property(&self, path: Vec<&str>) -> String {
        self.get_property(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// An integer property (Envoy's 8 bytes, little-endian).
    fn int_property(&self, path: Vec<&str>) -> Option<i64> {
        let b = self.get_property(path)?;
        Some(i64::from_le_bytes(b.get(..8)?.try_into().ok()?))
    }

    fn deny(&self, reason: &str) {
        self.send_http_response(
            403,
            vec![("x-rust-local", "1"), ("content-type", "text/plain")],
            Some(reason.as_bytes()),
        );
    }

    /// Adds one to the shared counter and returns the new count (0 when it cannot).
    fn count_hit(&self) -> u64 {
        const KEY: &str = "rust_filter.hits";
        for _ in 0..16 {
            let (data, cas) = self.get_shared_data(KEY);
            let n = data
                .and_then(|d| Some(u64::from_le_bytes(d.get(..8)?.try_into().ok()?)))
                .unwrap_or(0)
                + 1;
            match self.set_shared_data(KEY, Some(&n.to_le_bytes()), cas) {
                Ok(()) => return n,
                Err(Status::CasMismatch) => continue,
                Err(_) => return 0,
            }
        }
        0
    }
}

impl Context for Filter {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_default();
        if status != "200" {
            self.deny(&format!("auth refused ({status})"));
            return;
        }
        let user = self
            .get_http_call_response_header("x-user")
            .unwrap_or_default();
        self.add_http_request_header("x-rust-user", &user);
        self.resume_http_request();
    }

    fn on_grpc_call_response(&mut self, _token: u32, status: u32, size: usize) {
        if status != 0 {
            let (code, message) = self.get_grpc_status();
            self.send_http_response(
                503,
                vec![
                    ("x-rust-grpc-status", code.to_string().as_str()),
                    ("x-rust-grpc-message", message.unwrap_or_default().as_str()),
                ],
                None,
            );
            return;
        }
        let body = self
            .get_grpc_call_response_body(0, size)
            .unwrap_or_default();
        let answer = String::from_utf8_lossy(&body);
        if answer == "allow" {
            self.add_http_request_header("x-rust-grpc-answer", "allow");
            self.resume_http_request();
            return;
        }
        self.send_http_response(403, vec![("x-rust-grpc-answer", &answer)], None);
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let _ = hostcalls::increment_metric(self.requests, 1);
        if self.get_http_request_header("x-rust-panic").is_some() {
            panic!("rust filter panics as asked");
        }
        if self.get_http_request_header("x-rust-deny").is_some() {
            self.deny("denied by the rust filter");
            return Action::Pause;
        }
        self.path = self.property(vec!["request", "path"]);
        self.source = self.property(vec!["source", "address"]);
        self.hits = self.count_hit();
        log::info!(
            "rust filter: {} {} from {}",
            self.property(vec!["request", "method"]),
            self.path,
            self.source
        );
        self.add_http_request_header("x-rust-request", "1");
        if !self.config.is_empty() {
            self.add_http_request_header("x-rust-config", &self.config);
        }
        if self.get_http_request_header("x-rust-replace").is_some() {
            self.set_http_request_header("x-rust-replace", Some("replaced"));
        }
        self.set_http_request_header("x-rust-remove", None);
        if let Some(word) = self.get_http_request_header("x-rust-grpc") {
            let metadata = vec![("x-from", b"rust_filter".as_slice())];
            let message = Some(word.as_bytes());
            let timeout = Duration::from_secs(2);
            let sent = self.dispatch_grpc_call(
                "grpc",
                "check.Checker",
                "Check",
                metadata,
                message,
                timeout,
            );
            if sent.is_ok() && self.get_http_request_header("x-rust-grpc-cancel").is_some() {
                // a second call, cancelled at once: only the first one's answer comes
                let second = self.dispatch_grpc_call(
                    "grpc",
                    "check.Checker",
                    "Check",
                    vec![],
                    Some(b"deny".as_slice()),
                    timeout,
                );
                if let Ok(token) = second {
                    self.cancel_grpc_call(token);
                }
            }
            return match sent {
                Ok(_) => Action::Pause,
                Err(_) => {
                    self.deny("grpc call failed");
                    Action::Pause
                }
            };
        }
        let Some(token) = self.get_http_request_header("x-rust-call") else {
            return Action::Continue;
        };
        let authorization = format!("Bearer {token}");
        let headers = vec![
            (":method", "GET"),
            (":path", "/check"),
            (":authority", "auth"),
            ("authorization", authorization.as_str()),
        ];
        match self.dispatch_http_call("auth", headers, None, vec![], Duration::from_secs(2)) {
            Ok(_) => Action::Pause,
            Err(_) => {
                self.deny("auth call failed");
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-rust-response", "1");
        self.add_http_response_header("x-rust-path", &self.path);
        self.add_http_response_header("x-rust-source", &self.source);
        let root = self.property(vec!["plugin_root_id"]);
        self.add_http_response_header("x-rust-root", &root);
        let route = self.property(vec!["route_name"]);
        self.add_http_response_header("x-rust-route", &route);
        self.add_http_response_header("x-rust-hits", &self.hits.to_string());
        if let Some(port) = self.int_property(vec!["source", "port"]) {
            self.add_http_response_header("x-rust-source-port", &port.to_string());
        }
        if let Some(status) = self.int_property(vec!["response", "code"]) {
            self.add_http_response_header("x-rust-status", &status.to_string());
        }
        Action::Continue
    }
}
