//! Upstream pools through a real gateway: balancing, a target dying under load,
//! breakers, retries, and degradation when every target is down.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn upstream_of(c: &reqwest::Client, url: String) -> String {
    let r = c.get(url).send().await.unwrap();
    r.headers()
        .get("x-upstream")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smooth_weighted_round_robin_through_the_gateway() {
    let (a, b) = (Echo::start("a").await, Echo::start("b").await);
    let routes = format!(
        "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{}\", weight: 3 }}, {{ addr: \"{}\", weight: 1 }}]\nroutes:\n  - {{ name: r, match: {{ path_prefix: / }}, upstream: u }}\n",
        a.addr, b.addr
    );
    let gw = Gateway::start_with(&routes, &[("GATEWAY_WORKERS", "1")]);
    let c = reqwest::Client::new();
    let mut seq = String::new();
    for _ in 0..400 {
        seq.push_str(&upstream_of(&c, gw.url("/x")).await);
    }
    let na = seq.matches('a').count();
    assert!((294..=306).contains(&na), "a got {na} of 400: {seq}");
    assert!(!seq.contains("bb"), "b twice in a row: {seq}");
    assert!(!seq.contains("aaaa"), "a burst: {seq}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_conn_sends_most_traffic_to_the_fast_target() {
    let fast = Echo::start("fast").await;
    let slow = Echo::start_slow("slow", Duration::from_millis(50)).await;
    let routes = format!(
        "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{}\" }}, {{ addr: \"{}\" }}]\n    balance: least_conn\nroutes:\n  - {{ name: r, match: {{ path_prefix: / }}, upstream: u }}\n",
        fast.addr, slow.addr
    );
    let gw = Arc::new(Gateway::start(&routes));
    let counts = Arc::new(std::sync::Mutex::new(HashMap::<String, usize>::new()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (gw, counts) = (gw.clone(), counts.clone());
        clients.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            for _ in 0..40 {
                let up = upstream_of(&c, gw.url("/x")).await;
                *counts.lock().unwrap().entry(up).or_default() += 1;
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let counts = counts.lock().unwrap().clone();
    let (f, s) = (
        counts.get("fast").copied().unwrap_or(0),
        counts.get("slow").copied().unwrap_or(0),
    );
    println!("least_conn: fast {f}, slow {s}");
    assert_eq!(f + s, 320);
    assert!(
        f > 4 * s,
        "the fast target should take most requests: fast {f}, slow {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_keeps_keys_on_their_target() {
    let (a, b, d) = (
        Echo::start("a").await,
        Echo::start("b").await,
        Echo::start("d").await,
    );
    let routes = format!(
        "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{}\" }}, {{ addr: \"{}\" }}, {{ addr: \"{}\" }}]\n    balance: consistent_hash\n    hash_on: {{ header: x-user }}\nroutes:\n  - {{ name: r, match: {{ path_prefix: / }}, upstream: u }}\n",
        a.addr, b.addr, d.addr
    );
    let gw = Gateway::start(&routes);
    let c = reqwest::Client::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for user in 0..30 {
        let mut first = None;
        for _ in 0..5 {
            let r = c
                .get(gw.url("/x"))
                .header("x-user", format!("user-{user}"))
                .send()
                .await
                .unwrap();
            let up = r.headers()["x-upstream"].to_str().unwrap().to_string();
            assert_eq!(first.get_or_insert(up.clone()), &up, "user-{user} moved");
        }
        *seen.entry(first.unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "keys spread over every target: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_killed_under_load_costs_no_request_and_comes_back() {
    target_killed_under_load("retry: { attempts: 3, backoff: 5ms }").await;
}

/// SPEC's retry example, without `reset` in `on`: a keep-alive connection that breaks
/// before any response byte is still retried for GET (nginx's `proxy_next_upstream error`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_killed_under_load_with_specs_retry_list_costs_no_request() {
    target_killed_under_load(
        "retry: { attempts: 3, backoff: 5ms, on: [connect_failure, 502, 503, 504] }",
    )
    .await;
}

async fn target_killed_under_load(retry: &str) {
    let a = Echo::start("a").await;
    let mut b = KillableEcho::start("b", 0);
    let routes = format!(
        "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{}\" }}, {{ addr: \"{}\" }}]\n    health_check: {{ path: /health, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2 }}\n    {retry}\nroutes:\n  - {{ name: r, match: {{ path_prefix: / }}, upstream: u }}\n",
        a.addr, b.addr
    );
    let gw = Arc::new(Gateway::start(&routes));
    let healthy_b = format!(
        "gateway_upstream_target_healthy{{target=\"{}\",upstream=\"u\"}}",
        b.addr
    );
    // wait until both targets are in service
    assert!(
        wait_until(Duration::from_secs(5), || async {
            gw.metric(&healthy_b).await == Some(1.0)
        })
        .await
        .is_some(),
        "b never healthy"
    );

    let to_b = Arc::new(AtomicU64::new(0));
    let counted = to_b.clone();
    let load = Load::start_with(
        4,
        gw.url("/load"),
        |_| reqwest::Client::new(),
        move |r| {
            let ok = r.status() == 200;
            if ok && r.headers().get("x-upstream").is_some_and(|v| v == "b") {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            ok
        },
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        to_b.load(Ordering::Relaxed) > 0,
        "b took no traffic before the kill"
    );
    b.kill();
    let killed = Instant::now();
    let detected = wait_until(Duration::from_secs(5), || async {
        gw.metric(&healthy_b).await == Some(0.0)
    })
    .await;
    let detection = killed.elapsed();
    assert!(detected.is_some(), "b never marked down");
    println!("target marked down {detection:?} after the kill (interval 200ms x threshold 2)");
    assert!(
        detection < Duration::from_millis(1500),
        "detection took {detection:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // back in service after a restart
    let before = to_b.load(Ordering::Relaxed);
    b.restart();
    let back = wait_until(Duration::from_secs(5), || async {
        to_b.load(Ordering::Relaxed) > before
    })
    .await;
    assert!(
        back.is_some(),
        "b never got traffic again after its restart"
    );
    println!(
        "target back in service {:?} after its restart",
        back.unwrap()
    );
    let Tally { ok, failed } = load.stop().await;
    println!("target killed under load: {ok} requests ok, {failed} failed");
    assert!(ok > 200);
    assert_eq!(failed, 0, "client errors while a target died");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_after_n_failures_half_opens_and_closes() {
    let a = Echo::start("a").await;
    let routes = format!(
        "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{}\" }}]\n    circuit_breaker: {{ failure_threshold: 3, open_for: 600ms }}\nroutes:\n  - {{ name: r, match: {{ path_prefix: / }}, upstream: u }}\n",
        a.addr
    );
    let gw = Gateway::start(&routes);
    let c = reqwest::Client::new();
    for i in 0..3 {
        let r = c
            .get(gw.url("/x"))
            .header("x-echo-status", "500")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500, "failure {i} is passed through");
        assert!(r.headers().contains_key("x-upstream"));
    }
    // open: the gateway answers without asking the target
    let r = c.get(gw.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("x-upstream").is_none());
    let ra: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1).contains(&ra), "Retry-After {ra}");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "service_unavailable"
    );
    let state = format!(
        "gateway_circuit_breaker_state{{target=\"{}\",upstream=\"u\"}}",
        a.addr
    );
    assert_eq!(gw.metric(&state).await, Some(1.0));
    // after open_for: a probe goes through, succeeds, and the breaker closes
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = c.get(gw.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(gw.metric(&state).await, Some(0.0));
    // a failed probe opens it again
    for _ in 0..3 {
        c.get(gw.url("/x"))
            .header("x-echo-status", "502")
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = c
        .get(gw.url("/x"))
        .header("x-echo-status", "503")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        r.headers().contains_key("x-upstream"),
        "the half-open probe reached the target"
    );
    let r = c.get(gw.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        r.headers().get("x-upstream").is_none(),
        "open again after the failed probe"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_not_retried_on_503_unless_the_route_opts_in() {
    let (a, b) = (Echo::start("a").await, Echo::start("b").await);
    let routes = format!(
        "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{}\" }}, {{ addr: \"{}\" }}]\n    retry: {{ attempts: 2, backoff: 1ms, on: [connect_failure, 503] }}\nroutes:\n  - {{ name: plain, match: {{ path_prefix: /plain }}, upstream: u }}\n  - {{ name: optin, match: {{ path_prefix: /optin }}, upstream: u, retry_non_idempotent: true }}\n",
        a.addr, b.addr
    );
    let gw = Gateway::start(&routes);
    let c = reqwest::Client::new();
    let retries = || async {
        gw.metric("gateway_upstream_retries_total{upstream=\"u\"}")
            .await
            .unwrap_or(0.0)
    };
    // each target answers 503 itself; the retries counted after each request
    let (post, get) = (reqwest::Method::POST, reqwest::Method::GET);
    for (method, path, body, retried, why) in [
        (post.clone(), "/plain/x", "{}", 0.0, "a POST was retried"),
        (get, "/plain/x", "", 1.0, "the GET was retried once"),
        (post, "/optin/x", "{}", 2.0, "the opted-in POST was retried"),
    ] {
        let mut req = c
            .request(method, gw.url(path))
            .header("x-echo-status", "503");
        if !body.is_empty() {
            req = req.body(body);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(
            r.headers().contains_key("x-upstream"),
            "the target's own 503 is passed on"
        );
        assert_eq!(retries().await, retried, "{why}");
    }
}

/// Routes `/plain` and `/degraded` (answered by `fallback` when its upstream fails) on
/// pool `u` (with the settings `pool`), whose one target refuses connections; and the
/// socket that keeps that port closed (keep it alive).
fn dead_target_routes(pool: &str, fallback: &str) -> (String, socket2::Socket) {
    let (dead, hold) = closed_port();
    let table = format!(
        "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{dead}\" }}]\n    {pool}\nroutes:\n  - {{ name: plain, match: {{ path_prefix: /plain }}, upstream: u }}\n  - {{ name: degraded, match: {{ path_prefix: /degraded }}, upstream: u, fallback: {fallback} }}\n"
    );
    (table, hold)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_down_gives_503_with_retry_after_or_the_fallback() {
    let (routes, _closed) = dead_target_routes(
        "health_check: { kind: tcp, interval: 100ms, timeout: 100ms, unhealthy_threshold: 1 }",
        r#"{ status: 200, body: '{"items": [], "degraded": true}' }"#,
    );
    let gw = Gateway::start(&routes);
    let c = reqwest::Client::new();
    let r = c.get(gw.url("/plain")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let r = c.get(gw.url("/degraded")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["degraded"],
        true
    );
    let r = c.get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_also_answers_when_the_upstream_fails() {
    // no health check: the target looks available, and refuses connections
    let (routes, _closed) = dead_target_routes(
        "retry: { attempts: 2, backoff: 1ms }",
        "{ status: 200, body: cached }",
    );
    let gw = Gateway::start(&routes);
    let c = reqwest::Client::new();
    let r = c.get(gw.url("/plain")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "bad_gateway"
    );
    let r = c.get(gw.url("/degraded")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_weights_keeps_health_state() {
    let a = Echo::start("a").await;
    let mut b = KillableEcho::start("b", 0);
    let (a_addr, b_addr) = (a.addr, b.addr);
    let table = move |wa: u32, wb: u32| {
        format!(
            "version: 1\nupstreams:\n  u:\n    targets: [{{ addr: \"{}\", weight: {wa} }}, {{ addr: \"{}\", weight: {wb} }}]\n    health_check: {{ path: /health, interval: 5s, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 1 }}\n    retry: {{ attempts: 1 }}\nroutes:\n  - {{ name: r, match: {{ path_prefix: / }}, upstream: u }}\n",
            a_addr, b_addr
        )
    };
    let gw = Gateway::start(&table(1, 1));
    let healthy_b = format!(
        "gateway_upstream_target_healthy{{target=\"{}\",upstream=\"u\"}}",
        b.addr
    );
    assert!(wait_until(Duration::from_secs(5), || async {
        gw.metric(&healthy_b).await == Some(1.0)
    })
    .await
    .is_some());
    // b dies and the next probe (within the 5 s interval) marks it down
    b.kill();
    assert!(
        wait_until(Duration::from_secs(7), || async {
            gw.metric(&healthy_b).await == Some(0.0)
        })
        .await
        .is_some(),
        "b never marked down"
    );
    // a reload changing weights must not reset b to healthy (no attempt allows a retry,
    // so a request sent to b would fail)
    gw.write_config(&table(1, 5));
    let c = reqwest::Client::new();
    let applied = wait_until(Duration::from_secs(3), || async {
        let v = gw.admin_get("/admin/upstreams").await;
        v["u"]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["weight"] == 5)
    })
    .await;
    assert!(applied.is_some(), "the new weights were not applied");
    assert_eq!(
        gw.metric(&healthy_b).await,
        Some(0.0),
        "the reload reset b's health"
    );
    for _ in 0..50 {
        let r = c.get(gw.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-upstream"], "a");
    }
    // the admin view shows every target with its state
    let v = gw.admin_get("/admin/upstreams").await;
    let tb = v["u"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["addr"] == b.addr.to_string())
        .unwrap()
        .clone();
    assert_eq!(tb["healthy"], false, "{v}");
    assert_eq!(tb["weight"], 5);
}
