//! Active health checks: an HTTP/1.1 `GET` (healthy when the status is in
//! `expected_statuses`, default any 2xx) or a bare TCP connect, every `interval` plus a
//! random `jitter`, each bounded by `timeout`. A target turns unhealthy after
//! `unhealthy_threshold` failures in a row and healthy after `healthy_threshold`
//! successes in a row; a target never checked before starts unhealthy and one success
//! is enough. One prober runs per (address, check settings, Host, TLS) however many
//! pools share it; the background task of the [`Registry`] starts and stops probers as
//! pools come and go.
//!
//! Pools with `tls: true` are probed with a TCP connect only (no TLS client here).
//!
//! [`Registry`]: super::Registry

use super::target::TargetState;
use crate::config::{HealthCheckConfig, HealthCheckKind};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What identifies one prober.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    pub addr: SocketAddr,
    pub check: HealthCheckConfig,
    /// `Host` header: the check's `host`, else the pool's `host`, else the address.
    pub host: String,
    pub tls: bool,
}

impl ProbeKey {
    pub fn new(
        addr: SocketAddr,
        check: &HealthCheckConfig,
        pool_host: Option<&str>,
        tls: bool,
    ) -> Self {
        let host = check
            .host
            .clone()
            .or_else(|| pool_host.map(str::to_string))
            .unwrap_or_else(|| addr.to_string());
        Self {
            addr,
            check: check.clone(),
            host,
            tls,
        }
    }
}

/// Why a probe found a target unhealthy.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("timeout after {0:?}")]
    Timeout(Duration),
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("write failed: {0}")]
    Write(#[source] std::io::Error),
    #[error("read failed: {0}")]
    Read(#[source] std::io::Error),
    /// The answer's first line, escaped.
    #[error("bad status line `{0}`")]
    BadStatusLine(String),
    #[error("unexpected status {0}")]
    UnexpectedStatus(u16),
}

/// One probe: `Ok(detail)` when healthy, `Err(reason)` otherwise.
pub async fn probe(key: &ProbeKey) -> Result<String, ProbeError> {
    let timeout = key.check.timeout.get().max(Duration::from_millis(1));
    match tokio::time::timeout(timeout, probe_inner(key)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

async fn probe_inner(key: &ProbeKey) -> Result<String, ProbeError> {
    let mut s = TcpStream::connect(key.addr)
        .await
        .map_err(ProbeError::Connect)?;
    if key.check.kind == HealthCheckKind::Tcp || key.tls {
        return Ok("tcp connect".into());
    }
    let path = if key.check.path.starts_with('/') {
        key.check.path.clone()
    } else {
        format!("/{}", key.check.path)
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: api-gateway-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        key.host
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(ProbeError::Write)?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 4096 {
        let n = s.read(&mut chunk).await.map_err(ProbeError::Read)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    let status = parse_status(line)
        .ok_or_else(|| ProbeError::BadStatusLine(line.escape_default().to_string()))?;
    let ok = if key.check.expected_statuses.is_empty() {
        (200..300).contains(&status)
    } else {
        key.check.expected_statuses.contains(&status)
    };
    if ok {
        Ok(format!("status {status}"))
    } else {
        Err(ProbeError::UnexpectedStatus(status))
    }
}

fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Probes `state` for ever (the background task aborts it): first probe at once, then
/// every `interval` + up to `jitter`.
pub(crate) async fn prober(key: ProbeKey, state: Arc<TargetState>, pool: String) {
    loop {
        let res = probe(&key).await;
        let reason = res.as_ref().err().map(ToString::to_string);
        match state.record_probe(res, &key.check) {
            Some(true) => tracing::info!(upstream = %pool, target = %key.addr, "target healthy"),
            Some(false) => tracing::warn!(upstream = %pool, target = %key.addr,
                reason = reason.as_deref().unwrap_or(""), "target unhealthy"),
            None => {
                if let Some(r) = reason {
                    tracing::debug!(upstream = %pool, target = %key.addr, reason = %r, "health probe failed");
                }
            }
        }
        let jitter = key.check.jitter.get();
        let extra = if jitter.is_zero() {
            Duration::ZERO
        } else {
            jitter.mul_f64(rand::rng().random::<f64>())
        };
        let interval = key.check.interval.get().max(Duration::from_millis(10));
        tokio::time::sleep(interval + extra).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::registry::tests::{cfg, hc};
    use crate::upstream::Registry;
    use std::sync::atomic::{AtomicU16, Ordering};
    use tokio::net::TcpListener;

    /// An HTTP server answering every request with the status in `status` (0 = close
    /// without answering).
    async fn server(status: Arc<AtomicU16>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let status = status.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let code = status.load(Ordering::Relaxed);
                    if code != 0 {
                        let r = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n");
                        let _ = s.write_all(r.as_bytes()).await;
                    }
                });
            }
        });
        addr
    }

    async fn wait_for(what: impl Fn() -> bool) -> bool {
        crate::upstream::eventually(Duration::from_secs(2), what).await
    }

    #[tokio::test]
    async fn probe_kinds() {
        let status = Arc::new(AtomicU16::new(204));
        let addr = server(status.clone()).await;
        let mut c = hc(50, 1, 1);
        let key = ProbeKey::new(addr, &c, None, false);
        assert_eq!(probe(&key).await.ok(), Some("status 204".into()));
        status.store(503, Ordering::Relaxed);
        let e = probe(&key).await;
        assert!(matches!(e, Err(ProbeError::UnexpectedStatus(503))), "{e:?}");
        assert_eq!(
            e.err().map(|e| e.to_string()).as_deref(),
            Some("unexpected status 503")
        );
        c.expected_statuses = vec![503];
        assert!(probe(&ProbeKey::new(addr, &c, None, false)).await.is_ok());
        status.store(0, Ordering::Relaxed);
        assert!(probe(&key).await.is_err());
        c.kind = HealthCheckKind::Tcp;
        assert!(probe(&ProbeKey::new(addr, &c, None, false)).await.is_ok());
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gone = closed.local_addr().expect("addr");
        drop(closed);
        assert!(probe(&ProbeKey::new(gone, &c, None, false)).await.is_err());
    }

    #[tokio::test]
    async fn transitions_with_thresholds_through_the_background_task() {
        let status = Arc::new(AtomicU16::new(200));
        let addr = server(status.clone()).await;
        let reg = Registry::new();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let bg = reg.spawn_background(rx);
        let mut c = cfg(&[&addr.to_string()]);
        c.health_check = Some(hc(30, 2, 3));
        let pool = reg.build_pool("svc", &c).expect("pool");
        assert!(
            !pool.has_available_target(),
            "unprobed target gets no traffic"
        );
        assert!(
            wait_for(|| pool.has_available_target()).await,
            "first success is enough"
        );
        status.store(500, Ordering::Relaxed);
        assert!(wait_for(|| !pool.has_available_target()).await);
        let h = pool.targets()[0].state.health_record();
        assert!(h.consecutive_failures >= 3, "{h:?}");
        status.store(200, Ordering::Relaxed);
        assert!(wait_for(|| pool.has_available_target()).await);
        assert!(pool.targets()[0].state.health_record().consecutive_ok >= 2);
        let snap = pool.snapshot();
        assert!(snap["targets"][0]["last_check"]["result"]
            .as_str()
            .is_some_and(|r| r.starts_with("ok")));

        // a reload that drops the health check: the target counts as healthy again
        status.store(500, Ordering::Relaxed);
        assert!(wait_for(|| !pool.has_available_target()).await);
        let plain = reg
            .build_pool("svc", &cfg(&[&addr.to_string()]))
            .expect("pool");
        drop(pool);
        reg.changed.notify_one();
        assert!(wait_for(|| plain.has_available_target()).await);
        tx.send(true).expect("send");
        tokio::time::timeout(Duration::from_secs(2), bg)
            .await
            .expect("stops on shutdown")
            .expect("join");
    }
}
