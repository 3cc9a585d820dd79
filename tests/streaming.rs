//! Token streaming end to end: the real api-generation (in process, paced with its
//! `token_delay`) behind a real gateway: `POST /api/v2/generate` with `"stream": true`
//! arrives as Server-Sent Events, each event before the next is made (the gateway
//! buffers nothing), and the pieces join into the unstreamed answer for the same seed.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use futures::StreamExt;
use std::time::{Duration, Instant};

/// The real api-generation in this process, its events `delay` apart.
async fn generation(delay: Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = api_generation::Config {
        token_delay: delay,
        ..api_generation::Config::default()
    };
    tokio::spawn(api_generation::serve(
        listener,
        config,
        std::future::pending::<()>(),
    ));
    addr
}

/// A gateway with the stack's `generate-v2` route to `addr`, through `plugin`.
fn gateway(addr: std::net::SocketAddr, plugin: &str) -> Gateway {
    Gateway::start(&format!(
        "version: 1\nupstreams:\n  generation: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n  - name: generate-v2\n    match: {{ path: /api/v2/generate, methods: [POST] }}\n    upstream: generation\n    rewrite: {{ strip_prefix: /api/v2 }}\n    plugins: [{plugin}]\n"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_stream_through_the_gateway() {
    let addr = generation(Duration::from_millis(50)).await;
    let gw = gateway(addr, "{ name: compress }");
    let c = reqwest::Client::new();
    let body = serde_json::json!({"prompt": "Once upon a time", "max_tokens": 10, "seed": 3});
    let plain: serde_json::Value = post_json(&c, &gw.url("/api/v2/generate"), &body).await;
    let mut streamed = body.clone();
    streamed["stream"] = serde_json::json!(true);
    let start = Instant::now();
    let r = c
        .post(gw.url("/api/v2/generate"))
        .json(&streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(r.headers().contains_key("x-request-id"));
    let mut arrivals = Vec::new();
    let mut text = String::new();
    let mut chunks = r.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.unwrap();
        let s = std::str::from_utf8(&chunk).unwrap();
        for _ in 0..s.matches("data:").count() {
            arrivals.push(start.elapsed());
        }
        text.push_str(s);
    }
    let events: Vec<serde_json::Value> = text
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data:")))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect();
    assert_eq!(events.len(), 11, "{text}");
    let joined: String = events[..10]
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(joined, plain["text"].as_str().unwrap());
    assert_eq!(events[10]["done"], true);
    assert_eq!(events[10]["tokens"], 10);
    // paced 50 ms apart at the source: the events arrive spread out, not in one burst
    assert_eq!(arrivals.len(), 11);
    let spread = arrivals[10] - arrivals[0];
    assert!(spread >= Duration::from_millis(300), "{arrivals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_is_charged_from_the_stream() {
    let addr = generation(Duration::ZERO).await;
    let gw = gateway(
        addr,
        "{ name: token_limit, tokens: 15, period: 1h, key: route }",
    );
    let c = reqwest::Client::new();
    let ask = |stream: bool| {
        c.post(gw.url("/api/v2/generate"))
            .json(&serde_json::json!({"prompt": "The wolf", "max_tokens": 10, "stream": stream}))
            .send()
    };
    // 10 streamed tokens, then 10 in a JSON answer: the second is admitted with 5 left
    let r = ask(true).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("\"done\":true"));
    let mut seen = None;
    for _ in 0..50 {
        let r = ask(false).await.unwrap();
        let rl = r.headers()["ratelimit"].to_str().unwrap().to_string();
        if rl.contains(";r=5;") {
            assert_eq!(r.status(), 200);
            seen = Some(rl);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.is_some(), "the stream's 10 tokens were charged");
    let mut status = 0;
    for _ in 0..50 {
        status = ask(false).await.unwrap().status().as_u16();
        if status == 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 429, "20 tokens spent of 15");
}
