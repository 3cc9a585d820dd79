//! The gateway in its container's conditions, without a container runtime: uid/gid
//! 1000, a read-only root filesystem, a tmpfs on /tmp, and routes.yaml in a directory
//! laid out like a mounted ConfigMap (`routes.yaml -> ..data/routes.yaml`,
//! `..data -> ..<version>`), then a ConfigMap update (the kubelet's `..data` swap) and a
//! SIGTERM. Needs root, a mount namespace, `unshare` and `setpriv` (util-linux): without
//! them the test fails, unless `SKIP_READ_ONLY_ROOT_TEST=1` says to skip it (with a
//! notice): a test that checked nothing must not pass as green.

use super::common::{free_port, gateway_bin};
use super::root;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The deployed routes.yaml with the headless Service names replaced by closed ports.
fn deployed_routes(extra_route: bool) -> String {
    let text = std::fs::read_to_string(root().join("deploy/k8s/base/routes.yaml")).unwrap();
    let mut text = text
        .replace(
            "api-generation-headless:8080",
            &format!("127.0.0.1:{}", free_port()),
        )
        .replace(
            "api-enrichment-headless:8080",
            &format!("127.0.0.1:{}", free_port()),
        );
    if extra_route {
        text.push_str(
            "\n  - { name: added-by-configmap, match: { path: /added }, upstream: generation }\n",
        );
    }
    text
}

fn write_version(dir: &Path, version: &str, text: &str) {
    let v = dir.join(version);
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("routes.yaml"), text).unwrap();
    std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        v.join("routes.yaml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // the kubelet's swap: a new symlink renamed over ..data
    symlink(version, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
}

async fn metric(port: u16, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// Set to `1`, a host that cannot run the test (not root, no mount namespace, no
/// `unshare`) skips it instead of failing it.
const SKIP_VAR: &str = "SKIP_READ_ONLY_ROOT_TEST";

/// The host cannot run the test: fails it, or with `SKIP_READ_ONLY_ROOT_TEST=1` says so.
fn cannot_run(why: &str) {
    if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
        println!("SKIPPED ({SKIP_VAR}=1): {why}");
        return;
    }
    panic!("{why}; set {SKIP_VAR}=1 to skip this test on purpose");
}

pub async fn read_only_root_as_uid_1000() {
    if !is_root() {
        return cannot_run("a mount namespace and setpriv need root, and this test is not root");
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    write_version(dir.path(), "..v1", &deployed_routes(false));
    symlink("..data/routes.yaml", dir.path().join("routes.yaml")).unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    // a tmpfs on /tmp as in the pod, unless the checkout itself lives under /tmp (a CI
    // clone): the tmpfs would hide the binary and the ConfigMap directory
    let under_tmp = gateway_bin().starts_with("/tmp/") || dir.path().starts_with("/tmp/");
    if under_tmp {
        println!("NOTE: the checkout is under /tmp: /tmp stays the read-only root's own");
    }
    let tmpfs = if under_tmp {
        ""
    } else {
        "mount -t tmpfs -o size=16m tmpfs /tmp || exit 90; "
    };
    let script = format!(
        "mount -o remount,bind,ro / || exit 90; {tmpfs}\
         touch /.read-only-probe 2>/dev/null && exit 91; \
         exec setpriv --reuid 1000 --regid 1000 --clear-groups \"$0\" serve"
    );
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(gateway_bin())
        .env("PORT", port.to_string())
        .env("METRICS_PORT", metrics_port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("GATEWAY_WORKERS", "1")
        .env("ROUTES_FILE", dir.path().join("routes.yaml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return cannot_run(&format!("`unshare` cannot start ({e})")),
    };
    let mut gw = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = gw.0.try_wait().unwrap() {
            assert_ne!(
                status.code(),
                Some(91),
                "the root filesystem is still writable"
            );
            if status.code() == Some(90) {
                return cannot_run(&format!(
                    "no mount namespace here (needs CAP_SYS_ADMIN): {status}"
                ));
            }
            panic!("the gateway exited on a read-only root as uid 1000: {status}");
        }
        if metric(metrics_port, "gateway_config_routes ").await == Some(4.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // kubectl apply of the ConfigMap: the kubelet writes a new version and swaps ..data
    write_version(dir.path(), "..v2", &deployed_routes(true));
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(metrics_port, "gateway_config_routes ").await != Some(5.0) {
        assert!(
            Instant::now() < deadline,
            "the ConfigMap swap was not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ok = metric(
        metrics_port,
        "gateway_config_reloads_total{result=\"success\"}",
    )
    .await;
    assert_eq!(ok, Some(1.0));

    // SIGTERM: exit 0 within terminationGracePeriodSeconds
    let start = Instant::now();
    let pid = gw.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(s) = gw.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "still running after 40 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
    println!(
        "uid 1000, read-only root, tmpfs /tmp: served, applied a ConfigMap swap, exited 0 {:.1} s after SIGTERM",
        start.elapsed().as_secs_f64()
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
