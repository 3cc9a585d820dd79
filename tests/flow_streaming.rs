//! Streaming through the flows, with the real backends (in process) behind a real
//! gateway: `POST /api/v1/process` with `"stream": true` passes generation's token
//! events on as they are made, then one `event: result` with the pipeline's answer; a
//! client that goes away mid-stream stops the generation (api-generation's
//! `generation_streams_total{outcome="cancelled"}`); an error after the stream started
//! is an `event: error`; `GET /api/v1/jobs/{id}/events` sends each state of a job as it
//! is entered (embedded store, and a Redis store shared by two gateways), 404 for an
//! unknown id, and is guarded like the jobs routes; the direct `/api/v1/generate`
//! streams paced too; the OpenAPI document describes the streamed answers.
#![allow(clippy::unwrap_used)]

mod backends;
mod common;
#[path = "flow_streaming/sse.rs"]
mod sse;

use backends::{wait_up, Backend};
use common::redis::Redis;
use common::{failing_upstream, keys_file, post_json, Echo, Gateway};
use futures::StreamExt;
use serde_json::{json, Value};
use sse::{assert_paced, events, is_event_stream, Got};
use std::time::{Duration, Instant};

fn table(gen: &str, enr: &str, failing: &str, slow: &str) -> String {
    format!(
        r#"version: 1
upstreams:
  generation: {{ targets: [{{ addr: "{gen}" }}] }}
  enrichment: {{ targets: [{{ addr: "{enr}" }}] }}
  failing: {{ targets: [{{ addr: "{failing}" }}], retry: {{ attempts: 1 }} }}
  slow: {{ targets: [{{ addr: "{slow}" }}] }}
routes:
  - name: generate-v1
    match: {{ path: /api/v1/generate, methods: [POST] }}
    upstream: generation
    rewrite: {{ strip_prefix: /api/v1 }}
  - name: generate-timed
    match: {{ path: /timed/generate, methods: [POST] }}
    upstream: generation
    rewrite: {{ strip_prefix: /timed }}
    timeout: 250ms
  - name: generate-idle
    match: {{ path: /idle/generate, methods: [POST] }}
    upstream: generation
    rewrite: {{ strip_prefix: /idle }}
    timeout: 250ms
    stream_idle_timeout: 60ms
  - name: process
    match: {{ path: /api/v1/process, methods: [POST] }}
    pipeline: [ {{ upstream: generation, path: /generate }}, {{ upstream: enrichment, path: /enrich }} ]
    timeout: 10s
  - name: process-failing
    match: {{ path: /failing, methods: [POST] }}
    pipeline: [ {{ upstream: generation, path: /generate }}, {{ name: enrichment, upstream: failing, path: /enrich }} ]
  - name: async
    match: {{ path: /api/v1/async-process, methods: [POST] }}
    async: {{ topic: generation-requests, enrichment: {{ upstream: slow, path: /enrich }} }}
    plugins: [ {{ name: api_key, keys_file: keys.yaml }} ]
  - name: jobs
    match: {{ path: "/api/v1/jobs/{{job_id}}", methods: [GET] }}
    jobs: {{}}
    plugins: [ {{ name: api_key, keys_file: keys.yaml }} ]
  - name: job-events
    match: {{ path: "/api/v1/jobs/{{job_id}}/events", methods: [GET] }}
    jobs: {{}}
    plugins: [ {{ name: api_key, keys_file: keys.yaml }} ]
"#
    )
}

/// A gateway on `routes`, with keys.yaml beside it (alice: `key-a`, bob: `key-b`).
fn gateway(routes: &str, env: &[(&str, &str)]) -> Gateway {
    let keys = keys_file(&[("alice", "key-a"), ("bob", "key-b")]);
    Gateway::start_with_files(routes, &[("keys.yaml", keys.as_bytes())], env)
}

struct Stack {
    gen: Backend,
    _enr: Backend,
    _slow: Echo,
    gw: Gateway,
    routes: String,
}

async fn stack(delay: Duration, env: &[(&str, &str)]) -> Stack {
    let gen = Backend::generation_paced(delay);
    let enr = Backend::enrichment();
    wait_up(&gen).await;
    wait_up(&enr).await;
    let (bad, _bad_task) = failing_upstream().await;
    let slow = Echo::start_slow("slow-enrichment", Duration::from_millis(300)).await;
    let routes = table(
        &gen.addr.to_string(),
        &enr.addr.to_string(),
        &bad.to_string(),
        &slow.addr.to_string(),
    );
    let gw = gateway(&routes, env);
    Stack {
        gen,
        _enr: enr,
        _slow: slow,
        gw,
        routes,
    }
}

impl Stack {
    /// `POST path` with `body` as JSON: the answer, as it starts.
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.gw.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST path` asking for a stream of at most `max_tokens` tokens for `prompt`.
    async fn stream(&self, path: &str, prompt: &str, max_tokens: u32) -> reqwest::Response {
        let body = json!({"prompt": prompt, "max_tokens": max_tokens, "stream": true});
        self.post(path, &body).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_streams_each_token_then_the_result() {
    let delay = Duration::from_millis(40);
    let s = stack(delay, &[]).await;
    let c = reqwest::Client::new();
    let body = json!({"prompt": "The fox and the grapes", "max_tokens": 12, "seed": 11});
    let plain: Value = post_json(&c, &s.gw.url("/api/v1/process"), &body).await;
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = s.post("/api/v1/process", &streamed).await;
    assert_eq!(r.status(), 200, "log:\n{}", s.gw.logs());
    assert!(is_event_stream(&r));
    assert!(r.headers().contains_key("x-request-id"));
    let got = events(r).await;
    // 12 pieces, generation's usage, then the pipeline's answer
    assert_eq!(got.len(), 14, "{got:?}");
    let joined: String = got[..12]
        .iter()
        .map(|g| g.data["text"].as_str().unwrap())
        .collect();
    assert_eq!(joined, plain["generation"]["text"].as_str().unwrap());
    assert_eq!(got[12].data["done"], true);
    assert_eq!(got[12].data["tokens"], 12);
    let last = &got[13];
    assert_eq!(last.name.as_deref(), Some("result"));
    // the same enrichment of the same text (its timings aside)
    for k in ["text", "keywords", "language", "word_count"] {
        assert_eq!(last.data["result"][k], plain["result"][k], "{k}");
    }
    assert_eq!(last.data["generation"]["text"], plain["generation"]["text"]);
    assert_eq!(last.data["generation"]["tokens"], 12);
    let steps: Vec<&str> = last.data["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["generation", "enrichment"]);
    assert_paced(&got[..13], delay);
    // the result comes after the last token, not before
    assert!(last.at >= got[12].at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_stops_the_generation() {
    let s = stack(Duration::from_millis(40), &[]).await;
    let r = s.stream("/api/v1/process", "The wolf", 200).await;
    assert_eq!(r.status(), 200, "log:\n{}", s.gw.logs());
    let mut chunks = r.bytes_stream();
    let mut seen = 0;
    while seen < 3 {
        let chunk = chunks.next().await.unwrap().unwrap();
        seen += std::str::from_utf8(&chunk)
            .unwrap()
            .matches("data:")
            .count();
    }
    drop(chunks); // the client goes away after 3 of 201 events
    let mut cancelled = 0.0;
    for _ in 0..100 {
        cancelled = s
            .gen
            .counter("generation_streams_total{outcome=\"cancelled\"}")
            .await;
        if cancelled >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cancelled, 1.0, "api-generation saw its stream cancelled");
    let sent = s.gen.counter("generation_stream_events_total").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.gen.counter("generation_stream_events_total").await,
        sent,
        "nothing is made after the cancel"
    );
    assert!(sent < 100.0, "{sent} of 201 events made");
    assert_eq!(
        s.gen
            .counter("generation_streams_total{outcome=\"completed\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_errors_before_and_after_the_stream_started() {
    let s = stack(Duration::ZERO, &[]).await;
    // refused by the first step: the unstreamed pipeline's JSON error
    let r = s
        .post("/api/v1/process", &json!({"prompt": "  ", "stream": true}))
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "step_rejected");
    // the second step fails once the tokens were sent: an error event ends the stream
    let r = s.stream("/failing", "The lion", 4).await;
    assert_eq!(r.status(), 200, "log:\n{}", s.gw.logs());
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let got = events(r).await;
    assert_eq!(got.len(), 6, "{got:?}");
    let last = &got[5];
    assert_eq!(last.name.as_deref(), Some("error"));
    assert_eq!(last.data["error"], "step_failed");
    assert_eq!(last.data["step"], "enrichment");
    assert_eq!(last.data["request_id"], rid.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_route_streams_paced() {
    let delay = Duration::from_millis(40);
    let s = stack(delay, &[]).await;
    let r = s.stream("/api/v1/generate", "The crow", 10).await;
    assert!(is_event_stream(&r));
    let got = events(r).await;
    assert_eq!(got.len(), 11);
    assert_paced(&got, delay);
}

async fn submit(c: &reqwest::Client, gw: &Gateway, key: &str) -> String {
    let body = json!({"prompt": "The ant", "max_tokens": 8, "stream": true});
    common::jobs::submit_accepted(c, gw, "/api/v1/async-process", &body, Some(key)).await
}

async fn watch(c: &reqwest::Client, gw: &Gateway, id: &str, key: &str) -> reqwest::Response {
    c.get(gw.url(&format!("/api/v1/jobs/{id}/events")))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

/// The states of a job's events stream, checked: in order, each once, the last with
/// the result, and each seen before the next was entered.
fn assert_job_events(got: &[Got], id: &str) {
    let names: Vec<&str> = got.iter().map(|g| g.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        ["queued", "generating", "enriching", "done"],
        "{got:?}"
    );
    for g in &got[..3] {
        assert_eq!(g.data["job_id"], id);
        assert_eq!(g.data["status"], g.name.as_deref().unwrap());
        assert!(g.data["at"].is_string());
    }
    let done = &got[3].data;
    assert_eq!(done["status"], "done");
    assert_eq!(done["result"]["generation"]["tokens"], 8);
    assert!(done["result"]["result"].is_object());
    // the enrichment stage takes 300 ms: `enriching` reached the client as it was
    // entered, not with `done`
    assert!(
        got[3].at - got[2].at >= Duration::from_millis(200),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_follow_a_job_until_it_is_final() {
    let s = stack(Duration::from_millis(40), &[]).await;
    let c = reqwest::Client::new();
    let id = submit(&c, &s.gw, "key-a").await;
    let r = watch(&c, &s.gw, &id, "key-a").await;
    assert_eq!(r.status(), 200, "log:\n{}", s.gw.logs());
    assert!(is_event_stream(&r));
    assert_job_events(&events(r).await, &id);
    // a final job: its states at once, and the stream ends
    let again = events(watch(&c, &s.gw, &id, "key-a").await).await;
    let names: Vec<_> = again.iter().map(|g| g.name.clone().unwrap()).collect();
    assert_eq!(names, ["queued", "generating", "enriching", "done"]);
    // guarded as the jobs routes: another consumer's job is unknown, no key is 401
    assert_eq!(watch(&c, &s.gw, &id, "key-b").await.status(), 404);
    let r = c
        .get(s.gw.url(&format!("/api/v1/jobs/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let unknown = uuid::Uuid::now_v7().to_string();
    let r = watch(&c, &s.gw, &unknown, "key-a").await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "not_found");
    assert_eq!(watch(&c, &s.gw, "not-a-uuid", "key-a").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_through_a_redis_store_from_another_replica() {
    let Some(redis) = Redis::start() else {
        return; // SKIP_REDIS_TESTS set (Redis::start fails otherwise)
    };
    let url = redis.url();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("JOB_EVENTS_POLL_MS", "20"),
        ("JOB_WORKERS", "4"),
    ];
    let s = stack(Duration::from_millis(40), &env).await;
    // a second gateway on the same store, with no workers of its own taking the job
    // first: it sees the first one's writes only through Redis
    let other = gateway(
        &s.routes,
        &[
            ("REDIS_URL", url.as_str()),
            ("JOB_EVENTS_POLL_MS", "20"),
            ("JOB_RECOVERY_SECONDS", "3600"),
        ],
    );
    let c = reqwest::Client::new();
    let id = submit(&c, &s.gw, "key-a").await;
    let r = watch(&c, &other, &id, "key-a").await;
    assert_eq!(r.status(), 200, "log:\n{}", other.logs());
    assert_job_events(&events(r).await, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_streams() {
    let s = stack(Duration::ZERO, &[]).await;
    let doc: Value = reqwest::get(s.gw.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ok = |path: &str, m: &str| doc["paths"][path][m]["responses"]["200"]["content"].clone();
    let process = ok("/api/v1/process", "post");
    assert!(process["application/json"].is_object(), "{process}");
    let ev = &process["text/event-stream"]["schema"];
    assert!(
        ev["description"]
            .as_str()
            .unwrap()
            .contains("event: result"),
        "{ev}"
    );
    let events = ok("/api/v1/jobs/{job_id}/events", "get");
    let ev = &events["text/event-stream"]["schema"];
    assert!(ev["properties"]["event"]["enum"]
        .as_array()
        .unwrap()
        .contains(&json!("done")));
    assert!(events.get("application/json").is_none());
    let r = &doc["paths"]["/api/v1/jobs/{job_id}/events"]["get"]["responses"];
    assert!(r["404"].is_object());
    let gen = ok("/api/v1/generate", "post");
    assert!(gen["text/event-stream"].is_object());
}

/// The chunks of an answer until it ends or breaks: (text, whether it ended cleanly).
async fn read_all(r: reqwest::Response) -> (String, bool) {
    let mut text = String::new();
    let mut chunks = r.bytes_stream();
    while let Some(c) = chunks.next().await {
        match c {
            Ok(c) => text.push_str(std::str::from_utf8(&c).unwrap()),
            Err(_) => return (text, false),
        }
    }
    (text, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_outlives_the_route_timeout_while_events_flow_and_idles_out() {
    // 10 events 100 ms apart: a second in all, the route's timeout is 250 ms
    let s = stack(Duration::from_millis(100), &[]).await;
    let ask = |path| s.stream(path, "The hare", 9);
    let started = Instant::now();
    let (text, clean) = read_all(ask("/timed/generate").await).await;
    assert!(clean, "{text}");
    assert_eq!(text.matches("data:").count(), 10, "{text}");
    assert!(text.contains("\"done\":true"));
    let took = started.elapsed();
    // stream_idle_timeout 60 ms: the upstream's 100 ms silence after the first event ends it
    let (text, _) = read_all(ask("/idle/generate").await).await;
    assert!(text.matches("data:").count() < 10, "{text}");
    assert!(!text.contains("\"done\":true"), "{text}");
    // the metrics cover the whole stream, and the time to its first byte separately
    let dur_sum =
        s.gw.metric("http_request_duration_seconds_sum{route=\"generate-timed\"}")
            .await
            .unwrap();
    assert!(
        dur_sum >= 0.8 && dur_sum <= took.as_secs_f64() + 0.05,
        "{dur_sum} of {took:?}"
    );
    let ttfb_count =
        s.gw.metric("gateway_time_to_first_byte_seconds_count{route=\"generate-timed\"}")
            .await
            .unwrap();
    assert_eq!(ttfb_count, 1.0);
    let ttfb_sum =
        s.gw.metric("gateway_time_to_first_byte_seconds_sum{route=\"generate-timed\"}")
            .await
            .unwrap();
    assert!(
        ttfb_sum < dur_sum / 2.0,
        "first byte {ttfb_sum} s of {dur_sum} s"
    );
    let log = s.gw.logs();
    let line = log
        .lines()
        .find(|l| l.contains("\"route\":\"generate-timed\""))
        .expect("an access log line for the stream");
    let v: Value = serde_json::from_str(line).unwrap();
    assert!(v["duration_ms"].as_f64().unwrap() >= 800.0, "{line}");
}
