//! The client SDKs (`sdk/python`, `sdk/js`) against the real stack: the gateway on the
//! repository's routes.yaml (its async route additionally allowing callbacks to
//! 127.0.0.1, for the webhook test) in front of the real api-generation and
//! api-enrichment, on free loopback ports. Runs `pytest sdk/python/tests` and
//! `node --test` on the built `sdk/js` with `GATEWAY_URL` set, and asserts they pass.
//!
//! Needs the tools `scripts/test.sh` installs: a Python with the SDK and its test
//! extras (`SDK_PYTHON`, default `target/sdk-venv/bin/python`) and Node 20+ with
//! `sdk/js/node_modules` (`npm ci`). Fails with a message saying so when missing.
#![allow(clippy::unwrap_used)]

mod backends;
mod common;

use backends::{wait_up, Backend};
use common::Gateway;
use std::path::{Path, PathBuf};
use std::process::Command;

const SECRET: &str = "sdk-test-webhook-secret";
const ASYNC_ROUTE: &str = "async: { topic: generation-requests }";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's routes.yaml, with callbacks to 127.0.0.1 allowed on the async route.
fn routes() -> String {
    let text = std::fs::read_to_string(repo().join("routes.yaml")).unwrap();
    assert!(
        text.contains(ASYNC_ROUTE),
        "routes.yaml no longer has `{ASYNC_ROUTE}`: update tests/sdk.rs"
    );
    text.replace(
        ASYNC_ROUTE,
        r#"async: { topic: generation-requests, callback: { allow_hosts: ["127.0.0.1"], allow_private_networks: true, attempts: 3, backoff: 50ms } }"#,
    )
}

fn python() -> PathBuf {
    let py = std::env::var_os("SDK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/sdk-venv/bin/python"));
    let ok = Command::new(&py)
        .args(["-c", "import api_gateway_client, httpx, pytest, anyio"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "no Python with the SDK and pytest at {} (SDK_PYTHON): run scripts/test.sh, which installs them, \
         or: python3 -m venv target/sdk-venv && target/sdk-venv/bin/pip install -e 'sdk/python[test]'",
        py.display()
    );
    py
}

fn node(js: &Path) {
    let version = Command::new("node").arg("--version").output();
    let major = version
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            v.trim()
                .trim_start_matches('v')
                .split('.')
                .next()?
                .parse::<u32>()
                .ok()
        });
    assert!(
        major.is_some_and(|m| m >= 20),
        "Node.js 20+ is needed for the TypeScript SDK tests (found {major:?}): apt-get install nodejs npm"
    );
    assert!(
        js.join("node_modules/typescript/bin/tsc").exists(),
        "sdk/js/node_modules is missing: run scripts/test.sh, which installs it, or: (cd sdk/js && npm ci)"
    );
}

/// Runs `cmd`, prints its output, and returns it; panics when it fails.
fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("==== {what}\n{text}");
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_typescript_sdks_pass_against_the_real_stack() {
    let py = python();
    let js = repo().join("sdk/js");
    node(&js);

    let generation = Backend::generation();
    let enrichment = Backend::enrichment();
    wait_up(&generation).await;
    wait_up(&enrichment).await;
    let gen_url = format!("http://{}", generation.addr);
    let enr_url = format!("http://{}", enrichment.addr);
    let gw = Gateway::start_with(
        &routes(),
        &[
            ("API_GENERATION_URL", gen_url.as_str()),
            ("API_ENRICHMENT_URL", enr_url.as_str()),
            ("WEBHOOK_SECRET", SECRET),
            ("ACCESS_LOG", "off"),
        ],
    );
    let url = gw.url("");
    // the pools' first health checks must pass before /ready (and the flows) answer
    let ready = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if ready
            .get(gw.url("/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "the gateway never became ready");

    let env = [
        ("GATEWAY_URL".to_string(), url),
        ("WEBHOOK_SECRET".to_string(), SECRET.to_string()),
        ("SDK_TEST_WEBHOOKS".to_string(), "1".to_string()),
    ];
    let (py_out, js_out) = tokio::task::spawn_blocking(move || {
        let py_out = run(
            "pytest sdk/python/tests",
            Command::new(&py)
                .args([
                    "-m",
                    "pytest",
                    "-q",
                    "-rs",
                    "-p",
                    "no:cacheprovider",
                    "sdk/python/tests",
                ])
                .current_dir(repo())
                .envs(env.clone()),
        );
        run(
            "tsc (sdk/js)",
            Command::new("node")
                .args(["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"])
                .current_dir(&js),
        );
        let js_out = run(
            "node --test (sdk/js)",
            Command::new("node")
                .args(["--test", "--test-reporter=tap", "test/"])
                .current_dir(&js)
                .envs(env),
        );
        (py_out, js_out)
    })
    .await
    .unwrap();

    assert!(py_out.contains(" passed"), "pytest ran no test:\n{py_out}");
    assert!(
        !py_out.contains("skipped") && !py_out.contains("failed"),
        "{py_out}"
    );
    assert!(
        js_out.contains("# fail 0") && js_out.contains("# skipped 0"),
        "{js_out}"
    );
    assert!(
        !js_out.contains("# pass 0"),
        "node --test ran no test:\n{js_out}"
    );
    drop(gw);
}
