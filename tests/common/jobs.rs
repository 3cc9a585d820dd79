//! Async job helpers shared by the embedded-mode and Kafka-mode job tests: a job's
//! status (with an API key when the job routes are authenticated) and polling until a
//! set of jobs is final.

use super::Gateway;
use serde_json::Value;
use std::time::{Duration, Instant};

/// `GET /api/v1/jobs/{id}`: the status code and the JSON body (`Null` if none).
pub async fn status(
    c: &reqwest::Client,
    gw: &Gateway,
    id: &str,
    api_key: Option<&str>,
) -> (u16, Value) {
    let mut req = c.get(gw.url(&format!("/api/v1/jobs/{id}")));
    if let Some(key) = api_key {
        req = req.header("x-api-key", key);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Polls until every job is `done` or `failed` and returns them in order; panics
/// after `limit`, naming how many were not final.
pub async fn wait_final(
    c: &reqwest::Client,
    gw: &Gateway,
    ids: &[String],
    api_key: Option<&str>,
    limit: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut out: Vec<Option<Value>> = vec![None; ids.len()];
    loop {
        for (i, id) in ids.iter().enumerate() {
            if out[i].is_some() {
                continue;
            }
            let (st, v) = status(c, gw, id, api_key).await;
            if st == 200 && matches!(v["status"].as_str(), Some("done" | "failed")) {
                out[i] = Some(v);
            }
        }
        let left = out.iter().filter(|o| o.is_none()).count();
        if left == 0 {
            return out.into_iter().map(Option::unwrap).collect();
        }
        assert!(Instant::now() < deadline, "{left} jobs not final in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
