//! The token stream of `POST /generate` (`"stream": true`) on the real server: SSE
//! events whose pieces join into the unstreamed answer for the same seed, a final
//! `done` event with the usage, and pacing (`GENERATION_TOKEN_DELAY_MS`): the first
//! event reaches the client before the last one is made.

use std::time::{Duration, Instant};

use api_generation::{serve, Config, StartupError};
use backend_common::testing::InProcess;
use futures::StreamExt;
use serde_json::{json, Value};

async fn start(config: Config) -> InProcess<StartupError> {
    InProcess::start(|listener, shutdown| serve(listener, config, shutdown)).await
}

/// The `data` JSON of each event of an SSE body.
fn events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data:")))
        .map(|d| serde_json::from_str(d.trim()).expect("JSON data"))
        .collect()
}

#[tokio::test]
async fn a_stream_joins_into_the_unstreamed_answer() {
    let server = start(Config {
        token_delay: Duration::from_millis(40),
        ..Config::default()
    })
    .await;
    let body = json!({"prompt": "The fox and the", "max_tokens": 12, "seed": 7});
    let (status, plain) = server.post_json("/generate", &body).await;
    assert_eq!(status, 200, "{plain}");
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let start = Instant::now();
    let r = server
        .client
        .post(server.url("/generate"))
        .json(&streamed)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/event-stream"));
    let mut first_event_at = None;
    let mut text = String::new();
    let mut chunks = r.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.expect("chunk");
        if first_event_at.is_none() && chunk.windows(5).any(|w| w == b"data:") {
            first_event_at = Some(start.elapsed());
        }
        text.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
    let total = start.elapsed();
    let all = events(&text);
    assert_eq!(all.len(), 13, "{text}");
    let pieces: String = all[..12]
        .iter()
        .map(|e| e["text"].as_str().expect("text"))
        .collect();
    assert_eq!(pieces, plain["text"].as_str().expect("text"));
    let last = &all[12];
    assert_eq!(last["done"], true);
    assert_eq!(last["tokens"], 12);
    assert_eq!(last["seed"], 7);
    assert_eq!(last["model"], plain["model"]);
    // 12 pauses of 40 ms: the first event came long before the stream ended
    let first = first_event_at.expect("an event");
    assert!(total >= Duration::from_millis(400), "{total:?}");
    assert!(
        first + Duration::from_millis(300) < total,
        "{first:?} / {total:?}"
    );
}

#[tokio::test]
async fn a_bad_stream_request_is_refused_before_streaming() {
    let server = start(Config::default()).await;
    let (status, b) = server
        .post_json("/generate", &json!({"prompt": " ", "stream": true}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(b["error"], "validation_error");
}
