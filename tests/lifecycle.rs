//! Shutdown as an orchestrator drives it: SIGTERM turns `/ready` to 503 first while the
//! listener still serves, then closes listeners; the request in flight finishes; the
//! process exits 0.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_fails_readiness_first_then_drains_in_flight_requests() {
    let up = Echo::start_slow("slow", Duration::from_millis(2500)).await;
    let mut gw = Gateway::start(&format!(
        "version: 1\nserver: {{ shutdown_delay: 1s, grace_period: 8s }}\nupstreams:\n  u: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - {{ name: slow, match: {{ path_prefix: /slow }}, upstream: u }}\n",
        up.addr
    ));
    assert_eq!(reqwest::get(gw.url("/ready")).await.unwrap().status(), 200);

    let in_flight = tokio::spawn({
        let url = gw.url("/slow");
        async move { reqwest::get(url).await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(200)).await;

    // during the delay: not ready, but still serving
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = c.get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "draining"
    );
    assert_eq!(c.get(gw.url("/health")).send().await.unwrap().status(), 200);

    // after the delay: new connections are refused
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        c.get(gw.url("/health")).send().await.is_err(),
        "the listener still accepts after the shutdown delay"
    );

    // the request that was in flight finishes normally
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    let code = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(sent.elapsed() < Duration::from_secs(15), "still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(code.success(), "exit status {code:?}; log:\n{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_without_host_is_a_400_json_error() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - {{ name: all, match: {{ path_prefix: / }}, upstream: u }}\n",
        up.addr
    ));
    let r = raw_request(gw.port, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(r.to_ascii_lowercase().contains("x-request-id:"), "{r}");
    assert_eq!(raw_json(&r)["error"], "bad_request");
    // HTTP/1.0 needs no Host
    let r = raw_request(gw.port, "GET /x HTTP/1.0\r\nUser-Agent: t\r\n\r\n").unwrap();
    assert!(
        r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"),
        "{r}"
    );
    assert_eq!(
        gw.metric("gateway_requests_blocked_total{reason=\"missing_host\"}")
            .await,
        Some(1.0)
    );
}
