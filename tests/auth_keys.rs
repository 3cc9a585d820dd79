//! API keys, basic auth, the token flow and RBAC through a real gateway: good, wrong
//! and query-parameter keys; a key revoked by editing the key file while running (and
//! a bad key file refused, the old keys still working); basic credentials good and
//! bad; a refresh token that works once, then 401 (in memory, and in a real Redis: a
//! missing `redis-server` fails that test unless `SKIP_REDIS_TESTS=1`); RBAC 403s naming what is missing. No key, password or
//! token reaches the log.
#![allow(clippy::unwrap_used)]

mod common;
use base64::Engine;
use common::*;
use sha2::{Digest, Sha256};
use std::time::Duration;

const SECRET: &str = "token-secret-0123456789abcdef0123";
const ALICE: &str = "ak_alice_3f9c2e7d1b";
const BOB: &str = "ak_bob_88e1c0aa42";
const PASSWORD: &str = "correct horse battery staple";

fn sha(k: &str) -> String {
    hex::encode(Sha256::digest(k.as_bytes()))
}

fn keys(with_alice: bool) -> String {
    let mut s = String::from("consumers:\n");
    if with_alice {
        s += &format!(
            "  - {{ name: alice, key_sha256: \"{}\", roles: [admin], scopes: [generate, read] }}\n",
            sha(ALICE)
        );
    }
    s += &format!(
        "  - {{ name: bob, key_sha256: \"{}\", roles: [viewer], scopes: [read] }}\n",
        sha(BOB)
    );
    s
}

fn table(up: std::net::SocketAddr) -> String {
    format!(
        r#"version: 1
upstreams:
  u: {{ targets: [{{ addr: "{up}" }}] }}
routes:
  - name: keyed
    match: {{ path_prefix: /keyed }}
    upstream: u
    rewrite: {{ strip_prefix: /keyed }}
    plugins: [{{ name: api_key, keys_file: keys.yaml, query: apikey }}]
  - name: admin
    match: {{ path_prefix: /admin }}
    upstream: u
    plugins:
      - {{ name: api_key, keys_file: keys.yaml }}
      - name: rbac
        any_roles: [admin, viewer]
        methods: {{ DELETE: {{ all_roles: [admin], all_scopes: [generate] }} }}
  - name: basic
    match: {{ path_prefix: /basic }}
    upstream: u
    plugins: [{{ name: basic_auth, htpasswd_file: users.htpasswd, realm: staff }}]
  - name: auth
    match: {{ path_prefix: /auth, methods: [POST] }}
    fallback: {{ status: 404, body: "{{}}" }}
    plugins:
      - {{ name: api_key, keys_file: keys.yaml }}
      - {{ name: token, secret_env: TOKEN_SECRET, ttl: 5m, refresh_ttl: 1h }}
  - name: protected
    match: {{ path_prefix: /protected }}
    upstream: u
    plugins:
      - {{ name: jwt, secret_env: TOKEN_SECRET, algorithms: [HS256], scopes: [read] }}
      - {{ name: rbac, all_roles: [admin] }}
"#
    )
}

fn start(up: std::net::SocketAddr, redis: Option<&str>) -> Gateway {
    let htpasswd = format!("carol:{}\n", bcrypt::hash(PASSWORD, 4).unwrap());
    let files = [
        ("keys.yaml", keys(true).into_bytes()),
        ("users.htpasswd", htpasswd.into_bytes()),
    ];
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, t)| (*n, t.as_slice())).collect();
    let mut env = vec![("TOKEN_SECRET", SECRET)];
    if let Some(u) = redis {
        env.push(("REDIS_URL", u));
    }
    Gateway::start_with_files(&table(up), &files, &env)
}

async fn get(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    key: Option<&str>,
) -> (u16, serde_json::Value) {
    request(c, gw, reqwest::Method::GET, path, key).await
}

/// `gateway_auth_failures_total` for `reason`.
async fn auth_failures(gw: &Gateway, reason: &str) -> f64 {
    let series = format!("gateway_auth_failures_total{{reason=\"{reason}\"}}");
    gw.metric(&series).await.expect(&series)
}

/// `method path`, with `x-api-key` when given: the status and the JSON body (`Null` if
/// none).
async fn request(
    c: &reqwest::Client,
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut rb = c.request(method, gw.url(path));
    if let Some(k) = key {
        rb = rb.header("x-api-key", k);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_basic_auth_and_rbac() {
    let up = Echo::start("u").await;
    let gw = start(up.addr, None);
    let c = reqwest::Client::new();

    // good key: the upstream sees the request without the key, and the consumer in
    // X-User-Id (a client-sent copy is replaced); the log names alice
    assert_identified(&c, gw.url("/keyed"), ("x-api-key", ALICE), "alice").await;
    // wrong and missing keys
    let r = c
        .get(gw.url("/keyed"))
        .header("x-api-key", "ak_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("X-API-Key"));
    assert_eq!(get(&c, &gw, "/keyed", None).await.0, 401);
    // the query parameter, removed before the upstream
    let (s, body) = get(&c, &gw, &format!("/keyed/x?a=1&apikey={BOB}"), None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["path"], "/x?a=1");
    // the query parameter is off on routes that do not name one
    assert_eq!(
        get(&c, &gw, &format!("/admin?apikey={BOB}"), None).await.0,
        401
    );

    // RBAC: any of the roles passes; DELETE needs admin and the generate scope
    assert_eq!(get(&c, &gw, "/admin", Some(BOB)).await.0, 200);
    let delete = |key| request(&c, &gw, reqwest::Method::DELETE, "/admin", Some(key));
    let (status, body) = delete(BOB).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "forbidden");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("missing role: admin") && msg.contains("missing scope: generate"),
        "{msg}"
    );
    assert_eq!(delete(ALICE).await.0, 200);

    // basic auth
    let basic = |u: &str, p: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };
    for _ in 0..2 {
        let credential = ("authorization", basic("carol", PASSWORD));
        assert_identified(&c, gw.url("/basic"), (credential.0, &credential.1), "carol").await;
    }
    for (u, p) in [("carol", "wrong"), ("mallory", PASSWORD)] {
        let r = c
            .get(gw.url("/basic"))
            .header("authorization", basic(u, p))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"staff\", charset=\"UTF-8\""
        );
    }
    assert_eq!(c.get(gw.url("/basic")).send().await.unwrap().status(), 401);

    // revoked by editing the key file while running
    let keys_path = gw.dir.path().join("keys.yaml");
    std::fs::write(&keys_path, keys(false)).unwrap();
    let revoked = wait_until(Duration::from_secs(5), || async {
        get(&c, &gw, "/keyed", Some(ALICE)).await.0 == 401
    })
    .await;
    assert!(
        revoked.is_some(),
        "alice's key still works; log:\n{}",
        gw.logs()
    );
    println!("key revoked {revoked:?} after the edit");
    assert_eq!(get(&c, &gw, "/keyed", Some(BOB)).await.0, 200);

    // a bad key file is refused with its location; the keys in force stay
    let failures = gw
        .metric("gateway_config_reloads_total{result=\"failure\"}")
        .await
        .unwrap_or(0.0);
    std::fs::write(
        &keys_path,
        "consumers:\n  - { name: bob, key_sha256: nothex }\n",
    )
    .unwrap();
    let refused = wait_until(Duration::from_secs(5), || async {
        gw.metric("gateway_config_reloads_total{result=\"failure\"}")
            .await
            .unwrap_or(0.0)
            > failures
    })
    .await;
    assert!(refused.is_some(), "the bad key file was not refused");
    let logs = gw.logs();
    assert!(
        logs.contains("routes[0].plugins[0].keys_file") && logs.contains("consumers[0].key_sha256"),
        "{logs}"
    );
    assert_eq!(get(&c, &gw, "/keyed", Some(BOB)).await.0, 200);
    assert_eq!(get(&c, &gw, "/keyed", Some(ALICE)).await.0, 401);

    assert!(auth_failures(&gw, "bad_credentials").await >= 3.0);
    assert!(auth_failures(&gw, "insufficient_scope").await >= 1.0);
    let logs = gw.logs();
    assert!(logs.contains("\"user_id\":\"alice\""));
    for secret in [ALICE, BOB, PASSWORD, "Y29ycmVjdCBob3JzZ"] {
        assert!(!logs.contains(secret), "a credential reached the log");
    }
}

/// `GET url` with a good credential (`(header, value)`) and a forged `x-user-id`: 200,
/// and the upstream sees `consumer` in `x-user-id` and not the credential.
async fn assert_identified(
    c: &reqwest::Client,
    url: String,
    (header, value): (&str, &str),
    consumer: &str,
) {
    let r = c
        .get(url)
        .header(header, value)
        .header("x-user-id", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["headers"].get(header).is_none(), "{body}");
    assert_eq!(body["headers"]["x-user-id"], consumer, "{body}");
}

async fn post(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut rb = c.post(gw.url(path)).header("x-api-key", key);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// `POST path` (`/auth/refresh` or `/auth/revoke`) with `{"refresh_token": token}`,
/// sent with `key`.
async fn refresh_call(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    key: &str,
    token: &str,
) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "refresh_token": token });
    post(c, gw, path, key, Some(body)).await
}

async fn token_flow(gw: &Gateway) {
    let c = reqwest::Client::new();
    let (s, issued) = post(&c, gw, "/auth/token", ALICE, None).await;
    assert_eq!(s, 200, "{issued}");
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["expires_in"], 300);
    let access = issued["access_token"].as_str().unwrap().to_string();
    let refresh = issued["refresh_token"].as_str().unwrap().to_string();

    // the access token opens a jwt route; its identity feeds rbac
    let r = c
        .get(gw.url("/protected"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["headers"]["x-user-id"], "alice");
    // bob's token lacks the admin role
    let (_, bobs) = post(&c, gw, "/auth/token", BOB, None).await;
    let r = c
        .get(gw.url("/protected"))
        .bearer_auth(bobs["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // no credential, no token
    let r = c.post(gw.url("/auth/token")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // bob cannot use alice's refresh token... (and that burns it, so issue another)
    let (s, _) = refresh_call(&c, gw, "/auth/refresh", BOB, &refresh).await;
    assert_eq!(s, 401);
    let (_, issued) = post(&c, gw, "/auth/token", ALICE, None).await;
    let refresh = issued["refresh_token"].as_str().unwrap().to_string();

    // a refresh token works once, then 401
    let (s, renewed) = refresh_call(&c, gw, "/auth/refresh", ALICE, &refresh).await;
    assert_eq!(s, 200, "{renewed}");
    let (s, again) = refresh_call(&c, gw, "/auth/refresh", ALICE, &refresh).await;
    assert_eq!(s, 401, "{again}");
    // a revoked refresh token is refused
    let next = renewed["refresh_token"].as_str().unwrap().to_string();
    let (s, _) = refresh_call(&c, gw, "/auth/revoke", ALICE, &next).await;
    assert_eq!(s, 200);
    let (s, _) = refresh_call(&c, gw, "/auth/refresh", ALICE, &next).await;
    assert_eq!(s, 401);
    assert!(auth_failures(gw, "revoked").await >= 3.0);

    let logs = gw.logs();
    for t in [&access, &refresh, &next] {
        assert!(!logs.contains(t.as_str()), "a token reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_flow_in_memory() {
    let up = Echo::start("u").await;
    let gw = start(up.addr, None);
    token_flow(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_flow_in_redis() {
    let Some(redis) = common::redis::Redis::start() else {
        return;
    };
    let url = redis.url();
    let up = Echo::start("u").await;
    let gw = start(up.addr, Some(&url));
    token_flow(&gw).await;
    // the refresh tokens really live in Redis: a second gateway on the same Redis
    // accepts one issued by the first
    let c = reqwest::Client::new();
    let (_, issued) = post(&c, &gw, "/auth/token", ALICE, None).await;
    let gw2 = start(up.addr, Some(&url));
    let (s, _) = refresh_call(
        &c,
        &gw2,
        "/auth/refresh",
        ALICE,
        issued["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    // Redis down: fail-closed 503
    drop(redis);
    let (s, body) = post(&c, &gw, "/auth/token", ALICE, None).await;
    assert_eq!(s, 503, "{body}");
}
