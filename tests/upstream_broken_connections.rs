//! Retries of connections that break before the answer, through a real gateway: a
//! target that resets fresh or reused connections without a byte of response.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

/// A target that answers the first `answer_first` requests of each connection, then
/// resets the connection (RST: `SO_LINGER` 0) when the next request arrives, without a
/// byte of response: a connection that breaks before the answer, as when a target dies.
fn resetting_upstream(answer_first: usize) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                let mut answered = 0;
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    seen.extend_from_slice(&buf[..n]);
                    if !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    if answered >= answer_first {
                        // reset without a byte of response
                        let _ =
                            socket2::SockRef::from(&s).set_linger(Some(std::time::Duration::ZERO));
                        return;
                    }
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Upstream: dropper\r\n\r\nok",
                    );
                    answered += 1;
                    seen.clear();
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_connection_that_breaks_before_the_answer_is_retried_for_get() {
    connection_broken_before_the_answer(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_connection_that_breaks_before_the_answer_is_retried_for_get() {
    connection_broken_before_the_answer(0).await;
}

async fn connection_broken_before_the_answer(answer_first: usize) {
    let good = Echo::start("good").await;
    let dropper = resetting_upstream(answer_first);
    let gw = Gateway::start(&format!(
        "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{dropper}\" }}, {{ addr: \"{}\" }}]\n    retry: {{ attempts: 3, backoff: 1ms, on: [connect_failure, 502, 503, 504] }}\nroutes:\n  - {{ name: r, match: {{ path_prefix: / }}, upstream: u }}\n",
        good.addr
    ));
    let c = reqwest::Client::new();
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..200 {
        match c.get(gw.url("/x")).send().await {
            Ok(r) if r.status() == 200 => ok += 1,
            _ => failed += 1,
        }
    }
    assert_eq!(failed, 0, "{ok} ok");
    // POST is not idempotent: the same break is not retried without the route's opt-in
    let mut post_failed = 0;
    for _ in 0..50 {
        let status = c
            .post(gw.url("/x"))
            .body("x")
            .send()
            .await
            .map(|r| r.status());
        if !matches!(status, Ok(s) if s == 200) {
            post_failed += 1;
        }
    }
    assert!(post_failed > 0, "POST was replayed on a broken connection");
}
