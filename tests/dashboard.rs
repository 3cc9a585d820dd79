//! The admin dashboard in a real browser (Debian's headless Chromium) against a running
//! gateway: live values and the charts of the last 15 minutes appear, and screenshots
//! are kept as the test's artifacts (`target/tmp/dashboard.png`, light, and
//! `target/tmp/dashboard-dark.png`, dark). Also the admin endpoints it reads.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

fn headless(args: &[&str]) -> String {
    common::browser::headless("1280,900", 6000, args)
}

/// The value of `attr="..."` in the first tag of `html` that has it.
fn attr<'a>(html: &'a str, attr: &str) -> Option<&'a str> {
    let at = html.find(&format!(" {attr}=\""))? + attr.len() + 3;
    html[at..].split('"').next()
}

/// A drawn chart's line for `series`: (how many points it has, its largest value), read
/// from the page's DOM (`<svg data-chart=..>` and its `<path data-series=..>`).
fn chart_line(dom: &str, chart: &str, series: &str) -> (u32, f64) {
    let start = dom
        .find(&format!(r#"data-chart="{chart}""#))
        .unwrap_or_else(|| panic!("no chart {chart} in {dom}"));
    let svg = &dom[start..start + dom[start..].find("</svg>").unwrap()];
    let line = svg
        .find(&format!(r#"data-series="{series}""#))
        .unwrap_or_else(|| panic!("no line {series} in chart {chart}: {svg}"));
    let tag = &svg[svg[..line].rfind('<').unwrap()..];
    let tag = &tag[..tag.find('>').unwrap()];
    (
        attr(tag, "data-points").unwrap().parse().unwrap(),
        attr(tag, "data-max").unwrap().parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_values_in_a_browser() {
    let up = Echo::start("u").await;
    // a key nobody sends: every request to /keyed is an auth refusal
    let keys = keys_file(&[("a", "a key nobody sends")]);
    let routes = format!(
        r#"version: 1
upstreams:
  echo: {{ targets: [{{ addr: "{}" }}] }}
routes:
  - {{ name: api-v1, match: {{ path_prefix: /api/v1 }}, upstream: echo }}
  - name: limited
    match: {{ path_prefix: /limited }}
    upstream: echo
    plugins: [{{ name: rate_limit, average: 1, burst: 2, period: 1h, key: ip }}]
  - name: keyed
    match: {{ path_prefix: /keyed }}
    upstream: echo
    plugins: [{{ name: api_key, keys_file: keys.yaml }}]
"#,
        up.addr
    );
    let gw = Gateway::start_with_files(
        &routes,
        &[("keys.yaml", keys.as_bytes())],
        &[("SERIES_INTERVAL_MS", "200")],
    );
    let c = reqwest::Client::new();
    let status = |path: &str, echo: u16| {
        let req = c
            .get(gw.url(path))
            .header("x-echo-status", echo.to_string());
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // 17 answers, 3 server errors, 2 allowed then 3 refused by the rate limit, 2 refused
    // by the key check, 1 without a route
    for _ in 0..17 {
        assert_eq!(status("/api/v1/x", 200).await, 200);
    }
    for _ in 0..3 {
        assert_eq!(status("/api/v1/x", 500).await, 500);
    }
    let limited: Vec<u16> =
        futures::future::join_all((0..5).map(|_| status("/limited", 200))).await;
    assert_eq!(
        limited.iter().filter(|s| **s == 429).count(),
        3,
        "{limited:?}"
    );
    for _ in 0..2 {
        assert_eq!(status("/keyed", 200).await, 401);
    }
    assert_eq!(status("/nowhere", 200).await, 404);

    // the data behind it: token required, then the summary
    let r = c
        .get(gw.metrics_url("/admin/summary"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let s = gw.admin_get("/admin/summary").await;
    let route = s["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "api-v1")
        .unwrap();
    assert_eq!(route["requests"], 20);
    assert_eq!(route["errors_5xx"], 3);
    assert!(route["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(s["reload"]["result"], "success");
    assert_eq!(s["blocked"]["no_route"], 1);

    // the charts' series: points of 200 ms, one of which saw the route's requests
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let series = gw.admin_get("/admin/series").await;
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
        dom.contains(r#"<tr data-route="api-v1"><td>api-v1</td><td data-field="requests">20</td>"#),
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

    // the req/s column: the route's recent rate from the series, not 0.0 right after
    // its requests
    let row = &dom[dom.find(r#"<tr data-route="api-v1">"#).unwrap()..];
    let cell = r#"<td data-field="rps">"#;
    let rps = &row[row.find(cell).unwrap() + cell.len()..];
    let rps: f64 = rps[..rps.find('<').unwrap()].parse().unwrap();
    assert!(rps > 0.0, "req/s {rps}: {row}");

    // the charts: the route's requests, errors and latency, its upstream, the refusals
    // by reason; the cache chart says it has nothing (no cache on this gateway)
    for (chart, line) in [
        ("routes.rps", "api-v1"),
        ("routes.error_pct", "api-v1"),
        ("routes.latency", "api-v1 p99"),
        ("routes.latency", "api-v1 p50"),
        ("upstreams.rps", "echo"),
        ("refused", "rate_limited"),
        ("refused", "auth"),
    ] {
        let (points, max) = chart_line(&dom, chart, line);
        assert!(
            points > 0 && max > 0.0,
            "{chart} {line}: {points} points, max {max}"
        );
    }
    let (_, quiet) = chart_line(&dom, "routes.error_pct", "limited");
    assert_eq!(quiet, 0.0, "the limited route answered no 5xx");
    assert!(dom.contains(r#"data-empty="cache_hit_ratio""#), "{dom}");
    assert!(
        dom.contains(r#"<text class="axis" x="4" y="10">req/s</text>"#),
        "{dom}"
    );

    // a wrong token shows the login form, not data
    let bad = gw.metrics_url("/dashboard#token=wrong");
    let dom = headless(&["--dump-dom", &bad]);
    assert!(dom.contains("a valid bearer token is required"), "{dom}");
    assert!(dom.contains(r#"<div id="app" hidden="">"#), "{dom}");
    assert!(!dom.contains(r#"data-field="requests">"#), "{dom}");

    // the screenshots: light (Chromium's default) and dark (prefers-color-scheme: dark)
    for (file, extra) in [
        ("dashboard.png", None),
        ("dashboard-dark.png", Some("--force-dark-mode")),
    ] {
        let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
        let _ = std::fs::remove_file(&shot);
        let arg = format!("--screenshot={}", shot.display());
        let mut args: Vec<&str> = extra.into_iter().collect();
        args.extend([arg.as_str(), url.as_str()]);
        common::browser::headless("1280,1700", 6000, &args);
        let png = std::fs::read(&shot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG"),
            "no screenshot at {}",
            shot.display()
        );
        println!("dashboard screenshot: {}", shot.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_config_redacts_secrets() {
    let gw = Gateway::start(
        "version: 1\nupstreams:\n  u: { targets: [{ addr: \"127.0.0.1:9\" }] }\nroutes:\n  - { name: r, match: { path_prefix: /r }, upstream: u, plugins: [{ name: request_headers, set: { x-api-token: \"inline-value\" } }] }\n",
    );
    let v = gw.admin_get("/admin/config").await;
    assert_eq!(v["routes"][0]["name"], "r");
    // process metrics beside the gateway's own
    assert!(gw.metric("process_resident_memory_bytes").await.unwrap() > 0.0);
    assert!(gw.metric("process_open_fds").await.unwrap() > 0.0);
    let text = v.to_string();
    assert!(!text.contains("inline-value"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}
