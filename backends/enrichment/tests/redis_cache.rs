//! The Redis result cache with the real `api-enrichment` binary and a real
//! `redis-server`, each on a free loopback port: a repeated document is served
//! from Redis; Redis down (from the start, or stopped mid-run) still answers 200.
//! Without `redis-server` the first test fails, unless `SKIP_REDIS_TESTS=1`.
#![allow(clippy::unwrap_used)]

use backend_common::testing::{self, Service};
use serde_json::{json, Value};

// the gateway tests' Redis launcher, shared as a file: this package's tests cannot
// use the gateway's tests/common (it needs the gateway binary)
#[allow(dead_code)]
#[path = "../../../tests/common/redis.rs"]
mod redis_server;

const BIN: &str = env!("CARGO_BIN_EXE_api-enrichment");

async fn start(redis_url: &str) -> Service {
    let env = [("REDIS_URL", redis_url), ("ENRICHMENT_WORKERS", "2")];
    Service::start(BIN, &env).await
}

async fn enrich(service: &Service, body: Value) -> Value {
    service.post_ok("/enrich", &body).await
}

/// `enrichment_cache_lookups_total{result}`, 0 while the series is absent.
async fn lookups(service: &Service, result: &str) -> f64 {
    let series = format!("enrichment_cache_lookups_total{{result=\"{result}\"}}");
    testing::metric(&service.metrics().await, &series).unwrap_or(0.0)
}

#[tokio::test]
async fn repeated_document_is_served_from_redis_and_redis_loss_is_not_an_error() {
    let Some(redis) = redis_server::Redis::start() else {
        return;
    };
    let url = redis.url();
    let service = start(&url).await;
    let doc = json!({"id": "d1", "text": "I love Paris. Google opened an office there."});

    let first = enrich(&service, doc.clone()).await;
    assert_eq!(first["cached"], false);
    let second = enrich(&service, doc.clone()).await;
    assert_eq!(second["cached"], true, "{second}");
    for field in ["text", "sentiment", "entities", "keywords", "language"] {
        assert_eq!(first[field], second[field], "{field}");
    }
    assert_eq!(lookups(&service, "miss").await, 1.0);
    assert_eq!(lookups(&service, "hit").await, 1.0);

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
    let other = enrich(&service, json!({"id": "d1", "text": "I love Berlin."})).await;
    assert_eq!(other["cached"], false);

    // Redis stopped mid-run: still answered, computed
    drop(redis);
    let after = enrich(&service, json!({"text": "Redis is gone."})).await;
    assert_eq!(after["cached"], false);
    let again = enrich(&service, doc).await;
    assert_eq!(again["cached"], false);
    assert_eq!(again["entities"], first["entities"]);
    assert!(lookups(&service, "error").await >= 1.0);
}

#[tokio::test]
async fn redis_down_from_the_start_is_fail_open() {
    // a port nobody listens on
    let url = format!("redis://127.0.0.1:{}/", testing::unused_port());
    let service = start(&url).await;
    for _ in 0..2 {
        let doc = enrich(&service, json!({"text": "What a great day in London."})).await;
        assert_eq!(doc["cached"], false);
        assert_eq!(doc["sentiment"]["label"], "positive");
        assert_eq!(doc["entities"][0]["text"], "London");
    }
    assert_eq!(lookups(&service, "error").await, 2.0);
    assert_eq!(lookups(&service, "hit").await, 0.0);
}
