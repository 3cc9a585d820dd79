//! `rate_limit` with `store: redis` against a real redis-server: two gateway processes
//! sharing one Redis admit what one would; Redis stopped mid-test gives no 5xx (the
//! local limit applies), and the shared limit resumes once Redis is back.
#![allow(clippy::unwrap_used)]

mod common;
use common::redis::Redis;
use common::*;
use std::time::Duration;

fn table(addr: std::net::SocketAddr, plugin: &str) -> String {
    format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n  - name: r\n    match: {{ path_prefix: /r }}\n    upstream: u\n    plugins: [{plugin}]\n"
    )
}

/// Sends `n` requests with `concurrency` in flight; returns the statuses.
async fn load(url: String, n: usize, concurrency: usize) -> Vec<u16> {
    use futures::StreamExt;
    let c = reqwest::Client::new();
    futures::stream::iter(0..n)
        .map(|_| {
            let c = c.clone();
            let url = url.clone();
            async move { c.get(url).send().await.map_or(0, |r| r.status().as_u16()) }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// A Redis, an echo upstream, and `gateways` gateways (replicas) sharing that Redis, each
/// on route `/r` with a `rate_limit` of `store: redis` and `settings`; `None` as for
/// [`Redis::start`].
struct Limited {
    redis: Redis,
    _up: Echo,
    gws: Vec<Gateway>,
}

async fn limited(settings: &str, gateways: usize) -> Option<Limited> {
    let redis = Redis::start()?;
    let up = Echo::start("u").await;
    let config = table(
        up.addr,
        &format!("{{ name: rate_limit, store: redis, {settings} }}"),
    );
    let url = redis.url();
    let gws = (0..gateways)
        .map(|_| Gateway::start_with(&config, &[("REDIS_URL", url.as_str())]))
        .collect();
    Some(Limited {
        redis,
        _up: up,
        gws,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_sharing_one_redis_admit_what_one_would() {
    let limit = "average: 60, burst: 60, period: 1h, key: route, store_timeout: 2s";
    let Some(l) = limited(limit, 2).await else {
        return;
    };
    let (a, b) = (&l.gws[0], &l.gws[1]);
    let (ra, rb) = tokio::join!(load(a.url("/r"), 100, 8), load(b.url("/r"), 100, 8));
    let all: Vec<u16> = ra.iter().chain(rb.iter()).copied().collect();
    assert!(all.iter().all(|s| *s == 200 || *s == 429), "{all:?}");
    let admitted = all.iter().filter(|s| **s == 200).count();
    let (by_a, by_b) = (
        ra.iter().filter(|s| **s == 200).count(),
        rb.iter().filter(|s| **s == 200).count(),
    );
    println!("two replicas, one Redis: admitted {admitted} of 200 (configured 60; {by_a} via a, {by_b} via b)");
    // (a generous store_timeout: on a starved CI machine a slow Redis answer would
    // otherwise fall back to each replica's local limit, by design)
    assert!(
        admitted.abs_diff(60) <= 3,
        "admitted {admitted}, configured 60"
    );
    assert!(
        by_a > 0 && by_b > 0,
        "both replicas admitted some: {by_a} {by_b}"
    );
    assert_eq!(
        a.metric(
            "gateway_plugin_dependency_errors_total{dependency=\"redis\",plugin=\"rate_limit\"}"
        )
        .await,
        None
    );
}

/// `concurrency` clients sending back to back for `secs`; returns the statuses.
async fn load_for(url: String, secs: f64, concurrency: usize) -> Vec<u16> {
    let c = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                while tokio::time::Instant::now() < deadline {
                    out.push(c.get(&url).send().await.map_or(0, |r| r.status().as_u16()));
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_sharing_one_redis_admit_the_refill_rate_under_load() {
    // a bucket of 10 refilled with 40 per second, shared by both replicas
    let limit = "average: 40, burst: 10, period: 1s, key: route, store_timeout: 2s";
    let Some(l) = limited(limit, 2).await else {
        return;
    };
    let (a, b) = (&l.gws[0], &l.gws[1]);
    let start = std::time::Instant::now();
    let (ra, rb) = tokio::join!(load_for(a.url("/r"), 2.0, 6), load_for(b.url("/r"), 2.0, 6));
    let secs = start.elapsed().as_secs_f64();
    let all: Vec<u16> = ra.iter().chain(rb.iter()).copied().collect();
    assert!(
        all.iter().all(|s| *s == 200 || *s == 429),
        "{:?}",
        all.iter()
            .filter(|s| **s != 200 && **s != 429)
            .collect::<Vec<_>>()
    );
    let admitted = all.iter().filter(|s| **s == 200).count() as f64;
    let configured = 10.0 + 40.0 * secs;
    println!(
        "two replicas, one Redis, {secs:.2}s of load ({} requests): admitted {admitted}, configured {configured:.1} ({:+.1}%)",
        all.len(),
        (admitted - configured) / configured * 100.0
    );
    assert!(
        all.len() as f64 > 2.0 * configured,
        "the load exceeded the limit"
    );
    assert!(
        (admitted - configured).abs() <= configured * 0.05,
        "admitted {admitted}, configured {configured:.1}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_falls_back_to_the_local_limit_then_resumes() {
    let limit = "average: 1, burst: 3, period: 1h, key: ip, store_timeout: 1s";
    let Some(mut l) = limited(limit, 1).await else {
        return;
    };
    let gw = &l.gws[0];
    let c = reqwest::Client::new();
    let status = || {
        let c = c.clone();
        let url = gw.url("/r");
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    };
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(status().await);
    }
    assert_eq!(codes, [200, 200, 200, 429], "Redis decides");
    // one key, with a TTL (the time the bucket needs to refill, here 3h)
    let keys = l.redis.command("KEYS gw:rl:*");
    assert!(keys.contains("gw:rl:route:r:ip:127.0.0.1"), "{keys}");
    let ttl: i64 = l
        .redis
        .command("PTTL gw:rl:route:r:ip:127.0.0.1")
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!(
        ttl > 3 * 3_600_000 - 60_000 && ttl <= 3 * 3_600_000 + 1000,
        "{ttl}"
    );

    // Redis gone: no 5xx; this gateway's own bucket (fresh) applies the same limit
    l.redis.stop();
    let mut codes = Vec::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..6 {
        let t = std::time::Instant::now();
        codes.push(status().await);
        slowest = slowest.max(t.elapsed());
    }
    println!("while Redis was down: {codes:?}, slowest answer {slowest:?}");
    assert_eq!(codes, [200, 200, 200, 429, 429, 429], "local limit");
    let errors = gw
        .metric(
            "gateway_plugin_dependency_errors_total{dependency=\"redis\",plugin=\"rate_limit\"}",
        )
        .await
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "dependency errors counted: {errors}");
    // the log is written in the background: wait for the line, then count it
    let logged = |what: &'static str| {
        let log = gw.log.clone();
        wait_until(Duration::from_secs(5), move || {
            let log = log.clone();
            async move {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains(what)
            }
        })
    };
    assert!(
        logged("Redis is unreachable").await.is_some(),
        "{}",
        gw.logs()
    );
    let warned = gw.logs().matches("Redis is unreachable").count();
    assert_eq!(warned, 1, "logged once per outage:\n{}", gw.logs());

    // Redis back (empty): the shared limit resumes; the local bucket is spent, so a
    // 200 can only come from Redis
    l.redis.restart();
    let back = wait_until(Duration::from_secs(10), || {
        let s = status();
        async move { s.await == 200 }
    })
    .await;
    assert!(back.is_some(), "Redis limits did not resume");
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(status().await);
    }
    assert_eq!(codes, [200, 200, 429], "Redis decides again");
    assert!(logged("Redis is back").await.is_some(), "{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_at_most_the_store_timeout() {
    let limit = "average: 1, burst: 100, period: 1h, key: ip, store_timeout: 100ms";
    let Some(l) = limited(limit, 1).await else {
        return;
    };
    let gw = &l.gws[0];
    let c = reqwest::Client::new();
    let remaining = |r: &reqwest::Response| {
        r.headers()["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .to_string()
    };
    let r = c.get(gw.url("/r")).send().await.unwrap();
    assert_eq!(remaining(&r), "99");

    l.redis.signal("-STOP");
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let r = c.get(gw.url("/r")).send().await.unwrap();
        slowest = slowest.max(t.elapsed());
        assert_eq!(r.status(), 200);
    }
    l.redis.signal("-CONT");
    println!("hung Redis: slowest answer {slowest:?} (store_timeout 100ms)");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    // back to the shared bucket: the local one has at most 95 left, Redis more (it
    // counted the first request, and maybe the call that timed out)
    let back = wait_until(Duration::from_secs(10), || {
        let c = c.clone();
        let url = gw.url("/r");
        async move {
            let r = c.get(url).send().await.unwrap();
            r.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse::<u32>()
                .unwrap()
                > 95
        }
    })
    .await;
    assert!(back.is_some(), "Redis did not take over again");
}
