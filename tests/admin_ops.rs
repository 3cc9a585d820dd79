//! Operator views on the metrics port against a running gateway: `GET /admin/jobs/{id}`
//! (a job's whole record whoever submitted it, token required, 404s), and the upstream
//! connection-pool and in-flight gauges in `/metrics` and `/admin/upstreams` while
//! requests are in flight and after (connections in use, idle in the keep-alive pool,
//! opened and reused).
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const KEY: &str = "ak_alice_9d2f61c0";

/// A generation + enrichment pair on one loopback server: `/generate` answers
/// `{"text"}`, `/enrich` echoes the text back with a flag.
async fn stages() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::routing::post;
    let app = axum::Router::new()
        .route(
            "/generate",
            post(|axum::Json(v): axum::Json<Value>| async move {
                axum::Json(json!({"text": format!("generated for {}", v["prompt"])}))
            }),
        )
        .route(
            "/enrich",
            post(|axum::Json(v): axum::Json<Value>| async move {
                axum::Json(json!({"enriched": true, "text": v["text"]}))
            }),
        );
    let (addr, task) = serve_app(app).await;
    (addr, task)
}

async fn admin(c: &reqwest::Client, gw: &Gateway, path: &str) -> (u16, Value) {
    let r = c
        .get(gw.metrics_url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_job_record_whoever_owns_it() {
    let (addr, task) = stages().await;
    let keys = keys_file(&[("alice", KEY)]);
    let routes = format!(
        r#"version: 1
upstreams:
  generation: {{ targets: [{{ addr: "{addr}" }}] }}
  enrichment: {{ targets: [{{ addr: "{addr}" }}] }}
routes:
  - name: async-v1
    match: {{ path: /api/v1/async-process, methods: [POST] }}
    async: {{ topic: generation-requests }}
    plugins: [{{ name: api_key, keys_file: keys.yaml }}]
  - name: jobs-v1
    match: {{ path: "/api/v1/jobs/{{job_id}}", methods: [GET] }}
    jobs: {{}}
"#
    );
    let gw = Gateway::start_with_files(&routes, &[("keys.yaml", keys.as_bytes())], &[]);
    let c = reqwest::Client::new();
    let body = json!({"prompt": "hello", "max_tokens": 5, "password": "p4ss"});
    let id = jobs::submit_accepted(&c, &gw, "/api/v1/async-process", &body, Some(KEY)).await;
    let path = format!("/admin/jobs/{id}");

    // the owner's job is not readable anonymously on the API ...
    let anon = c
        .get(gw.url(&format!("/api/v1/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 404);
    // ... but is on the admin API, with the token only
    let r = c.get(gw.metrics_url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(gw.metrics_url(&path))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let job = loop {
        let (s, v) = admin(&c, &gw, &path).await;
        assert_eq!(s, 200, "{v}");
        if v["status"] == "done" || v["status"] == "failed" {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "job not final: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["job_id"], id.as_str());
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["owner"], "alice");
    assert_eq!(job["route"], "async-v1");
    assert_eq!(job["store"], "memory");
    assert_eq!(
        job["result"]["result"]["text"], "generated for \"hello\"",
        "{job}"
    );
    assert_eq!(job["error"], Value::Null);
    assert_eq!(job["callback"], Value::Null);
    for stage in ["queued", "generating", "enriching", "done"] {
        assert!(job["stages"][stage].is_string(), "{stage}: {job}");
    }
    assert_eq!(job["submitted_at"], job["stages"]["queued"]);
    assert_eq!(job["updated_at"], job["stages"]["done"]);
    assert_eq!(job["spec"]["generation"]["upstream"], "generation");
    assert_eq!(job["spec"]["request"]["prompt"], "hello");
    // secrets in what the job runs are redacted
    assert_eq!(job["spec"]["request"]["password"], "<redacted>");
    assert_eq!(job["spec"]["request"]["max_tokens"], 5);
    assert!(job["request_id"].is_string());

    // unknown and malformed ids, wrong method
    let unknown = format!("/admin/jobs/{}", uuid_like());
    assert_eq!(admin(&c, &gw, &unknown).await.0, 404);
    let (s, v) = admin(&c, &gw, "/admin/jobs/not-a-job").await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")));
    let r = c
        .delete(gw.metrics_url(&path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    task.abort();
}

/// A well-formed job id that no job has.
fn uuid_like() -> &'static str {
    "01900000-0000-7000-8000-000000000000"
}

fn series(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connection_and_in_flight_gauges() {
    let up = Echo::start_slow("slow", Duration::from_millis(600)).await;
    let gw = Gateway::start(&format!(
        "version: 1\nupstreams:\n  slow: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - {{ name: r, match: {{ path_prefix: /r }}, upstream: slow }}\n",
        up.addr
    ));
    let c = reqwest::Client::new();
    let labels = format!("target=\"{}\",upstream=\"slow\"", up.addr);
    let conn = |state: &str| format!("state=\"{state}\",target=\"{}\",upstream=\"slow\"", up.addr);
    let scrape = || async {
        reqwest::get(gw.metrics_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    // three requests at once: three in flight, three connections in use
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let url = gw.url("/r/x");
            tokio::spawn(async move { reqwest::get(url).await.unwrap().status().as_u16() })
        })
        .collect();
    let busy = wait_until(Duration::from_millis(500), || async {
        let t = scrape().await;
        series(&t, "gateway_upstream_requests_in_flight", &labels) == Some(3.0)
            && series(&t, "gateway_upstream_connections", &conn("in_use")) == Some(3.0)
    })
    .await;
    let text = scrape().await;
    assert!(busy.is_some(), "{text}");
    assert_eq!(
        series(&text, "gateway_upstream_connections", &conn("idle")),
        Some(0.0),
        "{text}"
    );
    let (_, ups) = admin(&c, &gw, "/admin/upstreams").await;
    assert_eq!(ups["slow"]["in_flight"], 3, "{ups}");
    assert_eq!(
        ups["slow"]["targets"][0]["connections"]["in_use"], 3,
        "{ups}"
    );
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }

    // after: nothing in flight, the three connections idle in the keep-alive pool
    let pooled = wait_until(Duration::from_secs(2), || async {
        let t = scrape().await;
        series(&t, "gateway_upstream_requests_in_flight", &labels) == Some(0.0)
            && series(&t, "gateway_upstream_connections", &conn("in_use")) == Some(0.0)
            && series(&t, "gateway_upstream_connections", &conn("idle")) == Some(3.0)
    })
    .await;
    let text = scrape().await;
    assert!(pooled.is_some(), "{text}");
    assert_eq!(
        series(&text, "gateway_upstream_connections_opened_total", &labels),
        Some(3.0)
    );
    // the next requests reuse pooled connections instead of opening new ones (counted
    // as opened or reused, every one; reuse required)
    for _ in 0..3 {
        assert_eq!(reqwest::get(gw.url("/r/y")).await.unwrap().status(), 200);
    }
    let text = scrape().await;
    let opened = series(&text, "gateway_upstream_connections_opened_total", &labels).unwrap();
    let reused = series(&text, "gateway_upstream_connections_reused_total", &labels).unwrap();
    assert_eq!(opened + reused, 6.0, "{text}");
    assert!(reused >= 1.0, "{text}");
    let (_, ups) = admin(&c, &gw, "/admin/upstreams").await;
    let pool = &ups["slow"]["connections"];
    assert_eq!(pool["in_use"], 0, "{ups}");
    assert!(pool["idle"].as_u64().unwrap() >= 1, "{ups}");
    assert_eq!(
        (pool["opened"].as_f64(), pool["reused"].as_f64()),
        (Some(opened), Some(reused))
    );
}
