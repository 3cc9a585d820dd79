//! The alert rules' runbooks and unit-test coverage, and the Grafana dashboard against
//! a real Prometheus scraping a real gateway under a little traffic.

use super::common::{free_port, Echo, Gateway};
use super::{root, tool, PROMETHEUS};
use serde_json::Value as Json;
use serde_yaml::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The alerts the issue asks for (5xx ratio, p95 latency, breaker open, upstream down,
/// reload failing, job backlog).
const REQUIRED_ALERTS: [&str; 6] = [
    "GatewayHigh5xxRatio",
    "GatewayHighLatencyP95",
    "GatewayCircuitBreakerOpen",
    "GatewayUpstreamDown",
    "GatewayConfigReloadFailing",
    "GatewayJobBacklog",
];

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Every alert has a runbook section in docs/operations.md, and unit tests where it
/// fires and where it must not.
pub fn check_alerts_have_runbooks_and_tests() {
    let ops = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let runbook = ops
        .split_once("\n## Runbook")
        .expect("docs/operations.md has no \"## Runbook\" section")
        .1;
    let runbook = runbook.split("\n## ").next().unwrap();
    let anchors: Vec<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(anchor)
        .collect();
    let rules = yaml("deploy/prometheus/alerts.yaml");
    let tests = yaml("deploy/prometheus/alerts_test.yaml");
    let cases: Vec<&Value> = tests["tests"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_sequence().unwrap().iter())
        .collect();
    let mut names = Vec::new();
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let name = rule["alert"].as_str().unwrap();
        names.push(name);
        let url = rule["annotations"]["runbook_url"].as_str().unwrap_or("");
        let (page, frag) = url
            .split_once('#')
            .unwrap_or_else(|| panic!("{name}: runbook_url {url:?}"));
        assert_eq!(page, "docs/operations.md", "{name}");
        assert!(
            anchors.iter().any(|a| a == frag),
            "{name}: no \"### \" heading with anchor #{frag} in the Runbook section (have {anchors:?})"
        );
        let mine = cases
            .iter()
            .filter(|c| c["alertname"].as_str() == Some(name));
        let (mut fires, mut quiet) = (false, false);
        for c in mine {
            let n = c["exp_alerts"].as_sequence().map_or(0, |s| s.len());
            fires |= n > 0;
            quiet |= n == 0;
        }
        assert!(
            fires && quiet,
            "{name}: needs a firing and a not-firing unit test"
        );
    }
    for r in REQUIRED_ALERTS {
        assert!(names.contains(&r), "alert {r} is missing");
    }
    println!(
        "{} alerts, each with a runbook section and firing/not-firing tests",
        names.len()
    );
}

/// A Prometheus server, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    async fn start(metrics_port: u16) -> Prometheus {
        let bin = tool("prometheus", PROMETHEUS);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        let rules = root().join("deploy/prometheus/alerts.yaml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
                 rule_files: [\"{}\"]\n\
                 scrape_configs:\n  - job_name: api-gateway\n    static_configs: [{{ targets: [\"127.0.0.1:{metrics_port}\"] }}]\n",
                rules.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("prometheus.err")).unwrap())
            .spawn()
            .unwrap();
        let p = Prometheus {
            child,
            port,
            _dir: dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = reqwest::get(p.url("/-/ready")).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not start:\n{}",
                p.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn logs(&self) -> String {
        let err = self.log.with_file_name("prometheus.err");
        std::fs::read_to_string(&self.log).unwrap_or_default()
            + &std::fs::read_to_string(err).unwrap_or_default()
    }

    /// The result vector of an instant query.
    async fn query(&self, expr: &str) -> Vec<Json> {
        let r: Json = reqwest::Client::new()
            .get(self.url("/api/v1/query"))
            .query(&[("query", expr)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], "success", "query {expr}: {r}");
        r["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    async fn scalar(&self, expr: &str) -> f64 {
        let r = self.query(expr).await;
        r.first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Panels that cannot have data outside a cluster or on this branch, and why.
fn why_no_data(expr: &str) -> Option<&'static str> {
    [
        ("kube_", "kube-state-metrics exists only in a cluster"),
        (
            "gateway_rate_limit_hits_total",
            "no rate_limit plugin on this branch: no 429 to count",
        ),
        (
            "gateway_auth_",
            "no authentication plugin on this branch: nothing to count",
        ),
        (
            "gateway_jobs_",
            "async job metrics are not exported on this branch yet",
        ),
    ]
    .into_iter()
    .find(|(m, _)| expr.contains(m))
    .map(|(_, why)| why)
}

/// `dead` and `dead2` are closed ports; two of them because health, breaker and
/// ejection state is kept per address across pools, and only `dead` is health-checked.
fn routes(echo: &str, dead: &str, dead2: &str) -> String {
    format!(
        r#"version: 1
upstreams:
  ok:
    targets: [{{ addr: "{echo}" }}]
    health_check: {{ path: /health, interval: 1s }}
    circuit_breaker: {{ failure_threshold: 5, open_for: 60s }}
  flaky:
    targets: [{{ addr: "{echo}" }}, {{ addr: "{dead2}" }}]
    circuit_breaker: {{ failure_threshold: 2, open_for: 60s }}
    retry: {{ attempts: 3, backoff: 10ms, on: [connect_failure] }}
  dead:
    targets: [{{ addr: "{dead}" }}]
    health_check: {{ path: /health, interval: 1s }}
routes:
  - {{ name: ok, match: {{ path: /api/ok }}, upstream: ok }}
  - {{ name: flaky, match: {{ path: /api/flaky }}, upstream: flaky }}
  - {{ name: dead, match: {{ path: /api/dead }}, upstream: dead }}
  - name: private
    match: {{ path: /api/private }}
    upstream: ok
    plugins: [{{ name: ip_restriction, allow: [10.0.0.0/8] }}]
"#
    )
}

/// A little traffic of every kind this branch can produce: 200s, retried requests,
/// 503s of a dead upstream, 404s, 403s of a plugin, and two reloads.
async fn traffic(gw: &Gateway, text: &str, for_: Duration) -> u64 {
    let c = reqwest::Client::new();
    let start = Instant::now();
    let mut sent = 0;
    let mut reloaded = false;
    while start.elapsed() < for_ {
        for path in [
            "/api/ok",
            "/api/ok",
            "/api/flaky",
            "/api/dead",
            "/nope",
            "/api/private",
        ] {
            let _ = c.get(gw.url(path)).send().await.unwrap().bytes().await;
            sent += 1;
        }
        if !reloaded && start.elapsed() > for_ / 2 {
            reloaded = true;
            gw.write_config(&format!("{text}# touched\n"));
            let r = gw.admin_reload().await;
            assert_eq!(r.status(), 200);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sent
}

pub async fn scrape_and_query_dashboard() {
    let echo = Echo::start("ok").await;
    let dead = format!("127.0.0.1:{}", free_port());
    let dead2 = format!("127.0.0.1:{}", free_port());
    let text = routes(&echo.addr.to_string(), &dead, &dead2);
    let gw = Gateway::start(&text);
    let prom = Prometheus::start(gw.metrics_port).await;
    let sent = traffic(&gw, &text, Duration::from_secs(6)).await;
    // at least 4 scrapes within the rate window, and the last traffic scraped
    let deadline = Instant::now() + Duration::from_secs(20);
    while prom
        .scalar(r#"count_over_time(up{job="api-gateway"}[30s])"#)
        .await
        < 4.0
        || prom
            .scalar(r#"sum(gateway_config_reloads_total{job="api-gateway"})"#)
            .await
            < 1.0
    {
        assert!(Instant::now() < deadline, "no scrapes:\n{}", prom.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let series = prom.scalar(r#"count({job="api-gateway"})"#).await;
    let names = prom
        .scalar(r#"count(count by (__name__) ({job="api-gateway"}))"#)
        .await;
    println!("sent {sent} requests; prometheus holds {series} series of {names} metric names from the gateway");

    let dash: Json = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/api-gateway.json")).unwrap(),
    )
    .unwrap();
    let (mut with, mut without, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for panel in dash["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap();
        let mut panel_has_data = false;
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$__range", "2m")
                .replace("$job", "api-gateway")
                .replace("$namespace", "default");
            let n = prom.query(&expr).await.len();
            panel_has_data |= n > 0;
            match (n, why_no_data(&expr)) {
                (0, Some(why)) => without.push(format!("{title} [{expr}]: {why}")),
                (0, None) => missing.push(format!("{title}: {expr}")),
                _ => println!("  data: {title} [{}]: {n} series", t["legendFormat"]),
            }
        }
        if panel_has_data {
            with.push(title);
        }
    }
    let panels = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
        .count();
    println!("panels with data: {}/{panels}: {with:?}", with.len());
    for w in &without {
        println!("  no data (expected): {w}");
    }
    assert!(
        missing.is_empty(),
        "dashboard queries without data:\n{}",
        missing.join("\n")
    );

    // the alert rules load and evaluate in a real Prometheus
    let rules: Json = reqwest::get(prom.url("/api/v1/rules"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded: Vec<&Json> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .collect();
    assert!(loaded.len() >= REQUIRED_ALERTS.len(), "{rules}");
    for r in &loaded {
        assert_ne!(
            r["health"], "err",
            "rule {} fails: {}",
            r["name"], r["lastError"]
        );
    }
    println!(
        "{} alert rules loaded and evaluated by prometheus",
        loaded.len()
    );
}
