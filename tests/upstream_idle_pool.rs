//! The upstream keep-alive pool (vendor patch 0002: idle connections wait in a passive
//! pool, checked when taken and swept once a second), through a real gateway and a raw
//! TCP upstream that records its connections: reuse, an upstream that closes idle
//! connections, and the route's idle timeout enforced without traffic.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the upstream saw.
#[derive(Default)]
struct Seen {
    /// Connections accepted.
    accepted: AtomicUsize,
    /// Connections the gateway closed (a read returned 0 while idle).
    closed_by_gateway: AtomicUsize,
}

/// An HTTP/1.1 upstream answering `200 ok` with keep-alive; with `close_idle_after`, it
/// closes a connection that stays idle that long after an answer.
fn upstream(close_idle_after: Option<Duration>) -> (std::net::SocketAddr, Arc<Seen>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            s2.accepted.fetch_add(1, Ordering::SeqCst);
            let seen = s2.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                loop {
                    s.set_read_timeout(if head.is_empty() {
                        close_idle_after
                    } else {
                        None
                    })
                    .unwrap();
                    let n = match s.read(&mut buf) {
                        Ok(0) => {
                            seen.closed_by_gateway.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        Ok(n) => n,
                        // idle for `close_idle_after`: the upstream closes the connection
                        Err(_) => return,
                    };
                    head.extend_from_slice(&buf[..n]);
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        head.clear();
                        let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if s.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn routes(addr: std::net::SocketAddr, idle: &str) -> String {
    format!(
        "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{addr}\" }}]\n    timeouts: {{ idle: {idle} }}\nroutes:\n  - {{ name: r, match: {{ path_prefix: / }}, upstream: u }}\n"
    )
}

async fn get_ok(c: &reqwest::Client, gw: &Gateway) {
    let r = c.get(gw.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let (addr, seen) = upstream(None);
    let gw = Gateway::start(&routes(addr, "60s"));
    let c = reqwest::Client::new();
    for _ in 0..50 {
        get_ok(&c, &gw).await;
    }
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
    let (addr, seen) = upstream(Some(Duration::from_millis(100)));
    let gw = Gateway::start(&routes(addr, "60s"));
    let c = reqwest::Client::new();
    for i in 1..=5 {
        get_ok(&c, &gw).await;
        // the upstream closes the pooled connection meanwhile: the next request must not
        // fail on it, but open a new one
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(seen.accepted.load(Ordering::SeqCst), i);
    }
    // and the gateway closes its end of such a connection within about a second (the
    // sweep), without traffic: no socket of the gateway stays in CLOSE_WAIT
    let pid = gw.pid();
    let close_wait = || {
        let out = std::process::Command::new("ss")
            .args(["-tanp", "state", "close-wait"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&format!("pid={pid},")) && l.contains(&addr.to_string()))
            .count()
    };
    let gone = wait_until(Duration::from_secs(4), || async { close_wait() == 0 }).await;
    assert!(
        gone.is_some(),
        "the gateway kept CLOSE_WAIT sockets to the upstream"
    );
}

#[tokio::test]
async fn the_idle_timeout_closes_pooled_connections_without_traffic() {
    let (addr, seen) = upstream(None);
    let gw = Gateway::start(&routes(addr, "300ms"));
    let c = reqwest::Client::new();
    get_ok(&c, &gw).await;
    assert_eq!(seen.closed_by_gateway.load(Ordering::SeqCst), 0);
    // 300 ms idle timeout, swept once a second: closed within ~1.3 s, no request needed
    let closed = wait_until(Duration::from_secs(4), || async {
        seen.closed_by_gateway.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(closed.is_some(), "the idle connection was not closed");
    // the next request opens a new connection
    get_ok(&c, &gw).await;
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 2);
}
