//! The `cache` plugin through a real gateway and a real upstream that counts the
//! requests it gets: hits and misses with `Cache-Status` and `Age`, `Vary`, requests
//! with `Authorization`, `no-store` and `private` answers, `max-age` expiry, two hosts
//! never sharing an entry, 100 concurrent misses making one upstream request, purges
//! and figures through the admin API, a bounded size under 10,000 keys,
//! `stale-while-revalidate`, entries kept across a reload, and the metric.
#![allow(clippy::unwrap_used)]

mod common;
use axum::extract::Request;
use axum::response::Response;
use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests the upstream got, by path and query.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<HashMap<String, u64>>>);

impl Counts {
    fn of(&self, k: &str) -> u64 {
        self.0.lock().unwrap().get(k).copied().unwrap_or(0)
    }
}

/// Each answer's body names the path and how many times it was asked for
/// (`/fresh #2`); the path picks the caching headers.
async fn upstream() -> (String, Counts, tokio::task::JoinHandle<()>) {
    let counts = Counts::default();
    let c = counts.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let c = c.clone();
        async move {
            let path = req.uri().path().to_string();
            let pq = req.uri().path_and_query().unwrap().to_string();
            let n = {
                let mut m = c.0.lock().unwrap();
                let n = m.entry(pq.clone()).or_default();
                *n += 1;
                *n
            };
            let lang = req
                .headers()
                .get("accept-language")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let cc = match path.as_str() {
                "/fresh" | "/host" => "max-age=60",
                "/short" => "max-age=1",
                "/nostore" => "no-store",
                "/private" => "private, max-age=60",
                "/public" => "public, max-age=60",
                "/slow" => "max-age=60",
                "/swr" => "max-age=1, stale-while-revalidate=30",
                p if p.starts_with("/big") => "max-age=600",
                _ => "",
            };
            if path == "/slow" || path == "/swr" {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            let mut b = Response::builder()
                .header("content-type", "text/plain")
                .header("x-upstream", "yes");
            if !cc.is_empty() {
                b = b.header("cache-control", cc);
            }
            let body = if path.starts_with("/big") {
                "x".repeat(2000)
            } else if path == "/vary" {
                b = b.header("vary", "Accept-Language");
                format!("{pq} #{n} {lang}")
            } else {
                format!("{pq} #{n}")
            };
            b.body(axum::body::Body::from(body)).unwrap()
        }
    });
    let (addr, task) = serve_app(app).await;
    let addr = addr.to_string();
    (addr, counts, task)
}

fn table(addr: &str, plugin: &str, extra_route: bool) -> String {
    let extra = if extra_route {
        "  - name: other\n    match: { path_prefix: /other }\n    upstream: u\n"
    } else {
        ""
    };
    format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n{extra}  - name: c\n    match: {{ path_prefix: / }}\n    upstream: u\n    plugins: [{plugin}]\n"
    )
}

struct Got {
    status: u16,
    cache_status: String,
    age: Option<u64>,
    body: String,
}

async fn get(c: &reqwest::Client, gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = c.get(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    Got {
        status: r.status().as_u16(),
        cache_status: h("cache-status").unwrap_or_default(),
        age: h("age").map(|a| a.parse().unwrap()),
        body: r.text().await.unwrap(),
    }
}

fn admin(
    c: &reqwest::Client,
    gw: &Gateway,
    method: reqwest::Method,
    action: &str,
) -> reqwest::RequestBuilder {
    c.request(
        method,
        gw.metrics_url(&format!("/admin/plugins/cache/{action}")),
    )
    .bearer_auth(ADMIN_TOKEN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_misses_and_what_is_not_shared() {
    let (addr, counts, _task) = upstream().await;
    let gw = Gateway::start(&table(&addr, "{ name: cache, ttl: 30s }", false));
    let c = reqwest::Client::new();

    // a miss is stored, then hits carry Age and the stored body
    let miss = get(&c, &gw, "/fresh", &[]).await;
    assert_eq!(miss.status, 200);
    assert_eq!(miss.body, "/fresh #1");
    assert_eq!(miss.cache_status, "gateway; fwd=miss; stored");
    let hit = get(&c, &gw, "/fresh", &[]).await;
    assert_eq!(hit.body, "/fresh #1");
    assert!(
        hit.cache_status.starts_with("gateway; hit; ttl="),
        "{}",
        hit.cache_status
    );
    assert!(hit.age.is_some_and(|a| a <= 1));
    let r = c.get(gw.url("/fresh")).send().await.unwrap();
    assert_eq!(r.headers()["x-upstream"], "yes", "stored headers are sent");
    assert_eq!(r.headers()["content-type"], "text/plain");
    let head = c.head(gw.url("/fresh")).send().await.unwrap();
    assert!(head.headers()["cache-status"]
        .to_str()
        .unwrap()
        .contains("hit"));
    assert_eq!(
        head.headers()["content-length"],
        "/fresh #1".len().to_string().as_str()
    );
    assert_eq!(counts.of("/fresh"), 1);
    // the query is part of the key
    assert_eq!(get(&c, &gw, "/fresh?a=1", &[]).await.body, "/fresh?a=1 #1");

    // two hosts never share an entry
    let a = get(&c, &gw, "/host", &[("host", "a.example")]).await;
    let b = get(&c, &gw, "/host", &[("host", "b.example")]).await;
    assert_eq!((a.body.as_str(), b.body.as_str()), ("/host #1", "/host #2"));
    assert!(b.cache_status.contains("fwd=miss"), "{}", b.cache_status);
    assert_eq!(
        get(&c, &gw, "/host", &[("host", "a.example")]).await.body,
        "/host #1"
    );
    assert_eq!(
        get(&c, &gw, "/host", &[("host", "b.example")]).await.body,
        "/host #2"
    );

    // Vary: one entry per Accept-Language value
    let lang = |l: &'static str| [("accept-language", l)];
    assert_eq!(get(&c, &gw, "/vary", &lang("en")).await.body, "/vary #1 en");
    assert_eq!(get(&c, &gw, "/vary", &lang("fr")).await.body, "/vary #2 fr");
    assert_eq!(get(&c, &gw, "/vary", &lang("en")).await.body, "/vary #1 en");
    assert_eq!(get(&c, &gw, "/vary", &lang("fr")).await.body, "/vary #2 fr");

    // no-store and private answers are never served from the cache
    for path in ["/nostore", "/private"] {
        let first = get(&c, &gw, path, &[]).await;
        let second = get(&c, &gw, path, &[]).await;
        assert_eq!(second.body, format!("{path} #2"));
        assert_eq!(first.cache_status, "gateway; fwd=miss");
    }

    // Authorization: not served from an entry that did not allow it, nor stored...
    let auth = [("authorization", "Bearer alice")];
    let r = get(&c, &gw, "/fresh", &auth).await;
    assert_eq!(r.body, "/fresh #2");
    assert_eq!(r.cache_status, "gateway; fwd=bypass");
    assert_eq!(get(&c, &gw, "/fresh", &[]).await.body, "/fresh #1");
    // ...unless the answer says it may be shared (public)
    assert!(get(&c, &gw, "/public", &auth)
        .await
        .cache_status
        .ends_with("stored"));
    assert_eq!(get(&c, &gw, "/public", &auth).await.body, "/public #1");
    assert_eq!(get(&c, &gw, "/public", &[]).await.body, "/public #1");

    // max-age expiry
    assert_eq!(get(&c, &gw, "/short", &[]).await.body, "/short #1");
    assert_eq!(get(&c, &gw, "/short", &[]).await.body, "/short #1");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let expired = get(&c, &gw, "/short", &[]).await;
    assert_eq!(expired.body, "/short #2");

    // a client's no-cache refreshes the entry
    let r = get(&c, &gw, "/fresh", &[("cache-control", "no-cache")]).await;
    assert_eq!(
        (r.body.as_str(), r.cache_status.as_str()),
        ("/fresh #3", "gateway; fwd=request; stored")
    );
    assert_eq!(get(&c, &gw, "/fresh", &[]).await.body, "/fresh #3");

    // the metric
    let hits = gw
        .metric("gateway_cache_requests_total{route=\"c\",status=\"hit\"}")
        .await;
    let misses = gw
        .metric("gateway_cache_requests_total{route=\"c\",status=\"miss\"}")
        .await;
    let bypass = gw
        .metric("gateway_cache_requests_total{route=\"c\",status=\"bypass\"}")
        .await;
    assert!(hits.unwrap() >= 10.0, "{hits:?}");
    assert!(misses.unwrap() >= 10.0, "{misses:?}");
    assert_eq!(bypass, Some(1.0));
    let stored = gw
        .metric("gateway_cache_stores_total{outcome=\"stored\",route=\"c\"}")
        .await;
    assert!(stored.unwrap() >= 8.0, "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_make_one_upstream_request() {
    let (addr, counts, _task) = upstream().await;
    let gw = Gateway::start(&table(&addr, "{ name: cache, ttl: 30s }", false));
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(200)
        .build()
        .unwrap();
    let all: Vec<_> = (0..100)
        .map(|_| {
            let c = c.clone();
            let url = gw.url("/slow");
            tokio::spawn(async move {
                let r = c.get(url).send().await.unwrap();
                let status = r.headers()["cache-status"].to_str().unwrap().to_string();
                (status, r.text().await.unwrap())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in all {
        let (status, body) = t.await.unwrap();
        assert_eq!(body, "/slow #1");
        statuses.push(status);
    }
    assert_eq!(counts.of("/slow"), 1, "one upstream request for 100 misses");
    let fillers = statuses.iter().filter(|s| s.contains("fwd=miss")).count();
    assert_eq!(fillers, 1, "{statuses:?}");
    assert!(
        statuses.iter().any(|s| s.ends_with("collapsed")),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_serves_stale_while_one_refills() {
    let (addr, counts, _task) = upstream().await;
    let gw = Gateway::start(&table(&addr, "{ name: cache, ttl: 30s }", false));
    let c = reqwest::Client::new();
    assert_eq!(get(&c, &gw, "/swr", &[]).await.body, "/swr #1");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // the first request after expiry refills (the upstream takes 400 ms); one sent
    // meanwhile gets the stale answer at once
    let refill = {
        let (c, url) = (c.clone(), gw.url("/swr"));
        tokio::spawn(async move {
            let r = c.get(url).send().await.unwrap();
            let s = r.headers()["cache-status"].to_str().unwrap().to_string();
            (s, r.text().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stale = get(&c, &gw, "/swr", &[]).await;
    assert_eq!(stale.body, "/swr #1");
    assert!(
        stale.cache_status.contains("hit; ttl=-"),
        "{}",
        stale.cache_status
    );
    let (status, body) = refill.await.unwrap();
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("gateway; fwd=stale; stored", "/swr #2")
    );
    assert_eq!(get(&c, &gw, "/swr", &[]).await.body, "/swr #2");
    assert_eq!(counts.of("/swr"), 2);
    let stale = gw
        .metric("gateway_cache_requests_total{route=\"c\",status=\"stale\"}")
        .await;
    assert_eq!(stale, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_reload_and_a_bounded_size() {
    let (addr, counts, _task) = upstream().await;
    let plugin = "{ name: cache, ttl: 30s, max_size: 1MiB, max_entry_size: 64KiB }";
    let gw = Gateway::start(&table(&addr, plugin, false));
    let c = reqwest::Client::new();
    assert_eq!(get(&c, &gw, "/fresh", &[]).await.body, "/fresh #1");

    // entries outlive a reload of the table (same route, same settings)
    gw.write_config(&table(&addr, plugin, true));
    let r = gw.admin_reload().await;
    assert_eq!(r.status(), 200);
    let routes = || async {
        let r = c
            .get(gw.metrics_url("/admin/routes"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await;
        r.unwrap().text().await.unwrap().contains("\"other\"")
    };
    assert!(
        wait_until(Duration::from_secs(10), routes).await.is_some(),
        "reloaded"
    );
    assert_eq!(get(&c, &gw, "/fresh", &[]).await.body, "/fresh #1");

    // purge: the admin token is needed, the method is checked, a route and prefix select
    let r = c
        .post(gw.metrics_url("/admin/plugins/cache/purge"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = admin(&c, &gw, reqwest::Method::GET, "purge")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = admin(&c, &gw, reqwest::Method::POST, "purge")
        .body("{\"bad\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = admin(&c, &gw, reqwest::Method::POST, "purge")
        .json(&serde_json::json!({"route": "c", "path_prefix": "/fresh"}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["purged"], 1, "{v}");
    assert_eq!(get(&c, &gw, "/fresh", &[]).await.body, "/fresh #2");
    let r = admin(&c, &gw, reqwest::Method::DELETE, "purge")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&c, &gw, "/fresh", &[]).await.body, "/fresh #3");

    // 10,000 keys of 2 KB each (20 MB) into a 1 MiB cache: the size stays bounded
    let keys: Vec<String> = (0..10_000).map(|i| format!("/big?k={i}")).collect();
    let c2 = c.clone();
    let urls: Vec<String> = keys.iter().map(|k| gw.url(k)).collect();
    let chunks: Vec<Vec<String>> = urls.chunks(625).map(|c| c.to_vec()).collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|urls| {
            let c = c2.clone();
            tokio::spawn(async move {
                for u in urls {
                    let r = c.get(u).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    assert_eq!(r.bytes().await.unwrap().len(), 2000);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let r = admin(&c, &gw, reqwest::Method::GET, "stats")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let cache = &v["caches"][0];
    let (bytes, entries) = (
        cache["bytes"].as_u64().unwrap(),
        cache["entries"].as_u64().unwrap(),
    );
    assert_eq!(cache["max_size"], 1 << 20, "{v}");
    assert!(bytes <= 1 << 20, "{v}");
    assert!(entries > 100 && entries < 1000, "{v}");
    // the first keys were evicted; a new key is stored and served
    assert!(get(&c, &gw, "/big?k=0", &[])
        .await
        .cache_status
        .contains("fwd=miss"));
    assert!(get(&c, &gw, "/big?k=0", &[])
        .await
        .cache_status
        .contains("hit"));
    assert_eq!(counts.of("/big?k=0"), 2);
}
