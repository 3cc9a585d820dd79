//! Zero-downtime binary upgrade under continuous load: a new process started with
//! `serve --upgrade` takes the listening sockets of the running one (SIGQUIT, through
//! the upgrade socket); the old one drains and exits. No request may fail.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_under_load_drops_nothing() {
    let up = Echo::start("u").await;
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("upgrade.sock");
    let sock_s = sock.display().to_string();
    let old = Gateway::start_with(
        &format!("version: 1\nserver: {{ grace_period: 2s }}\nupstreams:\n  u: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - {{ name: e, match: {{ path_prefix: /e }}, upstream: u }}\n", up.addr),
        &[("UPGRADE_SOCK", &sock_s)],
    );

    // half the clients reuse keep-alive connections, half open one per request
    let load = Load::start_with(
        4,
        old.url("/e/x"),
        |i| {
            if i % 2 == 0 {
                reqwest::Client::new()
            } else {
                reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap()
            }
        },
        |r| r.status() == 200,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let new_log = old.dir.path().join("new.log");
    let new = Command::new(gateway_bin())
        .arg("--config")
        .arg(&old.config)
        .args(["serve", "--upgrade"])
        .env("PORT", old.port.to_string())
        .env("METRICS_PORT", old.metrics_port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("GATEWAY_WORKERS", "2")
        .env("UPGRADE_SOCK", &sock_s)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&new_log).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // killed whatever happens, so a failed assertion leaves no process behind
    let mut new = KillOnDrop(new);
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "no upgrade socket");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = load.ok();
    assert!(Command::new("kill")
        .args(["-QUIT", &old.pid().to_string()])
        .status()
        .unwrap()
        .success());

    // the old process hands over, drains and exits; the load goes on meanwhile
    let mut old = old;
    let t = Instant::now();
    while old.child.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "old process still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let at_exit = load.ok();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let Tally { ok, failed } = load.stop().await;
    println!("upgrade: {ok} requests ok, {failed} failed");
    assert!(
        new.0.try_wait().unwrap().is_none(),
        "the new process died: {}",
        std::fs::read_to_string(&new_log).unwrap_or_default()
    );
    assert_eq!(failed, 0, "requests failed during the upgrade");
    assert!(at_exit > before, "no request served during the hand-over");
    assert!(
        ok > at_exit,
        "the new process served nothing after the old one exited"
    );
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
