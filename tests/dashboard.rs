//! The admin dashboard in a real browser (Debian's headless Chromium) against a running
//! gateway: live values appear, and a screenshot is saved under the test's output
//! (`target/tmp/dashboard.png`). Also the admin endpoints it reads.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

/// An admin endpoint's JSON, with the admin token.
async fn admin_json(gw: &Gateway, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(gw.metrics_url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn headless(args: &[&str]) -> String {
    common::browser::headless("1280,900", 6000, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_values_in_a_browser() {
    let up = Echo::start("u").await;
    let gw = Gateway::start_with(
        &format!(
            "version: 1\nupstreams:\n  echo: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - {{ name: api-v1, match: {{ path_prefix: /api/v1 }}, upstream: echo }}\n",
            up.addr
        ),
        &[("SERIES_INTERVAL_MS", "200")],
    );
    for _ in 0..17 {
        assert_eq!(
            reqwest::get(gw.url("/api/v1/x")).await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        reqwest::get(gw.url("/nowhere")).await.unwrap().status(),
        404
    );

    // the data behind it: token required, then the summary
    let c = reqwest::Client::new();
    let r = c
        .get(gw.metrics_url("/admin/summary"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let s = admin_json(&gw, "/admin/summary").await;
    let route = s["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "api-v1")
        .unwrap();
    assert_eq!(route["requests"], 17);
    assert!(route["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(s["reload"]["result"], "success");
    assert_eq!(s["blocked"]["no_route"], 1);

    // the charts' series: points of 200 ms, one of which saw the route's requests
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let series = admin_json(&gw, "/admin/series").await;
    assert_eq!(series["interval_ms"], 200);
    let points = series["points"].as_array().unwrap();
    let busy = points
        .iter()
        .filter_map(|p| p["routes"]["api-v1"]["rps"].as_f64())
        .fold(0.0, f64::max);
    assert!(busy > 0.0, "{series}");
    assert!(
        points
            .iter()
            .any(|p| p["upstreams"]["echo"]["p50_ms"].as_f64().is_some()),
        "{series}"
    );

    let url = gw.metrics_url(&format!("/dashboard#token={ADMIN_TOKEN}"));
    let dom = headless(&["--dump-dom", &url]);
    assert!(
        dom.contains(r#"<span id="live" class="pill ok">live</span>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-route="api-v1"><td>api-v1</td><td data-field="requests">17</td>"#),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(r#"data-target="{}""#, up.addr)),
        "{dom}"
    );
    assert!(dom.contains("healthy"), "{dom}");
    // the pool line: nothing in flight or in use now, idle connections observed
    assert!(
        dom.contains(r#"<span data-field="in-flight">0</span>"#)
            && dom.contains(r#"<span data-field="in-use">0</span>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<span data-field="idle">"#)
            && !dom.contains(r#"<span data-field="idle">–</span>"#),
        "{dom}"
    );
    assert!(dom.contains(r#"<td data-key="no_route">1</td>"#), "{dom}");

    // a wrong token shows the login form, not data
    let bad = gw.metrics_url("/dashboard#token=wrong");
    let dom = headless(&["--dump-dom", &bad]);
    assert!(dom.contains("a valid bearer token is required"), "{dom}");
    assert!(dom.contains(r#"<div id="app" hidden="">"#), "{dom}");
    assert!(!dom.contains(r#"data-field="requests">"#), "{dom}");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    headless(&[&format!("--screenshot={}", shot.display()), &url]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        shot.display()
    );
    println!("dashboard screenshot: {}", shot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_config_redacts_secrets() {
    let gw = Gateway::start(
        "version: 1\nupstreams:\n  u: { targets: [{ addr: \"127.0.0.1:9\" }] }\nroutes:\n  - { name: r, match: { path_prefix: /r }, upstream: u, plugins: [{ name: request_headers, set: { x-api-token: \"inline-value\" } }] }\n",
    );
    let v = admin_json(&gw, "/admin/config").await;
    assert_eq!(v["routes"][0]["name"], "r");
    // process metrics beside the gateway's own
    assert!(gw.metric("process_resident_memory_bytes").await.unwrap() > 0.0);
    assert!(gw.metric("process_open_fds").await.unwrap() > 0.0);
    let text = v.to_string();
    assert!(!text.contains("inline-value"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}
