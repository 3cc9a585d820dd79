//! The access log line: the seed's fields plus route, upstream target, attempts and
//! bytes; no query strings (they may carry credentials); sampling of successes.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

fn lines(gw: &Gateway) -> Vec<serde_json::Value> {
    gw.logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .collect()
}

fn table(addr: std::net::SocketAddr) -> String {
    format!("version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n  - {{ name: echo, match: {{ path_prefix: /e }}, upstream: u }}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_has_the_fields_and_no_query() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&table(up.addr));
    let c = reqwest::Client::new();
    let r = c
        .post(gw.url("/e/x?api_key=very-secret-key"))
        .header("x-request-id", "req-123")
        .header("authorization", "Bearer very-secret-token")
        .body("0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let l = lines(&gw);
    let line = l.iter().find(|v| v["correlation_id"] == "req-123").unwrap();
    for field in [
        "timestamp",
        "level",
        "service",
        "trace_id",
        "span_id",
        "operation",
        "duration_ms",
        "status_code",
        "method",
        "path",
        "user_id",
        "correlation_id",
        "message",
    ] {
        assert!(line.get(field).is_some(), "missing {field}: {line}");
    }
    assert_eq!(line["path"], "/e/x");
    assert_eq!(line["route"], "echo");
    assert_eq!(line["upstream"], up.addr.to_string());
    assert_eq!(line["attempts"], 1);
    assert_eq!(line["bytes_in"], 10);
    assert_eq!(line["bytes_out"].as_u64().unwrap(), body.len() as u64);
    let all = gw.logs();
    assert!(!all.contains("very-secret"), "a credential reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_keeps_every_failure() {
    let up = Echo::start("u").await;
    let gw = Gateway::start_with(&table(up.addr), &[("ACCESS_LOG_SAMPLE", "0")]);
    for _ in 0..5 {
        assert_eq!(reqwest::get(gw.url("/e/ok")).await.unwrap().status(), 200);
    }
    assert_eq!(reqwest::get(gw.url("/nope")).await.unwrap().status(), 404);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let l = lines(&gw);
    assert!(l.iter().all(|v| v["status_code"] != 200), "{l:?}");
    assert!(l.iter().any(|v| v["status_code"] == 404), "{l:?}");
}
