//! `oauth2_introspection` through a real gateway, against a local RFC 7662 endpoint
//! that checks the gateway's client credentials and counts its calls.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const GOOD: &str = "tok-good-5f1c9a";
const READ_ONLY: &str = "tok-readonly-77ab02";
const REVOKED: &str = "tok-revoked-0e4d11";
const SLOW: &str = "tok-slow-a81f";
/// `gw:s3cret`, Basic.
const CREDENTIALS: &str = "Basic Z3c6czNjcmV0";

#[derive(Clone, Default)]
struct Endpoint {
    calls: Arc<AtomicUsize>,
}

async fn introspect(
    State(e): State<Endpoint>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> axum::response::Response {
    e.calls.fetch_add(1, Ordering::SeqCst);
    match form.get("token").map(String::as_str) {
        Some(SLOW) => tokio::time::sleep(Duration::from_secs(3)).await,
        Some(t) if t.starts_with("tok-burst") => {
            tokio::time::sleep(Duration::from_millis(300)).await
        }
        _ => {}
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(CREDENTIALS) {
        return (axum::http::StatusCode::UNAUTHORIZED, "bad client").into_response();
    }
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let body = match form.get("token").map(String::as_str) {
        Some(GOOD) => serde_json::json!({
            "active": true, "sub": "alice", "scope": "read generate", "client_id": "app",
            "exp": exp
        }),
        Some(t) if t.starts_with("tok-burst") => serde_json::json!({
            "active": true, "sub": "carol", "scope": "generate", "exp": exp
        }),
        Some(READ_ONLY) => serde_json::json!({
            "active": true, "username": "bob", "scope": "read", "exp": exp
        }),
        _ => serde_json::json!({ "active": false }),
    };
    axum::Json(body).into_response()
}

async fn start_endpoint() -> (std::net::SocketAddr, Endpoint) {
    let e = Endpoint::default();
    let app = axum::Router::new()
        .route("/introspect", axum::routing::post(introspect))
        .with_state(e.clone());
    let (addr, _) = serve_app(app).await;
    (addr, e)
}

fn table(up: std::net::SocketAddr, endpoint: std::net::SocketAddr, dead: u16) -> String {
    let mut text = format!(
        r#"version: 1
upstreams:
  u: {{ targets: [{{ addr: "{up}" }}] }}
routes:
  - name: api
    match: {{ path_prefix: /api }}
    upstream: u
    plugins:
      - name: oauth2_introspection
        endpoint: http://{endpoint}/introspect
        client_id: gw
        client_secret_env: INTROSPECTION_SECRET
        scopes: [generate]
        hide_credentials: true
"#
    );
    let (live, down) = (
        format!("http://{endpoint}/introspect"),
        format!("http://127.0.0.1:{dead}/introspect"),
    );
    // (route, path prefix, endpoint, secret's variable, more settings)
    for (name, prefix, url, secret, extra) in [
        (
            "down",
            "down",
            &down,
            "INTROSPECTION_SECRET",
            ", timeout: 1s",
        ),
        (
            "down-open",
            "open",
            &down,
            "INTROSPECTION_SECRET",
            ", on_error: allow",
        ),
        (
            "slow",
            "slow",
            &live,
            "INTROSPECTION_SECRET",
            ", timeout: 300ms",
        ),
        ("wrong-secret", "wrong", &live, "WRONG_SECRET", ""),
    ] {
        text.push_str(&format!(
            r#"  - name: {name}
    match: {{ path_prefix: /{prefix} }}
    upstream: u
    plugins:
      - {{ name: oauth2_introspection, endpoint: "{url}",
           client_id: gw, client_secret_env: {secret}{extra} }}
"#
        ));
    }
    text
}

/// An echo upstream, the introspection endpoint, and a gateway on [`table`] (its `down`
/// routes on a closed port) with the client secret set.
struct Introspected {
    _up: Echo,
    endpoint: Endpoint,
    /// the gateway's route table
    table: String,
    gw: Gateway,
}

async fn introspected() -> Introspected {
    let up = Echo::start("u").await;
    let (addr, endpoint) = start_endpoint().await;
    let table = table(up.addr, addr, free_port());
    let gw = Gateway::start_with(
        &table,
        &[("INTROSPECTION_SECRET", "s3cret"), ("WRONG_SECRET", "nope")],
    );
    Introspected {
        _up: up,
        endpoint,
        table,
        gw,
    }
}

async fn get(url: String, token: Option<&str>) -> reqwest::Response {
    let c = reqwest::Client::new();
    let mut rb = c.get(url).header("x-user-id", "forged");
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    rb.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_introspected_and_cached() {
    let Introspected {
        _up, endpoint, gw, ..
    } = introspected().await;

    // an active token with the scope: identity upstream, token not forwarded
    let r = get(gw.url("/api/x"), Some(GOOD)).await;
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["headers"]["x-user-id"], "alice", "{b}");
    assert_eq!(b["headers"]["x-scopes"], "read generate");
    assert!(b["headers"].get("authorization").is_none(), "{b}");
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
    // cached: the endpoint is not asked again
    let r = get(gw.url("/api/y"), Some(GOOD)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);

    // inactive → 401 invalid_token
    let r = get(gw.url("/api/x"), Some(REVOKED)).await;
    assert_eq!(r.status(), 401);
    let challenge = header_value(&r, "www-authenticate");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "unauthorized");

    // active without the scope → 403 insufficient_scope
    let r = get(gw.url("/api/x"), Some(READ_ONLY)).await;
    assert_eq!(r.status(), 403);
    let challenge = header_value(&r, "www-authenticate");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(b["message"].as_str().unwrap().contains("generate"), "{b}");

    // no token → 401 with a bare Bearer challenge; the endpoint is not asked
    let before = endpoint.calls.load(Ordering::SeqCst);
    let r = get(gw.url("/api/x"), None).await;
    assert_eq!(r.status(), 401);
    assert!(header_value(&r, "www-authenticate").starts_with("Bearer"));
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), before);

    // endpoint down → 503 (fail-closed), or passes anonymous with on_error: allow
    let r = get(gw.url("/down/x"), Some(GOOD)).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "dependency_unavailable");
    let r = get(gw.url("/slow/x"), Some(SLOW)).await;
    assert_eq!(r.status(), 503, "an endpoint that times out");
    let r = get(gw.url("/open/x"), Some(GOOD)).await;
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(b["headers"].get("x-user-id").is_none(), "{b}");

    // the endpoint refuses the gateway's credentials → 503, not a 401 to the client
    // (a token not cached yet: answers are cached per endpoint and client id)
    let r = get(gw.url("/wrong/x"), Some("tok-uncached-3b9e")).await;
    assert_eq!(r.status(), 503);

    let m = |s: &'static str| gw.metric(s);
    assert_eq!(
        m("gateway_auth_requests_total{method=\"oauth2\"}").await,
        Some(9.0)
    );
    assert_eq!(
        m("gateway_auth_failures_total{reason=\"inactive\"}").await,
        Some(1.0)
    );
    assert_eq!(
        m("gateway_auth_failures_total{reason=\"insufficient_scope\"}").await,
        Some(1.0)
    );
    assert_eq!(
        m("gateway_auth_failures_total{reason=\"missing\"}").await,
        Some(1.0)
    );
    assert_eq!(
        m("gateway_auth_failures_total{reason=\"introspection_unavailable\"}").await,
        Some(4.0)
    );
    assert_eq!(
        m("gateway_requests_blocked_total{reason=\"auth\"}").await,
        Some(3.0)
    );

    // tokens never reach the logs
    wait_until(Duration::from_secs(5), || async {
        gw.logs().contains("/wrong/x")
    })
    .await;
    let logs = gw.logs();
    for t in [GOOD, READ_ONLY, REVOKED, SLOW, "s3cret", "Z3c6czNjcmV0"] {
        assert!(!logs.contains(t), "{t} in logs:\n{logs}");
    }
    assert!(logs.contains("\"user_id\":\"alice\""), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_outlives_a_reload() {
    let Introspected {
        _up,
        endpoint,
        table: text,
        gw,
    } = introspected().await;
    assert_eq!(get(gw.url("/api/x"), Some(GOOD)).await.status(), 200);
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
    // a reload (the table edited) keeps the cached answer
    gw.write_config(&format!("{text}# edited\n"));
    let reloaded = wait_until(Duration::from_secs(10), || async {
        gw.metric("gateway_config_reloads_total{result=\"success\"}")
            .await
            .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    assert!(reloaded.is_some(), "{}", gw.logs());
    assert_eq!(get(gw.url("/api/x"), Some(GOOD)).await.status(), 200);
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_a_new_token_share_one_call() {
    let Introspected {
        _up, endpoint, gw, ..
    } = introspected().await;
    let url = gw.url("/api/x");
    let burst: Vec<_> = (0..20)
        .map(|_| tokio::spawn(get(url.clone(), Some("tok-burst-1"))))
        .collect();
    for r in burst {
        assert_eq!(r.await.unwrap().status(), 200);
    }
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
}
