//! The real api-generation and api-enrichment services (the same code as their
//! binaries) on loopback, each on its own runtime, for the flow tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;

/// A backend service on its own runtime; stopped on drop.
pub struct Backend {
    pub addr: SocketAddr,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn bind() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

impl Backend {
    pub fn generation() -> Backend {
        let rt = runtime();
        let l = bind();
        let addr = l.local_addr().unwrap();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(l).unwrap();
            let cfg = api_generation::Config::default();
            let _ = api_generation::serve(listener, cfg, std::future::pending()).await;
        });
        Backend { addr, rt: Some(rt) }
    }

    pub fn enrichment() -> Backend {
        let rt = runtime();
        let l = bind();
        let addr = l.local_addr().unwrap();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(l).unwrap();
            let cfg = api_enrichment::Config::default();
            let _ = api_enrichment::serve(listener, cfg, std::future::pending()).await;
        });
        Backend { addr, rt: Some(rt) }
    }

    /// The sum of a counter's series in the backend's `/metrics`.
    pub async fn counter(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter(|l| l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Waits until the backend answers `/health`.
pub async fn wait_up(b: &Backend) {
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("http://{}/health", b.addr)).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("backend {} did not come up", b.addr);
}

/// A `redis-server` on a free loopback port, without persistence; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: std::process::Child,
}

impl RedisServer {
    /// `None` (with a printed notice) when `redis-server` is not installed
    /// (`scripts/test.sh` installs it).
    pub fn start() -> Option<RedisServer> {
        let port = crate::common::free_port();
        let child = match std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("NOTICE: redis-server cannot start ({e}); Redis job store test skipped (scripts/test.sh installs it)");
                return None;
            }
        };
        let r = RedisServer { port, child };
        for _ in 0..200 {
            use std::io::{Read, Write};
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0) {
                    return Some(r);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("redis-server did not start on port {port}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
