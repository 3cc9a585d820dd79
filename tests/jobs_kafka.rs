//! Async jobs in Kafka mode, end to end on a real broker (tansu) with the real
//! api-generation and api-enrichment processes: 200 concurrent jobs each reach `done`
//! with one result and one webhook, through a SIGKILL of api-generation; a gateway
//! restarted mid-run with the Redis store loses no job; a poison job ends `failed` and
//! in the dead-letter topic; another consumer cannot read a job; with the broker down
//! a submit answers 503 `queue_unavailable` and nothing is recorded; the job events
//! stream (`GET /api/v1/jobs/{id}/events`) sends each state of a Kafka job as the
//! stages move it, and ends after the final one.
//! Without `tansu` the tests fail, unless `SKIP_KAFKA_TESTS=1` (then skipped with a
//! notice). They run one at a time (`ONE_AT_A_TIME`).
#![allow(clippy::unwrap_used)]

mod backends;
mod common;
mod kafka;

use common::redis::Redis;
use common::{keys_file, serve_app, Gateway};
use futures::future::join_all;
use kafka::{Broker, Service};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "kafka-webhook-secret";
const ALICE: &str = "ak_alice_kafka_5e1f";
const BOB: &str = "ak_bob_kafka_77c2";

/// The Kafka tests run one at a time: each starts a broker, both backends and a gateway,
/// and three of those at once on a 2-core CI machine starve tansu's group coordinator
/// (a run that lost the race with rebalances timed out where alone it takes seconds).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What each Kafka test starts with: its turn ([`ONE_AT_A_TIME`]), a broker, and a folder
/// for the backends' files; `None` as for [`Broker::start`].
struct Turn {
    _one: tokio::sync::MutexGuard<'static, ()>,
    broker: Broker,
    dir: tempfile::TempDir,
}

async fn turn() -> Option<Turn> {
    let one = ONE_AT_A_TIME.lock().await;
    Some(Turn {
        _one: one,
        broker: Broker::start()?,
        dir: tempfile::tempdir().unwrap(),
    })
}

/// Not a test: the backend process the tests start (this binary run again).
#[test]
#[ignore = "a backend process that the Kafka tests start; does nothing by itself"]
fn backend_process() {
    if let Ok(which) = std::env::var(kafka::ROLE) {
        kafka::run_backend(&which);
    }
}

/// The async and jobs routes, keyed by API key (the stage upstreams are unused in
/// Kafka mode, but a route table names them).
fn table() -> String {
    r#"version: 1
upstreams:
  generation: { targets: [{ addr: "127.0.0.1:9" }] }
  enrichment: { targets: [{ addr: "127.0.0.1:9" }] }
routes:
  - name: async-process-v1
    match: { path: /api/v1/async-process, methods: [POST] }
    plugins: [{ name: api_key, keys_file: keys.yaml }]
    async:
      topic: generation-requests
      callback: { allow_hosts: ["127.0.0.1"], allow_private_networks: true, attempts: 5, backoff: 50ms, max_backoff: 500ms, timeout: 2s }
  - name: jobs-v1
    match: { path: "/api/v1/jobs/{job_id}", methods: [GET] }
    plugins: [{ name: api_key, keys_file: keys.yaml }]
    jobs: {}
  - name: job-events-v1
    match: { path: "/api/v1/jobs/{job_id}/events", methods: [GET] }
    plugins: [{ name: api_key, keys_file: keys.yaml }]
    jobs: {}
"#
    .to_string()
}

/// A gateway in Kafka mode on `broker` (plus `extra` env).
fn gateway(broker: &Broker, extra: &[(&str, &str)]) -> Gateway {
    let keys = keys_file(&[("alice", ALICE), ("bob", BOB)]);
    let bootstrap = broker.bootstrap();
    let mut env = vec![
        ("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str()),
        ("KAFKA_PUBLISH_TIMEOUT_MS", "1000"),
        ("WEBHOOK_SECRET", SECRET),
    ];
    env.extend_from_slice(extra);
    Gateway::start_with_files(&table(), &[("keys.yaml", keys.as_bytes())], &env)
}

/// Both backends on `broker`.
fn backends(
    broker: &Broker,
    dir: &std::path::Path,
    gen_env: &[(&str, &str)],
) -> (Service, Service) {
    let b = broker.bootstrap();
    let mut env = vec![("KAFKA_BOOTSTRAP_SERVERS", b.as_str())];
    env.extend_from_slice(gen_env);
    let gen = Service::start("generation", &env, dir);
    let enr = Service::start(
        "enrichment",
        &[("KAFKA_BOOTSTRAP_SERVERS", b.as_str())],
        dir,
    );
    (gen, enr)
}

const SUBMIT: &str = "/api/v1/async-process";

async fn submit(c: &reqwest::Client, gw: &Gateway, key: &str, body: Value) -> (u16, Value) {
    common::jobs::submit(c, gw, SUBMIT, &body, Some(key)).await
}

/// Submits `body` as alice, asserting a 202: the job's id.
async fn submit_ok(c: &reqwest::Client, gw: &Gateway, body: Value) -> String {
    common::jobs::submit_accepted(c, gw, SUBMIT, &body, Some(ALICE)).await
}

/// The job ids of submit answers, each checked to be a 202.
fn accepted_ids(answers: &[(u16, Value)]) -> Vec<String> {
    answers
        .iter()
        .map(|(st, v)| {
            assert_eq!(*st, 202, "{v}");
            v["job_id"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn job(c: &reqwest::Client, gw: &Gateway, key: &str, id: &str) -> (u16, Value) {
    common::jobs::status(c, gw, id, Some(key)).await
}

/// Polls (as alice) until every job is final; panics after `limit`.
async fn wait_final(
    c: &reqwest::Client,
    gw: &Gateway,
    ids: &[String],
    limit: Duration,
) -> Vec<Value> {
    common::jobs::wait_final(c, gw, ids, Some(ALICE), limit).await
}

/// A webhook receiver that counts the deliveries per job.
async fn receiver() -> (std::net::SocketAddr, Arc<Mutex<HashMap<String, usize>>>) {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                let want = common::jobs::signature(SECRET, &body);
                assert_eq!(h["x-signature"].to_str().unwrap(), want);
                let id = h["x-job-id"].to_str().unwrap().to_string();
                *s.lock().unwrap().entry(id).or_default() += 1;
                "ok"
            }
        }),
    );
    let (addr, _) = serve_app(app).await;
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_reach_done_once_through_a_generation_kill() {
    let Some(Turn { _one, broker, dir }) = turn().await else {
        return;
    };
    let b = broker.bootstrap();
    let _enr = Service::start(
        "enrichment",
        &[("KAFKA_BOOTSTRAP_SERVERS", b.as_str())],
        dir.path(),
    );
    let gw = gateway(&broker, &[]);
    let (hook, seen) = receiver().await;
    let c = reqwest::Client::new();
    let started = Instant::now();

    let n = 200;
    let answers = join_all((0..n).map(|i| {
        let (c, gw) = (c.clone(), &gw);
        let body = json!({
            "prompt": format!("the fox and job {i}"),
            "max_tokens": 512,
            "callback_url": format!("http://{hook}/hook"),
        });
        async move { submit(&c, gw, ALICE, body).await }
    }))
    .await;
    let ids = accepted_ids(&answers);

    // another consumer cannot read alice's job; no key is 401
    let (st, _) = job(&c, &gw, BOB, &ids[0]).await;
    assert_eq!(st, 404, "bob must not see alice's job");
    let r = c
        .get(gw.url(&format!("/api/v1/jobs/{}", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // api-generation starts on the backlog one job at a time (its offsets move slowly)
    // and is killed with SIGKILL as soon as a first job is done
    let gen_env = [
        ("KAFKA_BOOTSTRAP_SERVERS", b.as_str()),
        ("KAFKA_BATCH_SIZE", "1"),
        ("MAX_CONCURRENT_REQUESTS", "1"),
        // the restarted process takes its partitions back at once (tansu 0.6 does not
        // always move a SIGKILLed dynamic member's partitions to a new member)
        ("KAFKA_GROUP_INSTANCE_ID", "generation-0"),
    ];
    let mut gen = Service::start("generation", &gen_env, dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while gw
        .metric("gateway_jobs_total{status=\"done\"}")
        .await
        .unwrap_or(0.0)
        < 1.0
    {
        assert!(Instant::now() < deadline, "no job done: {}", gen.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gen.kill();
    // the jobs still `queued` once the killed process's last outputs landed were not
    // generated: the kill was mid-run
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut queued = 0;
    for id in &ids {
        if job(&c, &gw, ALICE, id).await.1["status"] == "queued" {
            queued += 1;
        }
    }
    println!("api-generation killed with {queued} jobs not generated");
    assert!(queued > 0, "the kill came too late to be mid-run");
    tokio::time::sleep(Duration::from_millis(500)).await;
    gen.restart();

    let jobs = wait_final(&c, &gw, &ids, Duration::from_secs(120)).await;
    for (id, j) in ids.iter().zip(&jobs) {
        assert_eq!(j["status"], "done", "{j}");
        let r = &j["result"];
        assert!(r["result"].is_object(), "enrichment's answer: {j}");
        assert!(r["generation"]["text"].is_string(), "{j}");
        assert_eq!(
            r["generation"]["seed"],
            jobbus::seed_for(id),
            "seed from the job id"
        );
        let steps: Vec<&str> = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["generation", "enrichment"], "{j}");
        // (a late `generating`/`enriching` event is ignored, so only these are sure)
        for st in ["queued", "done"] {
            assert!(j["stages"][st].is_string(), "stage {st} missing: {j}");
        }
    }
    // one webhook per job: no job finished twice
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), n, "every job's webhook delivered");
    // webhooks are at-least-once (docs/flows.md): a try whose answer is lost (timeout,
    // reset) is tried again, so a receiver may count a job twice; then the job's record
    // must show those tries. A job finished twice would show one try per webhook.
    for (id, &k) in seen.iter().filter(|(_, &k)| k > 1) {
        let (_, j) = job(&c, &gw, ALICE, id).await;
        let tries = j["callback"]["attempts"].as_u64().unwrap_or(0);
        println!(
            "job {id}: {k} deliveries, {tries} tries recorded: {}",
            j["callback"]
        );
        assert!(
            tries >= k as u64,
            "job {id} delivered {k} times with {tries} tries: finished twice? {j}"
        );
    }
    assert_eq!(
        gw.metric("gateway_jobs_total{status=\"done\"}").await,
        Some(n as f64)
    );
    println!(
        "{n} jobs done once each through a SIGKILL of api-generation in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_mid_run_with_redis_loses_no_job() {
    let Some(Turn { _one, broker, dir }) = turn().await else {
        return;
    };
    let Some(redis) = Redis::start() else {
        return;
    };
    let (_gen, _enr) = backends(&broker, dir.path(), &[("MAX_CONCURRENT_REQUESTS", "2")]);
    let url = redis.url();
    let env = [("REDIS_URL", url.as_str())];
    let mut gw = gateway(&broker, &env);
    let c = reqwest::Client::new();
    let n = 100;
    let answers = join_all((0..n).map(|i| {
        let (c, gw) = (c.clone(), &gw);
        async move {
            submit(
                &c,
                gw,
                ALICE,
                json!({"prompt": format!("restart {i}"), "max_tokens": 128}),
            )
            .await
        }
    }))
    .await;
    let ids = accepted_ids(&answers);
    // SIGKILL the gateway at once, while jobs are in flight
    let (_, last) = job(&c, &gw, ALICE, &ids[n - 1]).await;
    let _ = gw.child.kill();
    println!("gateway killed; the last job was {}", last["status"]);
    let _ = gw.child.wait();
    let gw2 = gateway(&broker, &env);
    let jobs = wait_final(&c, &gw2, &ids, Duration::from_secs(120)).await;
    let done = jobs.iter().filter(|j| j["status"] == "done").count();
    assert_eq!(done, n, "every accepted job done after the restart");
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_jobs_fail_into_the_dead_letter_topic_and_a_down_broker_refuses_submits() {
    let Some(Turn {
        _one,
        mut broker,
        dir,
    }) = turn().await
    else {
        return;
    };
    let Some(redis) = Redis::start() else {
        return;
    };
    let (_gen, _enr) = backends(&broker, dir.path(), &[]);
    let url = redis.url();
    let gw = gateway(&broker, &[("REDIS_URL", url.as_str())]);
    let c = reqwest::Client::new();

    // a request api-generation refuses (blank prompt) is dead-lettered and fails
    let id = submit_ok(&c, &gw, json!({"prompt": "   "})).await;
    let jobs = wait_final(&c, &gw, std::slice::from_ref(&id), Duration::from_secs(60)).await;
    assert_eq!(jobs[0]["status"], "failed", "{}", jobs[0]);
    let err = jobs[0]["error"].as_str().unwrap();
    assert!(err.contains("generation") && err.contains("422"), "{err}");
    assert!(jobs[0].get("result").is_none());

    // a message that is not a job at all is dead-lettered too
    kafka::produce_raw(
        &broker.bootstrap(),
        "generation-requests",
        "not-a-job",
        b"{oops",
    )
    .await;
    let dead = kafka::read_topic(
        &broker.bootstrap(),
        "jobs-dead-letter",
        2,
        Duration::from_secs(30),
    )
    .await;
    let by_key: HashMap<_, _> = dead.into_iter().collect();
    let d = &by_key[&id];
    assert_eq!(d["stage"], "generation");
    assert_eq!(d["job_id"], id.as_str());
    let d = &by_key["not-a-job"];
    assert!(d["error"].as_str().unwrap().contains("unparseable"), "{d}");
    assert_eq!(d["payload"], "{oops");

    // broker down: 503 queue_unavailable, and no job recorded
    let before = redis_keys(&redis);
    broker.stop();
    let t = Instant::now();
    let (st, v) = submit(&c, &gw, ALICE, json!({"prompt": "nobody home"})).await;
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["error"], "queue_unavailable");
    assert!(v.get("job_id").is_none());
    println!("refused after {:?}", t.elapsed());
    assert_eq!(
        redis_keys(&redis),
        before,
        "nothing recorded for the refused job"
    );
    assert_eq!(
        gw.metric("gateway_jobs_total{status=\"accepted\"}").await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_follow_a_kafka_job_as_the_stages_move_it() {
    let Some(Turn { _one, broker, dir }) = turn().await else {
        return;
    };
    let b = broker.bootstrap();
    let kafka = [("KAFKA_BOOTSTRAP_SERVERS", b.as_str())];
    // no enrichment consumer yet: the job stops at `enriching`
    let _gen = Service::start("generation", &kafka, dir.path());
    let gw = gateway(&broker, &[]);
    let c = reqwest::Client::new();
    let id = submit_ok(&c, &gw, json!({"prompt": "The fox", "max_tokens": 16})).await;
    let mut events = common::jobs::events(&c, &gw, &id, Some(ALICE)).await;
    let wait = Duration::from_secs(60);
    for state in ["queued", "generating", "enriching"] {
        let e = events.expect(wait).await;
        assert_eq!(e.name.as_deref(), Some(state), "{e:?}");
        assert_eq!(e.data["status"], state);
        assert_eq!(e.data["job_id"], id.as_str());
        assert!(e.data["at"].is_string(), "{e:?}");
    }
    // the stream stays open while the job waits for its enrichment stage
    let more = tokio::time::timeout(Duration::from_secs(1), events.next()).await;
    assert!(more.is_err(), "nothing after `enriching` yet: {more:?}");
    let _enr = Service::start("enrichment", &kafka, dir.path());
    let done = events.expect(wait).await;
    assert_eq!(done.name.as_deref(), Some("done"), "{done:?}");
    assert_eq!(done.data["status"], "done");
    assert_eq!(done.data["result"]["generation"]["tokens"], 16);
    assert!(done.data["result"]["result"].is_object(), "{done:?}");
    let (_, polled) = job(&c, &gw, ALICE, &id).await;
    assert_eq!(done.data["result"], polled["result"]);
    // and the stream ends after the final event
    let end = tokio::time::timeout(Duration::from_secs(10), events.next()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");

    // a job generation refuses: dead-lettered, its stream ends with `failed`
    let id = submit_ok(&c, &gw, json!({"prompt": "   "})).await;
    let mut events = common::jobs::events(&c, &gw, &id, Some(ALICE)).await;
    let mut names = Vec::new();
    let last = loop {
        let e = events.expect(wait).await;
        names.push(e.name.clone().unwrap());
        if e.data["status"] == "failed" {
            break e;
        }
    };
    assert_eq!(
        names.first().map(String::as_str),
        Some("queued"),
        "{names:?}"
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("failed"),
        "{names:?}"
    );
    let err = last.data["error"].as_str().unwrap();
    assert!(err.contains("422"), "{err}");
    let end = tokio::time::timeout(Duration::from_secs(10), events.next()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}

/// The job hashes in Redis.
fn redis_keys(r: &Redis) -> usize {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &r.port.to_string(),
            "--scan",
            "--pattern",
            "gateway:job:*",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}
