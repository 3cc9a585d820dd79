//! The plugin model through a real gateway: global plugins on every route, turned off
//! or replaced on one; the response phase on the gateway's own answers; bad options
//! refused at their own line.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

fn table(addr: std::net::SocketAddr) -> String {
    format!(
        r#"version: 1
upstreams:
  u: {{ targets: [{{ addr: "{addr}" }}] }}
plugins:
  - {{ name: response_headers, set: {{ x-global: "on" }} }}
  - {{ name: request_headers, set: {{ x-from-global: "yes" }} }}
routes:
  - {{ name: plain, match: {{ path_prefix: /plain }}, upstream: u }}
  - name: off
    match: {{ path_prefix: /off }}
    upstream: u
    plugins: [{{ name: response_headers, enabled: false }}]
  - name: replaced
    match: {{ path_prefix: /replaced }}
    upstream: u
    plugins: [{{ name: request_headers, set: {{ x-from-route: "yes" }} }}]
  - name: denied
    match: {{ path_prefix: /denied }}
    upstream: u
    plugins: [{{ name: ip_restriction, deny: [127.0.0.0/8] }}]
  - name: fixed
    match: {{ path_prefix: /fixed }}
    fallback: {{ status: 200, body: "{{}}" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_plugins_apply_everywhere_unless_turned_off() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&table(up.addr));

    let r = reqwest::get(gw.url("/plain")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-global"], "on");
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["headers"]["x-from-global"], "yes");

    // turned off on one route
    let r = reqwest::get(gw.url("/off")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-global").is_none());

    // a route plugin of the same name replaces the global one
    let r = reqwest::get(gw.url("/replaced")).await.unwrap();
    assert_eq!(r.headers()["x-global"], "on");
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["headers"]["x-from-route"], "yes");
    assert!(b["headers"].get("x-from-global").is_none(), "{b}");

    // the gateway's own answers pass through the response phase too
    let r = reqwest::get(gw.url("/denied")).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-global"], "on");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers().get_all("content-type").iter().count(), 1);
    assert!(r.headers().get("x-request-id").is_some());
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "forbidden");

    let r = reqwest::get(gw.url("/fixed")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-global"], "on");
    assert_eq!(
        gw.metric("gateway_requests_blocked_total{reason=\"ip_restriction\"}")
            .await,
        Some(1.0)
    );
}

#[test]
fn a_bad_plugin_option_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("routes.yaml");
    std::fs::write(
        &f,
        "version: 1\nupstreams:\n  u: { targets: [{ addr: \"127.0.0.1:9\" }] }\nroutes:\n  - name: r\n    match: { path_prefix: /r }\n    upstream: u\n    plugins:\n      - name: ip_restriction\n        allow:\n          - 10.0.0.0/8\n          - not-an-address\n      - { name: response_headers, enabled: false }\n",
    )
    .unwrap();
    let out = std::process::Command::new(gateway_bin())
        .arg("check")
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 12, column 13: routes[0].plugins[0].allow[1]"),
        "{err}"
    );
    assert!(
        err.contains("`not-an-address` is not an IP address"),
        "{err}"
    );
    // turning off a global plugin that does not exist is an error too
    assert!(
        err.contains("routes[0].plugins[1].enabled: no global plugin `response_headers`"),
        "{err}"
    );
}
