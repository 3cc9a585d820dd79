//! Async job helpers shared by the embedded-mode and Kafka-mode job tests: submitting a
//! job, a job's status (with an API key when the job routes are authenticated), polling
//! until a set of jobs is final, and a job's events stream read event by event.

use super::Gateway;
use serde_json::Value;
use std::time::{Duration, Instant};

/// `POST path` (an async route) with `body`, and `x-api-key` when given: the status
/// code and the JSON body (`Null` if none).
pub async fn submit(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    body: &Value,
    api_key: Option<&str>,
) -> (u16, Value) {
    let mut req = c.post(gw.url(path)).json(body);
    if let Some(key) = api_key {
        req = req.header("x-api-key", key);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// As [`submit`], asserting a 202: the new job's id.
pub async fn submit_accepted(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    body: &Value,
    api_key: Option<&str>,
) -> String {
    let (status, v) = submit(c, gw, path, body, api_key).await;
    assert_eq!(status, 202, "{v}");
    v["job_id"].as_str().unwrap().to_string()
}

/// The `x-signature` a webhook delivery of `body` carries: `sha256=` and the hex
/// HMAC-SHA256 of the body with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

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

/// `GET /api/v1/jobs/{id}/events`: checked to be a 200 event stream, read event by event.
pub async fn events(
    c: &reqwest::Client,
    gw: &Gateway,
    id: &str,
    api_key: Option<&str>,
) -> EventReader {
    let mut req = c.get(gw.url(&format!("/api/v1/jobs/{id}/events")));
    if let Some(key) = api_key {
        req = req.header("x-api-key", key);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    EventReader::new(r)
}

/// A `text/event-stream` answer read event by event (comment-only events skipped).
pub struct EventReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

/// One event: its `event:` name and its `data:` as JSON (`Null` if not JSON).
#[derive(Debug)]
pub struct Event {
    pub name: Option<String>,
    pub data: Value,
}

/// One raw event (its lines up to the blank line): `None` when it has no `data:` (a
/// comment, a keep-alive).
pub fn parse_event(raw: &str) -> Option<Event> {
    let mut name = None;
    let mut data = None;
    for line in raw.lines() {
        if let Some(n) = line.strip_prefix("event:") {
            name = Some(n.trim().to_string());
        } else if let Some(d) = line.strip_prefix("data:") {
            data = Some(d.trim().to_string());
        }
    }
    let data = serde_json::from_str(&data?).unwrap_or(Value::Null);
    Some(Event { name, data })
}

impl EventReader {
    pub fn new(r: reqwest::Response) -> Self {
        EventReader {
            body: Box::pin(r.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next event; `None` when the stream ended (or broke).
    pub async fn next(&mut self) -> Option<Event> {
        use futures::StreamExt;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                if let Some(event) = parse_event(&raw) {
                    return Some(event);
                }
            }
            let chunk = self.body.next().await?.ok()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event within `limit`; panics when none came.
    pub async fn expect(&mut self, limit: Duration) -> Event {
        tokio::time::timeout(limit, self.next())
            .await
            .expect("an event in time")
            .expect("the stream went on")
    }
}
