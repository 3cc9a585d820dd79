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
        Backend::generation_paced(std::time::Duration::ZERO)
    }

    /// api-generation whose token streams send an event every `delay`
    /// (`GENERATION_TOKEN_DELAY_MS`).
    pub fn generation_paced(delay: std::time::Duration) -> Backend {
        let rt = runtime();
        let l = bind();
        let addr = l.local_addr().unwrap();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(l).unwrap();
            let cfg = api_generation::Config {
                token_delay: delay,
                ..api_generation::Config::default()
            };
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

/// api-generation and api-enrichment, both answering `/health`.
pub async fn both() -> (Backend, Backend) {
    let (gen, enr) = (Backend::generation(), Backend::enrichment());
    wait_up(&gen).await;
    wait_up(&enr).await;
    (gen, enr)
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
