//! Test harness: real gateway processes on free loopback ports, and real upstream
//! HTTP servers (axum) that echo what they received.
#![allow(dead_code, clippy::unwrap_used)]

pub mod browser;
pub mod jobs;
pub mod killable;
pub mod listen;
pub mod load;
pub mod pki;
pub mod redis;
pub mod requests;

// re-exported for `use common::*`; a test binary that uses neither is not warned
#[allow(unused_imports)]
pub use killable::KillableEcho;
#[allow(unused_imports)]
pub use load::{Load, Tally};
#[allow(unused_imports)]
pub use requests::{get_json, header_value, json_of, post_json};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released: another test may take it before
/// the process it is meant for binds it; [`Gateway::spawn`] and the Redis launcher
/// start again on fresh ports when that happens).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port on 127.0.0.1 that refuses connections for as long as the returned socket
/// lives: the socket holds the port (bound, never listening), so no other process can
/// take it, where a port from [`free_port`] may be given to another listener (such as a
/// gateway's own, which then answers in place of the "dead" target).
pub fn closed_port() -> (SocketAddr, socket2::Socket) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    s.bind(&any.into()).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (addr, s)
}

/// An upstream that answers every request with JSON describing it: its own name, the
/// method, path and query it saw, the headers, and how many body bytes it read
/// (streamed, never held in memory).
pub struct Echo {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The echo app: answers every request after `delay`.
pub fn echo_app(name: &str, delay: Duration) -> axum::Router {
    let name = name.to_string();
    axum::Router::new().fallback(move |req: Request| echo_after(name.clone(), delay, req))
}

async fn echo_after(name: String, delay: Duration, req: Request) -> Response {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (parts, body) = req.into_parts();
    let mut len = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => len += c.len(),
            Err(_) => break,
        }
    }
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                serde_json::Value::String(v.to_str().unwrap_or("").to_string()),
            )
        })
        .collect();
    let status = parts
        .headers
        .get("x-echo-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok())
        .unwrap_or(200);
    let body = serde_json::json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""),
        "headers": headers,
        "body_len": len,
    });
    let mut resp = (
        axum::http::StatusCode::from_u16(status).unwrap(),
        axum::Json(body),
    )
        .into_response();
    resp.headers_mut()
        .insert("x-upstream", name.parse().unwrap());
    resp
}

impl Echo {
    pub async fn start(name: &str) -> Echo {
        Self::start_slow(name, Duration::ZERO).await
    }

    /// An echo upstream that waits `delay` before answering each request.
    pub async fn start_slow(name: &str, delay: Duration) -> Echo {
        let (addr, task) = serve_app(echo_app(name, delay)).await;
        Echo { addr, task }
    }
}

/// An upstream that answers 500 `{"error":"boom"}` to everything.
pub async fn failing_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    serve_app(axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"error": "boom"})),
        )
    }))
    .await
}

/// Serves `app` on a free loopback port (bound here, so no other test can take it):
/// its address, and the task (the server stops when the test's runtime does).
pub async fn serve_app(app: axum::Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// A keys file (`keys_file:` of `api_key`): one consumer per (name, key), with the
/// key's SHA-256 as `key_sha256`.
pub fn keys_file(consumers: &[(&str, &str)]) -> String {
    use sha2::Digest;
    let mut text = String::from("consumers:\n");
    for (name, key) in consumers {
        let sha = hex::encode(sha2::Sha256::digest(key.as_bytes()));
        text.push_str(&format!("  - {{ name: {name}, key_sha256: \"{sha}\" }}\n"));
    }
    text
}

/// A running `api-gateway` process, killed on drop.
pub struct Gateway {
    pub child: Child,
    pub port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
}

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Starts of [`Gateway::spawn`] in all when its ports are taken before it binds them.
pub const GATEWAY_TRIES: usize = 3;

/// Another process listens on a port picked for the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortTaken {
    /// `PORT` or `METRICS_PORT`.
    pub var: &'static str,
    pub port: u16,
}

impl std::fmt::Display for PortTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={} was taken by another process before the gateway bound it",
            self.var, self.port
        )
    }
}

pub fn gateway_bin() -> &'static str {
    env!("CARGO_BIN_EXE_api-gateway")
}

impl Gateway {
    /// Starts a gateway on `routes` (YAML text) and waits until it answers `/health`.
    pub fn start(routes: &str) -> Gateway {
        Self::start_with(routes, &[])
    }

    pub fn start_with(routes: &str, env: &[(&str, &str)]) -> Gateway {
        Self::start_with_files(routes, &[], env)
    }

    /// Starts a gateway on `routes` with `files` (name, content) written beside its
    /// `routes.yaml` first (keys files, certificates, wasm modules), and `env`.
    pub fn start_with_files(
        routes: &str,
        files: &[(&str, &[u8])],
        env: &[(&str, &str)],
    ) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let config = dir.path().join("routes.yaml");
        std::fs::write(&config, routes).unwrap();
        Self::spawn(dir, config, env)
    }

    /// Starts a gateway whose config path already exists inside `dir`. A port taken by
    /// another process before the gateway bound it (the race of [`free_port`]) starts
    /// it again on fresh ports, [`GATEWAY_TRIES`] times in all, unless `env` sets
    /// `PORT` or `METRICS_PORT` itself.
    pub fn spawn(dir: tempfile::TempDir, config: PathBuf, env: &[(&str, &str)]) -> Gateway {
        let fixed = |var: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| *k == var)
                .and_then(|(_, v)| v.parse::<u16>().ok())
        };
        let fixed_ports = fixed("PORT").is_some() || fixed("METRICS_PORT").is_some();
        let log = dir.path().join("gateway.log");
        let port = fixed("PORT").unwrap_or_else(free_port);
        let metrics_port = fixed("METRICS_PORT").unwrap_or_else(free_port);
        let child = Self::launch(&config, &log, port, metrics_port, env);
        let mut gw = Gateway {
            child,
            port,
            metrics_port,
            dir,
            config,
            log,
        };
        for attempt in 1..=GATEWAY_TRIES {
            match gw.wait_healthy() {
                Ok(()) => return gw,
                Err(taken) if attempt < GATEWAY_TRIES && !fixed_ports => {
                    eprintln!("NOTICE: {taken}; starting the gateway again on other ports");
                    let _ = gw.child.kill();
                    let _ = gw.child.wait();
                    (gw.port, gw.metrics_port) = (free_port(), free_port());
                    gw.child = Self::launch(&gw.config, &gw.log, gw.port, gw.metrics_port, env);
                }
                Err(taken) if fixed_ports => panic!("{taken} (a port the test set: no retry)"),
                Err(taken) => panic!("{taken} ({GATEWAY_TRIES} starts, each on fresh ports)"),
            }
        }
        unreachable!("the last try returns or panics")
    }

    fn launch(
        config: &Path,
        log: &Path,
        port: u16,
        metrics_port: u16,
        env: &[(&str, &str)],
    ) -> Child {
        let mut cmd = Command::new(gateway_bin());
        cmd.arg("--config")
            .arg(config)
            .env("PORT", port.to_string())
            .env("METRICS_PORT", metrics_port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("GATEWAY_WORKERS", "2")
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LOG_LEVEL", "info")
            .env_remove("API_GENERATION_URL")
            .env_remove("API_ENRICHMENT_URL")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    }

    /// Both listeners answer `/health`: the proxy port and the metrics port (started
    /// as separate services, so one can be up before the other), and both are this
    /// process's own sockets. `Err` when another process holds one of the ports.
    fn wait_healthy(&mut self) -> Result<(), PortTaken> {
        // generous: a gateway that compiles large wasm modules (the Go SDK's filter,
        // 2.5 MiB) on a loaded 2-core CI machine takes tens of seconds in a debug build;
        // one that exits early fails at once (below), so a healthy start waits no longer
        let deadline = Instant::now() + Duration::from_secs(120);
        let healthy = |port| {
            raw_request(
                port,
                "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
        };
        let pid = self.child.id();
        while Instant::now() < deadline {
            for (port, var) in [(self.port, "PORT"), (self.metrics_port, "METRICS_PORT")] {
                if listen::listener(pid, port) == listen::Listener::Other {
                    return Err(PortTaken { var, port });
                }
            }
            let ours = |port| listen::listener(pid, port) == listen::Listener::Ours;
            if healthy(self.port)
                && healthy(self.metrics_port)
                && ours(self.port)
                && ours(self.metrics_port)
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "gateway exited before it was healthy ({status}); log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "gateway did not become healthy; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn metrics_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.metrics_port, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The value of one metric series line (`name{labels}`) in `/metrics`, if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(self.metrics_url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends raw bytes over a fresh connection and returns the whole answer (the request
/// should say `Connection: close`). For paths a URL library would normalise itself.
pub fn raw_request(port: u16, req: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The JSON body of a raw answer.
pub fn raw_json(resp: &str) -> serde_json::Value {
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

/// The value of response header `name` of `GET url` (empty when the request fails or
/// the answer has none), for tests that tell route tables apart by a header.
pub async fn header_of(c: &reqwest::Client, url: &str, name: &str) -> String {
    match c.get(url).send().await {
        Ok(r) => r
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls `f` until it returns true or `timeout` passes; returns the time it took.
pub async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Resident memory high-water mark of a process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

pub fn body_of(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_string()
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the repository when
/// relative), else the repository's `target`. scripts/test.sh builds and installs what
/// tests need there (wasm filters, venvs).
pub fn target_dir() -> std::path::PathBuf {
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from) {
        Some(p) if p.is_absolute() => p,
        Some(p) => repo.join(p),
        None => repo.join("target"),
    }
}
