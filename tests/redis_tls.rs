//! Redis over TLS (`rediss://`) against Debian's `redis-server` started TLS-only
//! (`--port 0 --tls-port`, client certificates required), with certificates made by
//! the test: two gateways share one rate-limit count through it with `REDIS_CA_FILE`,
//! `REDIS_CERT_FILE` and `REDIS_KEY_FILE`; the async job store keeps its jobs in it; a
//! wrong CA is refused with an error naming the certificate problem (and the limit
//! falls back as for any unreachable Redis); a missing CA file is a configuration error
//! that names the variable and the file.
#![allow(clippy::unwrap_used)]

mod common;
use common::redis::Redis;
use common::*;
use std::process::Command;

fn table(addr: std::net::SocketAddr, plugin: &str) -> String {
    format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n  - name: r\n    match: {{ path_prefix: /r }}\n    upstream: u\n    plugins: [{plugin}]\n"
    )
}

const LIMIT: &str = "{ name: rate_limit, average: 20, burst: 20, period: 1h, key: route, store: redis, store_timeout: 2s }";

fn env_of(redis: &Redis, ca: Option<&std::path::Path>) -> Vec<(&'static str, String)> {
    let mut env = redis.tls.as_ref().unwrap().env();
    if let Some(ca) = ca {
        env[0].1 = ca.display().to_string();
    }
    env.push(("REDIS_URL", redis.url()));
    env
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn statuses(url: String, n: usize) -> Vec<u16> {
    let c = reqwest::Client::new();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(c.get(&url).send().await.map_or(0, |r| r.status().as_u16()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_a_rate_limit_over_rediss() {
    let Some(redis) = Redis::start_tls() else {
        return;
    };
    let up = Echo::start("u").await;
    let env = env_of(&redis, None);
    let a = Gateway::start_with(&table(up.addr, LIMIT), &borrowed(&env));
    let b = Gateway::start_with(&table(up.addr, LIMIT), &borrowed(&env));
    let (ra, rb) = tokio::join!(statuses(a.url("/r"), 20), statuses(b.url("/r"), 20));
    let all: Vec<u16> = ra.iter().chain(&rb).copied().collect();
    let admitted = all.iter().filter(|s| **s == 200).count();
    assert!(all.iter().all(|s| *s == 200 || *s == 429), "{all:?}");
    assert_eq!(admitted, 20, "one count over TLS: {all:?}");
    assert_eq!(
        a.metric(
            "gateway_plugin_dependency_errors_total{dependency=\"redis\",plugin=\"rate_limit\"}"
        )
        .await,
        None,
        "{}",
        a.logs()
    );
    // the count lives in the TLS server
    let keys = redis.command("DBSIZE");
    assert!(keys.trim().parse::<u64>().unwrap() >= 1, "{keys}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_refused_with_a_clear_error() {
    let Some(redis) = Redis::start_tls() else {
        return;
    };
    let up = Echo::start("u").await;
    let other = redis.tls.as_ref().unwrap().other_ca.clone();
    let env = env_of(&redis, Some(&other));
    let gw = Gateway::start_with(&table(up.addr, LIMIT), &borrowed(&env));
    // fail-open as for any unreachable Redis (`on_store_error: local`): the local limit
    let got = statuses(gw.url("/r"), 25).await;
    assert_eq!(got.iter().filter(|s| **s == 200).count(), 20, "{got:?}");
    let logs = gw.logs();
    assert!(
        logs.contains("Redis is unreachable") && logs.contains("UnknownIssuer"),
        "{logs}"
    );
    let errors = gw
        .metric(
            "gateway_plugin_dependency_errors_total{dependency=\"redis\",plugin=\"rate_limit\"}",
        )
        .await;
    assert!(errors.is_some_and(|n| n >= 1.0), "{errors:?}");
    assert_eq!(redis.command("DBSIZE").trim(), "0");
}

#[test]
fn a_missing_ca_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("routes.yaml");
    std::fs::write(&f, table("127.0.0.1:9".parse().unwrap(), LIMIT)).unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let run = |args: &[&str]| {
        Command::new(gateway_bin())
            .args(args)
            .arg(&f)
            .env("REDIS_URL", "rediss://localhost:6380/")
            .env("REDIS_CA_FILE", &missing)
            .env("PORT", free_port().to_string())
            .env("METRICS_PORT", free_port().to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .output()
            .unwrap()
    };
    for args in [&["check"][..], &["--config"][..]] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            text.contains("REDIS_CA_FILE") && text.contains("no-such-ca.pem"),
            "{args:?}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_store_works_over_rediss() {
    let Some(redis) = Redis::start_tls() else {
        return;
    };
    let up = Echo::start("u").await;
    let routes = format!(
        r#"version: 1
upstreams:
  generation: {{ targets: [{{ addr: "{a}" }}] }}
  enrichment: {{ targets: [{{ addr: "{a}" }}] }}
routes:
  - name: async
    match: {{ path: /async, methods: [POST] }}
    async: {{ topic: generation-requests }}
  - name: jobs
    match: {{ path: "/jobs/{{job_id}}", methods: [GET] }}
    jobs: {{}}
"#,
        a = up.addr
    );
    let env = env_of(&redis, None);
    let gw = Gateway::start_with(&routes, &borrowed(&env));
    let c = reqwest::Client::new();
    let r = c
        .post(gw.url("/async"))
        .json(&serde_json::json!({"prompt": "over TLS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", gw.logs());
    let body: serde_json::Value = r.json().await.unwrap();
    let id = body["job_id"].as_str().unwrap().to_string();
    // the job is in the TLS server, and read back from it
    let key = format!("gateway:job:{id}");
    assert_eq!(redis.command(&format!("EXISTS {key}")).trim(), "1");
    let r = c.get(gw.url(&format!("/jobs/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["job_id"], id.as_str(), "{v}");
    // a second gateway on the same store answers for the job
    let other = Gateway::start_with(&routes, &borrowed(&env));
    let r = c
        .get(other.url(&format!("/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", other.logs());
}
