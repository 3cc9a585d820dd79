//! `rate_limit` with the local store, through a real gateway: the burst then 429s with
//! `Retry-After` and the draft-11 headers, the exact allowance at a steady rate, keys
//! (IP with and without trusted proxies, a header), a `policy` shared by two routes,
//! and buckets that survive a reload (a changed limit applying to them).
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::time::{Duration, Instant};

fn table(addr: std::net::SocketAddr, routes: &str) -> String {
    format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n{routes}"
    )
}

fn route(name: &str, plugin: &str) -> String {
    format!("  - name: {name}\n    match: {{ path_prefix: /{name} }}\n    upstream: u\n    plugins: [{plugin}]\n")
}

/// An echo upstream and a gateway with a route `/{name}` to it per (name, settings),
/// behind a `rate_limit` with those settings.
async fn limited(routes: &[(&str, &str)]) -> (Echo, Gateway) {
    let up = Echo::start("u").await;
    let routes: String = routes
        .iter()
        .map(|(name, settings)| route(name, &format!("{{ name: rate_limit, {settings} }}")))
        .collect();
    let gw = Gateway::start(&table(up.addr, &routes));
    (up, gw)
}

async fn get(c: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = c.get(url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_then_429_with_retry_after_and_draft_11_headers() {
    let (_up, gw) = limited(&[("limited", "average: 2, burst: 3, period: 10s, key: ip")]).await;
    let c = reqwest::Client::new();
    let url = gw.url("/limited");
    for left in [2, 1, 0] {
        let r = get(&c, &url, &[]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header_value(&r, "ratelimit-policy"), "\"limited\";q=2;w=10");
        assert_eq!(header_value(&r, "x-ratelimit-limit"), "2");
        assert_eq!(header_value(&r, "x-ratelimit-remaining"), left.to_string());
        // t: until the bucket is whole again, 5s per spent token
        let t = 5 * (3 - left);
        assert_eq!(
            header_value(&r, "ratelimit"),
            format!("\"limited\";r={left};t={t}")
        );
        assert_eq!(header_value(&r, "x-ratelimit-reset"), t.to_string());
    }
    let r = get(&c, &url, &[]).await;
    assert_eq!(r.status(), 429);
    // one token comes back every 5s
    assert_eq!(header_value(&r, "retry-after"), "5");
    assert_eq!(header_value(&r, "ratelimit"), "\"limited\";r=0;t=15");
    assert_eq!(header_value(&r, "content-type"), "application/json");
    assert!(r.headers().contains_key("x-request-id"));
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "rate_limited");
    assert_eq!(
        gw.metric("gateway_rate_limit_hits_total{client_id=\"anonymous\"}")
            .await,
        Some(1.0)
    );
    assert_eq!(
        gw.metric("gateway_requests_blocked_total{reason=\"rate_limited\"}")
            .await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_allowance_at_a_steady_rate() {
    // 10 per second (one token every 100ms); small buckets absorb scheduling jitter
    let (_up, gw) = limited(&[
        ("slow", "average: 10, burst: 2, period: 1s, key: ip"),
        ("fast", "average: 10, burst: 5, period: 1s, key: ip"),
    ])
    .await;
    let c = reqwest::Client::new();
    // below the rate (one every 150ms): every request passes
    let mut tick = tokio::time::interval(Duration::from_millis(150));
    for _ in 0..10 {
        tick.tick().await;
        assert_eq!(get(&c, &gw.url("/slow"), &[]).await.status(), 200);
    }
    // above it (one every 25ms for 1.5s): the bucket, then exactly one per 100ms
    let start = Instant::now();
    let mut admitted = 0u32;
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    while start.elapsed() < Duration::from_millis(1500) {
        tick.tick().await;
        let r = get(&c, &gw.url("/fast"), &[]).await;
        match r.status().as_u16() {
            200 => admitted += 1,
            429 => {}
            s => panic!("status {s}"),
        }
    }
    let expected = 5 + (start.elapsed().as_millis() / 100) as u32;
    assert!(
        admitted.abs_diff(expected) <= 1,
        "admitted {admitted}, expected {expected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_by_ip_with_and_without_trusted_proxies_and_by_header() {
    let (_up, gw) = limited(&[
        ("direct", "average: 1, burst: 1, period: 1h, key: ip"),
        (
            "proxied",
            "average: 1, burst: 1, period: 1h, key: ip, trusted_proxies: [127.0.0.0/8]",
        ),
        (
            "keyed",
            "average: 1, burst: 1, period: 1h, key: \"header:x-api-key\"",
        ),
    ])
    .await;
    let c = reqwest::Client::new();
    let (xff, key) = ("x-forwarded-for", "x-api-key");
    for (path, header, value, want) in [
        // without trusted proxies the TCP peer counts, whatever X-Forwarded-For says
        ("/direct", xff, "1.1.1.1", 200),
        ("/direct", xff, "2.2.2.2", 429),
        // behind a trusted proxy each forwarded client has its own bucket; a client's
        // own claim left of the proxy's entry is ignored
        ("/proxied", xff, "1.1.1.1", 200),
        ("/proxied", xff, "1.1.1.1", 429),
        ("/proxied", xff, "9.9.9.9, 1.1.1.1", 429),
        ("/proxied", xff, "2.2.2.2", 200),
        // by header
        ("/keyed", key, "k1", 200),
        ("/keyed", key, "k1", 429),
        ("/keyed", key, "k2", 200),
    ] {
        let r = get(&c, &gw.url(path), &[(header, value)]).await;
        assert_eq!(r.status(), want, "{path} with {header}: {value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_sharing_a_policy_count_together() {
    let shared = "average: 1, burst: 3, period: 1h, key: route, policy: partners";
    let (_up, gw) = limited(&[
        ("a", shared),
        ("b", shared),
        ("c", "average: 1, burst: 3, period: 1h, key: route"),
    ])
    .await;
    let c = reqwest::Client::new();
    let mut codes = Vec::new();
    for p in ["/a", "/b", "/a", "/b", "/a"] {
        let r = get(&c, &gw.url(p), &[]).await;
        assert!(
            header_value(&r, "ratelimit").starts_with("\"partners\";"),
            "{}",
            header_value(&r, "ratelimit")
        );
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 429, 429]);
    // a route without the policy counts on its own
    assert_eq!(get(&c, &gw.url("/c"), &[]).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_buckets_and_applies_a_changed_limit() {
    let up = Echo::start("u").await;
    let rl = |burst: u32, extra: &str| {
        route(
            "r",
            &format!("{{ name: rate_limit, average: 1, burst: {burst}, period: 1h, key: ip }}"),
        ) + extra
    };
    let gw = Gateway::start(&table(up.addr, &rl(2, "")));
    let c = reqwest::Client::new();
    assert_eq!(get(&c, &gw.url("/r"), &[]).await.status(), 200);
    assert_eq!(get(&c, &gw.url("/r"), &[]).await.status(), 200);
    assert_eq!(get(&c, &gw.url("/r"), &[]).await.status(), 429);

    let reload = |text: String| {
        gw.write_config(&text);
        async {
            let r = gw.admin_reload().await;
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    // same limit, another route added: no fresh burst for anyone
    reload(table(up.addr, &rl(2, &route("other", "")))).await;
    assert_eq!(get(&c, &gw.url("/other"), &[]).await.status(), 200);
    let r = get(&c, &gw.url("/r"), &[]).await;
    assert_eq!(r.status(), 429);

    // a bigger bucket applies to the bucket as it is: 2 spent of 4, 2 left
    reload(table(up.addr, &rl(4, ""))).await;
    let r = get(&c, &gw.url("/r"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header_value(&r, "x-ratelimit-remaining"), "1");
    assert_eq!(get(&c, &gw.url("/r"), &[]).await.status(), 200);
    assert_eq!(get(&c, &gw.url("/r"), &[]).await.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_window_admits_average_per_period() {
    let sliding = "average: 3, period: 1h, key: ip, algorithm: sliding_window";
    let (_up, gw) = limited(&[("s", sliding)]).await;
    let c = reqwest::Client::new();
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(get(&c, &gw.url("/s"), &[]).await.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 429]);
}
