//! The Redis result cache with the real `api-enrichment` binary and a real
//! `redis-server`, each on a free loopback port: a repeated document is served
//! from Redis; Redis down (from the start, or stopped mid-run) still answers 200.
//! Without `redis-server` the first test fails, unless `SKIP_REDIS_TESTS=1`.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// the gateway tests' Redis launcher, shared as a file: this package's tests cannot
// use the gateway's tests/common (it needs the gateway binary)
#[allow(dead_code)]
#[path = "../../../tests/common/redis.rs"]
mod redis_server;

const BIN: &str = env!("CARGO_BIN_EXE_api-enrichment");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Enrichment {
    _proc: Proc,
    base: String,
    client: reqwest::Client,
}

impl Enrichment {
    async fn start(redis_url: &str) -> Enrichment {
        let port = free_port();
        let child = Command::new(BIN)
            .env("PORT", port.to_string())
            .env("REDIS_URL", redis_url)
            .env("ENRICHMENT_WORKERS", "2")
            .env("LOG_LEVEL", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let service = Enrichment {
            _proc: Proc(child),
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if reqwest::get(format!("{}/ready", service.base))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("api-enrichment did not become ready");
    }

    async fn enrich(&self, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/enrich", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn lookups(&self, result: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let series = format!("enrichment_cache_lookups_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

#[tokio::test]
async fn repeated_document_is_served_from_redis_and_redis_loss_is_not_an_error() {
    let Some(redis) = redis_server::Redis::start() else {
        return;
    };
    let url = redis.url();
    let service = Enrichment::start(&url).await;
    let doc = json!({"id": "d1", "text": "I love Paris. Google opened an office there."});

    let first = service.enrich(doc.clone()).await;
    assert_eq!(first["cached"], false);
    let second = service.enrich(doc.clone()).await;
    assert_eq!(second["cached"], true, "{second}");
    for field in ["text", "sentiment", "entities", "keywords", "language"] {
        assert_eq!(first[field], second[field], "{field}");
    }
    assert_eq!(service.lookups("miss").await, 1.0);
    assert_eq!(service.lookups("hit").await, 1.0);

    // one key, named by the content hash, with the TTL (default 3600 s)
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("enrichment:v1:*")
        .query(&mut conn)
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].len(), "enrichment:v1:".len() + 64);
    let ttl: i64 = redis::cmd("TTL").arg(&keys[0]).query(&mut conn).unwrap();
    assert!((3500..=3600).contains(&ttl), "{ttl}");

    // a different document is another key
    let other = service
        .enrich(json!({"id": "d1", "text": "I love Berlin."}))
        .await;
    assert_eq!(other["cached"], false);

    // Redis stopped mid-run: still answered, computed
    drop(redis);
    let after = service.enrich(json!({"text": "Redis is gone."})).await;
    assert_eq!(after["cached"], false);
    let again = service.enrich(doc).await;
    assert_eq!(again["cached"], false);
    assert_eq!(again["entities"], first["entities"]);
    assert!(service.lookups("error").await >= 1.0);
}

#[tokio::test]
async fn redis_down_from_the_start_is_fail_open() {
    // a port nobody listens on
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let service = Enrichment::start(&url).await;
    for _ in 0..2 {
        let doc = service
            .enrich(json!({"text": "What a great day in London."}))
            .await;
        assert_eq!(doc["cached"], false);
        assert_eq!(doc["sentiment"]["label"], "positive");
        assert_eq!(doc["entities"][0]["text"], "London");
    }
    assert_eq!(service.lookups("error").await, 2.0);
    assert_eq!(service.lookups("hit").await, 0.0);
}
