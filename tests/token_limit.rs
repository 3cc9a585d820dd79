//! `token_limit` through real gateways: a budget of tokens charged from JSON answers and
//! from the final event of an SSE stream, 429 with `Retry-After` and token `RateLimit`
//! headers once spent, per key, counted in `gateway_tokens_total`; a request asking for
//! more `max_tokens` than are left refused up front; two gateways sharing one budget
//! through a real redis-server, and Redis stopped mid-test (the local budget applies).
#![allow(clippy::unwrap_used)]

mod common;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use common::redis::Redis;
use common::*;
use futures::StreamExt;
use std::time::Duration;

/// `/json` answers `{"tokens": <x-tokens>}`; `/sse` streams two pieces and a final
/// `{"done": true, "tokens": <x-tokens>}` event.
async fn upstream() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().fallback(|req: Request| async move {
        let n: u64 = req
            .headers()
            .get("x-tokens")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        if req.uri().path().starts_with("/t/sse") {
            let events = futures::stream::iter([
                "data: {\"text\":\"once\"}\n\n".to_string(),
                "data: {\"text\":\" upon\"}\n\n".to_string(),
                format!("event: done\ndata: {{\"done\":true,\"tokens\":{n}}}\n\n"),
            ])
            .then(|e| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, std::io::Error>(e)
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(events))
                .unwrap()
        } else {
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(format!("{{\"text\":\"x\",\"tokens\":{n}}}")))
                .unwrap()
        }
    });
    let (addr, task) = serve_app(app).await;
    (addr, task)
}

fn table(addr: std::net::SocketAddr, plugin: &str) -> String {
    format!(
        r#"version: 1
upstreams:
  u: {{ targets: [{{ addr: "{addr}" }}] }}
routes:
  - name: t
    match: {{ path_prefix: /t }}
    upstream: u
    plugins: [{plugin}]
"#
    )
}

async fn send(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    client: &str,
    tokens: u64,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = c
        .post(gw.url(path))
        .header("x-client", client)
        .header("x-tokens", tokens.to_string())
        .header("content-type", "application/json")
        .body("{\"prompt\":\"x\",\"max_tokens\":5}")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_is_charged_from_answers_and_streams() {
    let (addr, _task) = upstream().await;
    let gw = Gateway::start(&table(
        addr,
        "{ name: token_limit, tokens: 100, period: 1h, key: \"header:x-client\", refuse_over_budget: true }",
    ));
    let c = reqwest::Client::new();
    // 60 + 30 (streamed) = 90 used: both admitted, the answers intact
    let (s, h, body) = send(&c, &gw, "/t/json", "alice", 60).await;
    assert_eq!(s, 200);
    assert_eq!(body, "{\"text\":\"x\",\"tokens\":60}");
    let policy = h["ratelimit-policy"].to_str().unwrap();
    assert!(policy.starts_with("\"t\";q=100;w=3600;pk=:"), "{policy}");
    assert!(
        !policy.contains("alice"),
        "the partition key is hashed: {policy}"
    );
    assert!(
        h["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"t\";r=100;t="),
        "{h:?}"
    );
    let (s, h, body) = send(&c, &gw, "/t/sse", "alice", 30).await;
    assert_eq!(s, 200);
    assert!(
        body.ends_with("data: {\"done\":true,\"tokens\":30}\n\n"),
        "{body}"
    );
    assert!(
        h["ratelimit"].to_str().unwrap().starts_with("\"t\";r=40;"),
        "{h:?}"
    );
    // the charge lands once the answer is over
    let mut left = String::new();
    for _ in 0..50 {
        let r = c
            .post(gw.url("/t/json"))
            .header("x-client", "alice")
            .header("x-tokens", "0")
            .send()
            .await
            .unwrap();
        left = r.headers()["ratelimit"].to_str().unwrap().to_string();
        if left.starts_with("\"t\";r=10;") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(left.starts_with("\"t\";r=10;"), "{left}");
    // asking for more than is left is refused before the upstream
    let r = c
        .post(gw.url("/t/json"))
        .header("x-client", "alice")
        .header("content-type", "application/json")
        .body("{\"max_tokens\":50}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "rate_limited");
    assert!(
        b["message"].as_str().unwrap().contains("asks for 50"),
        "{b}"
    );
    // spend the rest, then 429 with Retry-After and r=0
    assert_eq!(send(&c, &gw, "/t/json", "alice", 20).await.0, 200);
    let mut refused = None;
    for _ in 0..50 {
        let (s, h, body) = send(&c, &gw, "/t/json", "alice", 1).await;
        if s == 429 {
            refused = Some((h, body));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (h, body) = refused.expect("the spent budget refuses");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 3000);
    assert!(
        h["ratelimit"].to_str().unwrap().starts_with("\"t\";r=0;"),
        "{h:?}"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"],
        "rate_limited"
    );
    // another key has its own budget
    assert_eq!(send(&c, &gw, "/t/json", "bob", 1).await.0, 200);
    assert_eq!(
        gw.metric("gateway_requests_blocked_total{reason=\"token_limit\"}")
            .await
            .map(|v| v >= 2.0),
        Some(true)
    );
    let charged = match gw
        .metric("gateway_tokens_total{consumer=\"anonymous\",route=\"t\"}")
        .await
    {
        Some(v) => v,
        None => gw
            .metric("gateway_tokens_total{route=\"t\",consumer=\"anonymous\"}")
            .await
            .unwrap(),
    };
    assert!(charged >= 110.0, "{charged}");
}

/// Two budgets on one route (a per-client one and a per-route one, as a global entry and
/// the route's own would be): each entry charges its own, from a JSON answer and from a
/// stream alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_entries_on_one_route_each_charge_their_own_budget() {
    let (addr, _task) = upstream().await;
    let gw = Gateway::start(&table(
        addr,
        "{ name: token_limit, tokens: 100, period: 1h, key: \"header:x-client\" }, \
         { name: token_limit, tokens: 1000, period: 1h, key: route }",
    ));
    let c = reqwest::Client::new();
    assert_eq!(send(&c, &gw, "/t/json", "alice", 60).await.0, 200);
    assert_eq!(send(&c, &gw, "/t/sse", "alice", 30).await.0, 200);
    let left = |h: &reqwest::header::HeaderMap| -> Vec<String> {
        h.get_all("ratelimit")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').nth(1).unwrap().to_string())
            .collect()
    };
    let mut seen = Vec::new();
    for _ in 0..50 {
        let (s, h, _) = send(&c, &gw, "/t/json", "alice", 0).await;
        assert_eq!(s, 200);
        seen = left(&h);
        if seen == ["r=10", "r=910"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, ["r=10", "r=910"], "each entry charged its own budget");
    // another client: its own per-client budget, the route's shared one
    let (_, h, _) = send(&c, &gw, "/t/json", "bob", 0).await;
    assert_eq!(left(&h), ["r=100", "r=910"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_budget_in_redis() {
    let Some(mut redis) = Redis::start() else {
        assert!(
            std::env::var_os("SKIP_REDIS_TESTS").is_some(),
            "redis-server is needed (SKIP_REDIS_TESTS=1 skips on purpose)"
        );
        return;
    };
    let (addr, _task) = upstream().await;
    let config = table(
        addr,
        "{ name: token_limit, tokens: 100, period: 1h, key: route, store: redis, store_timeout: 2s }",
    );
    let env = [("REDIS_URL", redis.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = Gateway::start_with(&config, &env);
    let b = Gateway::start_with(&config, &env);
    let c = reqwest::Client::new();
    assert_eq!(send(&c, &a, "/t/json", "x", 70).await.0, 200);
    assert_eq!(send(&c, &b, "/t/sse", "x", 40).await.0, 200);
    // 110 charged in one Redis key: both gateways now refuse
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses = vec![
            send(&c, &a, "/t/json", "x", 1).await.0,
            send(&c, &b, "/t/json", "x", 1).await.0,
        ];
        if statuses == [429, 429] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(statuses, [429, 429]);
    // the raw RESP replies: the key's name, then its value
    let keys = redis.command("KEYS gw:tl:*");
    let key = keys
        .lines()
        .find(|l| l.starts_with("gw:tl:"))
        .unwrap()
        .to_string();
    let value = redis.command(&format!("GET {key}"));
    let used: u64 = value.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(used >= 110, "{used}");
    // Redis down: the local budget of each gateway applies (no 5xx)
    redis.stop();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(send(&c, &a, "/t/json", "x", 1).await.0);
    }
    assert!(seen.iter().all(|s| *s == 200), "{seen:?}");
}
