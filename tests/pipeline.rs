//! The synchronous pipeline (`POST /api/v1/process`): generation then enrichment
//! through the real backends; a failed step answers 502 naming the step; the route's
//! timeout answers 504; the body limit holds.
#![allow(clippy::unwrap_used)]

mod backends;
mod common;

use common::{failing_upstream, free_port, Echo, Gateway};
use serde_json::{json, Value};
use std::time::Duration;

fn table(gen: &str, enr: &str, failing: &str, slow: &str, down: &str, echo: &str) -> String {
    format!(
        r#"version: 1
upstreams:
  generation: {{ targets: [{{ addr: "{gen}" }}] }}
  enrichment: {{ targets: [{{ addr: "{enr}" }}] }}
  failing: {{ targets: [{{ addr: "{failing}" }}], retry: {{ attempts: 1 }} }}
  slow: {{ targets: [{{ addr: "{slow}" }}] }}
  down: {{ targets: [{{ addr: "{down}" }}], retry: {{ attempts: 2, backoff: 10ms }} }}
  echo: {{ targets: [{{ addr: "{echo}" }}] }}
routes:
  - name: process
    match: {{ path: /api/v1/process, methods: [POST] }}
    pipeline: [ {{ upstream: generation, path: /generate }}, {{ upstream: enrichment, path: /enrich }} ]
    max_body_size: 4KiB
  - name: process-failing
    match: {{ path: /failing, methods: [POST] }}
    pipeline: [ {{ upstream: generation, path: /generate }}, {{ name: enrichment, upstream: failing, path: /enrich }} ]
  - name: process-down
    match: {{ path: /down, methods: [POST] }}
    pipeline: [ {{ upstream: generation, path: /generate }}, {{ name: enrichment, upstream: down, path: /enrich }} ]
  - name: process-slow
    match: {{ path: /slow, methods: [POST] }}
    pipeline: [ {{ upstream: generation, path: /generate }}, {{ name: enrichment, upstream: slow, path: /enrich }} ]
    timeout: 300ms
  - name: process-traced
    match: {{ path: /traced, methods: [POST] }}
    pipeline: [ {{ upstream: generation, path: /generate }}, {{ upstream: echo, path: /seen }} ]
  - name: process-guarded
    match: {{ path: /guarded, methods: [POST] }}
    pipeline: [ {{ upstream: generation, path: /generate }}, {{ upstream: enrichment, path: /enrich }} ]
    plugins:
      - {{ name: ip_restriction, deny: [127.0.0.0/8] }}
      - {{ name: response_headers, set: {{ x-flow: pipeline }} }}
"#
    )
}

async fn post(gw: &Gateway, path: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = reqwest::Client::new()
        .post(gw.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_success_failure_timeout_and_limit() {
    let (gen, enr) = backends::both().await;
    let (fail_addr, _f) = failing_upstream().await;
    let slow = Echo::start_slow("slow", Duration::from_secs(3)).await;
    let down = format!("127.0.0.1:{}", free_port());
    let echo = Echo::start("echo").await;
    let gw = Gateway::start(&table(
        &gen.addr.to_string(),
        &enr.addr.to_string(),
        &fail_addr.to_string(),
        &slow.addr.to_string(),
        &down,
        &echo.addr.to_string(),
    ));
    let req = json!({"prompt": "The gateway routes requests", "max_tokens": 24, "seed": 7});

    // success: generation, then enrichment of the generated text
    let (status, body, headers) = post(&gw, "/api/v1/process", req.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-request-id"));
    let text = body["generation"]["text"].as_str().unwrap();
    assert!(!text.is_empty());
    assert_eq!(body["generation"]["seed"], 7);
    assert!(body["result"]["word_count"].as_u64().unwrap() > 0, "{body}");
    assert!(body["result"]["language"].is_string());
    let steps = body["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for (s, name) in steps.iter().zip(["generation", "enrichment"]) {
        assert_eq!(s["name"], name);
        assert_eq!(s["upstream"], name);
        assert_eq!(s["status"], 200);
        assert!(s["duration_ms"].as_f64().unwrap() >= 0.0);
    }

    // the first step refusing the client's request: its status, naming the step
    let (status, body, _) = post(&gw, "/api/v1/process", json!({"prompt": "  "})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "step_rejected");
    assert_eq!(body["step"], "generation");

    // a failing step: 502 naming it
    let (status, body, _) = post(&gw, "/failing", req.clone()).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "step_failed");
    assert_eq!(body["step"], "enrichment");
    assert_eq!(body["upstream"], "failing");
    assert_eq!(body["upstream_status"], 500);
    assert!(body["message"].as_str().unwrap().contains("enrichment"));
    assert!(body["request_id"].is_string());

    // a step that cannot be reached: 502 naming it
    let (status, body, _) = post(&gw, "/down", req.clone()).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["step"], "enrichment");
    assert_eq!(body["upstream"], "down");

    // the route's total time: 504
    let started = std::time::Instant::now();
    let (status, body, _) = post(&gw, "/slow", req.clone()).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"], "gateway_timeout");
    assert_eq!(body["step"], "enrichment");
    assert!(started.elapsed() < Duration::from_secs(3));

    // the body limit
    let big = json!({"prompt": "x".repeat(8 * 1024)});
    let (status, body, _) = post(&gw, "/api/v1/process", big).await;
    assert_eq!(status, 413, "{body}");

    // steps get the request id and the client's trace, and JSON `{"text"}` after the first
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = reqwest::Client::new()
        .post(gw.url("/traced"))
        .header("x-request-id", "flow-test-1")
        .header("traceparent", trace)
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    let seen = &body["result"];
    assert_eq!(seen["path"], "/seen");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["headers"]["x-request-id"], "flow-test-1");
    assert_eq!(seen["headers"]["content-type"], "application/json");
    let tp = seen["headers"]["traceparent"].as_str().unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    let sent = json!({"text": body["generation"]["text"]}).to_string();
    assert_eq!(seen["body_len"], sent.len());

    // the route's plugins run before the flow: refused here, nothing called
    let before = gen.counter("generation_requests_total").await;
    let (status, _, headers) = post(&gw, "/guarded", req.clone()).await;
    assert_eq!(status, 403);
    assert_eq!(headers.get("x-flow").unwrap(), "pipeline");
    assert_eq!(gen.counter("generation_requests_total").await, before);

    // failures are counted for the route and the step's upstream
    let failed = gw
        .metric("gateway_route_errors_total{backend=\"failing\",error_type=\"upstream_status\",route=\"process-failing\"}")
        .await;
    assert_eq!(failed, Some(1.0));

    // the gateway still serves after all that
    let (status, _, _) = post(&gw, "/api/v1/process", req).await;
    assert_eq!(status, 200);
}
