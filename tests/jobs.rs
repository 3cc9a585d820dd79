//! Async jobs in embedded mode (no Kafka): submit → 202 + job id, the gateway's
//! workers run generation then enrichment on the real backends, the status route
//! shows each stage; 404s; signed webhooks retried after a 500 and refused for a
//! disallowed host; the Redis store keeps jobs across a gateway restart and the
//! restarted gateway runs the jobs the killed one had not finished.
#![allow(clippy::unwrap_used)]

mod backends;
mod common;

use backends::Backend;
use common::jobs::wait_final;
use common::redis::Redis;
use common::{serve_app, Gateway};
use futures::future::join_all;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "test-webhook-secret";

fn table(gen: &str, enr: &str) -> String {
    format!(
        r#"version: 1
upstreams:
  generation: {{ targets: [{{ addr: "{gen}" }}] }}
  enrichment: {{ targets: [{{ addr: "{enr}" }}] }}
routes:
  - name: async-process-v1
    match: {{ path: /api/v1/async-process, methods: [POST] }}
    async:
      topic: generation-requests
      callback: {{ allow_hosts: ["127.0.0.1"], allow_private_networks: true, attempts: 3, backoff: 50ms, max_backoff: 200ms, timeout: 2s }}
  - name: async-public-only
    match: {{ path: /public-only, methods: [POST] }}
    async: {{ topic: generation-requests, callback: {{ allow_hosts: ["127.0.0.1", "localhost"] }} }}
  - name: jobs-v1
    match: {{ path: "/api/v1/jobs/{{job_id}}", methods: [GET] }}
    jobs: {{}}
"#
    )
}

async fn submit(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    body: Value,
) -> (u16, Value, Option<String>) {
    let r = c.post(gw.url(path)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap_or(Value::Null), loc)
}

async fn job(c: &reqwest::Client, gw: &Gateway, id: &str) -> (u16, Value) {
    common::jobs::status(c, gw, id, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_jobs_all_reach_done_once() {
    let (gen, enr) = backends::both().await;
    let gw = Gateway::start(&table(&gen.addr.to_string(), &enr.addr.to_string()));
    let c = reqwest::Client::new();

    let n = 200;
    let started = Instant::now();
    let answers = join_all((0..n).map(|i| {
        let c = c.clone();
        let gw = &gw;
        async move {
            submit(
                &c,
                gw,
                "/api/v1/async-process",
                json!({"prompt": format!("job number {i} asks"), "max_tokens": 16}),
            )
            .await
        }
    }))
    .await;
    let mut ids = Vec::new();
    for (status, body, loc) in answers {
        assert_eq!(status, 202, "{body}");
        let id = body["job_id"].as_str().unwrap().to_string();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        let url = format!("/api/v1/jobs/{id}");
        assert_eq!(body["status_url"], url);
        assert_eq!(loc.as_deref(), Some(url.as_str()));
        ids.push(id);
    }
    let jobs = wait_final(&c, &gw, &ids, None, Duration::from_secs(120)).await;
    let took = started.elapsed();
    eprintln!("MEASURED: {n} embedded jobs submitted concurrently, all final in {took:?} ({:.0} jobs/s end to end, debug build)", n as f64 / took.as_secs_f64());
    for (id, j) in ids.iter().zip(&jobs) {
        assert_eq!(j["status"], "done", "{j}");
        assert_eq!(j["job_id"], id.as_str());
        for stage in ["queued", "generating", "enriching", "done"] {
            let ts = j["stages"][stage]
                .as_str()
                .unwrap_or_else(|| panic!("no {stage} in {j}"));
            assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
        }
        let r = &j["result"];
        assert!(!r["generation"]["text"].as_str().unwrap().is_empty());
        assert!(r["result"]["word_count"].as_u64().unwrap() > 0);
        assert_eq!(r["steps"].as_array().unwrap().len(), 2);
        assert!(j.get("error").is_none());
    }
    // exactly one result each: each backend did the work once per job
    assert_eq!(gen.counter("generation_requests_total").await, n as f64);
    assert_eq!(enr.counter("enrichment_requests_total").await, n as f64);

    assert_eq!(
        gw.metric("gateway_jobs_total{status=\"accepted\"}").await,
        Some(n as f64)
    );
    assert_eq!(
        gw.metric("gateway_jobs_total{status=\"done\"}").await,
        Some(n as f64)
    );
    assert_eq!(gw.metric("gateway_jobs_waiting").await, Some(0.0));

    // unknown ids
    assert_eq!(job(&c, &gw, &uuid::Uuid::now_v7().to_string()).await.0, 404);
    let (st, body) = job(&c, &gw, "not-a-job").await;
    assert_eq!(st, 404);
    assert_eq!(body["error"], "not_found");
    // a body that is not a JSON object
    let r = c
        .post(gw.url("/api/v1/async-process"))
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

/// What the receiver got: path, `X-Signature`, body.
type Got = Arc<Mutex<Vec<(String, String, bytes::Bytes)>>>;

/// A webhook receiver: `/flaky` answers 500 the first time then 200, `/down`
/// always 500; it keeps what it got.
struct Receiver {
    addr: std::net::SocketAddr,
    got: Got,
    _task: tokio::task::JoinHandle<()>,
}

async fn receiver() -> Receiver {
    use axum::extract::{Request, State};
    let got: Got = Arc::default();
    let app = axum::Router::new()
        .fallback(|State(got): State<Got>, req: Request| async move {
            let path = req.uri().path().to_string();
            let sig = req
                .headers()
                .get("x-signature")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap();
            let mut g = got.lock().unwrap();
            let before = g.iter().filter(|(p, _, _)| *p == path).count();
            g.push((path.clone(), sig, body));
            if path == "/down" || before == 0 {
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            } else {
                axum::http::StatusCode::OK
            }
        })
        .with_state(got.clone());
    let (addr, task) = serve_app(app).await;
    Receiver {
        addr,
        got,
        _task: task,
    }
}

/// Submits a job of `prompt` whose webhook goes to `url`, and polls it until the
/// webhook's outcome is recorded: the job's id and the job.
async fn called_back(
    c: &reqwest::Client,
    gw: &Gateway,
    prompt: &str,
    url: &str,
) -> (String, Value) {
    let body = json!({"prompt": prompt, "callback_url": url});
    let id = common::jobs::submit_accepted(c, gw, "/api/v1/async-process", &body, None).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = job(c, gw, &id).await;
        if v["callback"]["status"].is_string() {
            return (id, v);
        }
        assert!(Instant::now() < deadline, "no webhook outcome: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_signed_retried_and_refused() {
    let (gen, enr) = backends::both().await;
    let rx = receiver().await;
    let gw = Gateway::start_with(
        &table(&gen.addr.to_string(), &enr.addr.to_string()),
        &[("WEBHOOK_SECRET", SECRET)],
    );
    let c = reqwest::Client::new();

    // delivered on the second try, after a 500, signed
    let url = format!("http://{}/flaky", rx.addr);
    let (id, j) = called_back(&c, &gw, "hello hooks", &url).await;
    assert_eq!(j["callback"]["status"], "delivered", "{j}");
    assert_eq!(j["callback"]["attempts"], 2);
    let got = rx.got.lock().unwrap().clone();
    let flaky: Vec<_> = got.iter().filter(|(p, _, _)| p == "/flaky").collect();
    assert_eq!(flaky.len(), 2);
    for (_, sig, body) in &flaky {
        assert_eq!(*sig, common::jobs::signature(SECRET, body));
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["job_id"], id.as_str());
        assert_eq!(v["status"], "done");
        assert!(v["result"]["result"].is_object());
    }

    // given up after `attempts`, recorded on the job
    let url = format!("http://{}/down", rx.addr);
    let (_, j) = called_back(&c, &gw, "hello again", &url).await;
    assert_eq!(j["callback"]["status"], "failed", "{j}");
    assert_eq!(j["callback"]["attempts"], 3);
    assert!(j["callback"]["last_error"]
        .as_str()
        .unwrap()
        .contains("500"));
    assert_eq!(j["status"], "done");

    // refused at submit: a host not on the list, a non-http scheme, a loopback
    // address on a route that does not allow private networks
    for (path, url) in [
        (
            "/api/v1/async-process",
            "http://evil.example.com/hook".to_string(),
        ),
        ("/api/v1/async-process", format!("ftp://{}/hook", rx.addr)),
        ("/public-only", format!("http://{}/hook", rx.addr)),
        ("/public-only", "http://localhost/hook".to_string()),
    ] {
        let (st, body, _) =
            submit(&c, &gw, path, json!({"prompt": "x", "callback_url": url})).await;
        assert_eq!(st, 400, "{url}: {body}");
        assert_eq!(body["error"], "invalid_callback_url", "{body}");
    }
    let refused = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _, _)| p == "/hook")
        .count();
    assert_eq!(refused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_survives_a_gateway_restart() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let (gen, enr) = backends::both().await;
    let routes = table(&gen.addr.to_string(), &enr.addr.to_string());
    let env = [
        ("REDIS_URL", redis.url()),
        ("JOB_WORKERS", "1".to_string()),
        ("JOB_LEASE_SECONDS", "2".to_string()),
        ("JOB_RECOVERY_SECONDS", "1".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let c = reqwest::Client::new();

    // the first gateway's generation upstream hangs: its jobs are mid-run or queued
    // when it is killed
    let hang = common::Echo::start_slow("hang", Duration::from_secs(30)).await;
    let gw = Gateway::start_with(&table(&hang.addr.to_string(), &enr.addr.to_string()), &env);
    let mut ids = Vec::new();
    for i in 0..40 {
        let (st, body, _) = submit(
            &c,
            &gw,
            "/api/v1/async-process",
            json!({"prompt": format!("restart {i}"), "max_tokens": 32}),
        )
        .await;
        assert_eq!(st, 202, "{body}");
        ids.push(body["job_id"].as_str().unwrap().to_string());
    }
    common::wait_until(Duration::from_secs(10), || async {
        job(&c, &gw, &ids[0]).await.1["status"] == "generating"
    })
    .await
    .unwrap();
    assert_eq!(job(&c, &gw, &ids[39]).await.1["status"], "queued");
    drop(gw);
    // the restarted gateway (generation back) runs every unfinished job
    let gw = Gateway::start_with(&routes, &env);
    let jobs = wait_final(&c, &gw, &ids, None, Duration::from_secs(60)).await;
    for j in &jobs {
        assert_eq!(j["status"], "done", "{j}");
        assert!(j["result"]["result"].is_object());
    }
    // and the finished jobs are still there after another restart
    drop(gw);
    let gw = Gateway::start_with(&routes, &env);
    for (id, before) in ids.iter().zip(&jobs) {
        let (st, now) = job(&c, &gw, id).await;
        assert_eq!(st, 200);
        assert_eq!(now["result"], before["result"]);
        assert_eq!(now["stages"], before["stages"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_means_nothing_accepted() {
    let gen = Backend::generation();
    let enr = Backend::enrichment();
    let down = format!("redis://127.0.0.1:{}/", common::free_port());
    let gw = Gateway::start_with(
        &table(&gen.addr.to_string(), &enr.addr.to_string()),
        &[("REDIS_URL", down.as_str())],
    );
    let c = reqwest::Client::new();
    let (st, body, _) = submit(&c, &gw, "/api/v1/async-process", json!({"prompt": "x"})).await;
    assert_eq!(st, 503, "{body}");
    assert_eq!(body["error"], "job_store_unavailable");
    assert!(body.get("job_id").is_none());
    let (st, body) = job(&c, &gw, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(st, 503, "{body}");
    assert_eq!(
        gw.metric("gateway_jobs_total{status=\"accepted\"}").await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_redis_and_take_over_a_dead_ones_jobs() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let (gen, enr) = backends::both().await;
    let env = [
        ("REDIS_URL", redis.url()),
        ("JOB_LEASE_SECONDS", "2".to_string()),
        ("JOB_RECOVERY_SECONDS", "1".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut env_a = env.clone();
    env_a.push(("JOB_WORKERS", "1"));
    let c = reqwest::Client::new();
    // replica A: one worker, stuck on a generation target that never answers in time
    let hang = common::Echo::start_slow("hang", Duration::from_secs(60)).await;
    let a = Gateway::start_with(
        &table(&hang.addr.to_string(), &enr.addr.to_string()),
        &env_a,
    );
    // replica B: healthy
    let b = Gateway::start_with(&table(&gen.addr.to_string(), &enr.addr.to_string()), &env);
    let n = 30;
    let mut ids = Vec::new();
    for i in 0..n {
        let gw = if i % 3 == 0 { &b } else { &a };
        let (st, body, _) = submit(
            &c,
            gw,
            "/api/v1/async-process",
            json!({"prompt": format!("replica {i}")}),
        )
        .await;
        assert_eq!(st, 202, "{body}");
        ids.push(body["job_id"].as_str().unwrap().to_string());
    }
    // every replica reads every job; B takes the jobs waiting in A's queue, but not
    // the one A is running (leased)
    let stuck = ids[1].clone();
    let others: Vec<String> = ids.iter().filter(|id| **id != stuck).cloned().collect();
    let done = wait_final(&c, &b, &others, None, Duration::from_secs(30)).await;
    assert!(done.iter().all(|j| j["status"] == "done"));
    assert_eq!(job(&c, &a, &stuck).await.1["status"], "generating");
    // A dies; its lease runs out and B runs its job
    drop(a);
    let last = wait_final(
        &c,
        &b,
        std::slice::from_ref(&stuck),
        None,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(last[0]["status"], "done", "{}", last[0]);
    // each job ran once on the real backends
    assert_eq!(gen.counter("generation_requests_total").await, n as f64);
    assert_eq!(enr.counter("enrichment_requests_total").await, n as f64);
}
