//! `api-gateway check` and `schema` as an operator runs them.
#![allow(clippy::unwrap_used)]

mod common;
use std::process::{Command, Output};

/// `api-gateway check` of `table` (written to a fresh file), with `env`.
fn check(table: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("routes.yaml");
    std::fs::write(&f, table).unwrap();
    Command::new(common::gateway_bin())
        .arg("check")
        .arg(&f)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Asserts that `out` succeeded, showing its stderr otherwise.
fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const JWT_ENV: [(&str, &str); 1] = [("JWT_SECRET", "0123456789abcdef0123456789abcdef")];

#[test]
fn check_accepts_the_default_table() {
    let out = Command::new(common::gateway_bin())
        .args(["check", concat!(env!("CARGO_MANIFEST_DIR"), "/routes.yaml")])
        .output()
        .unwrap();
    assert_ok(&out);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("ok: "), "{s}");
    assert_eq!(s.lines().count(), 1);
}

#[test]
fn check_reports_every_error_with_line_and_column() {
    let out = check(
        "version: 1\nupstreams:\n  a:\n    targets: [{ addr: \"127.0.0.1:9\" }]\n    balance: fastest\nroutes:\n  - name: one\n    match: { path: /x }\n    upstream: nowhere\n  - name: two\n    match: { path: /y, methdos: [GET] }\n    upstream: a\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 5") && err.contains("upstreams.a.balance") && err.contains("fastest"),
        "{err}"
    );
    assert!(
        err.contains("line 11, column 24") && err.contains("unknown field `methdos`"),
        "{err}"
    );
    // the later semantic pass runs once types are right: fix the type errors only
    let out = check("version: 1\nupstreams:\n  a:\n    targets: [{ addr: \"127.0.0.1:9\" }]\nroutes:\n  - name: one\n    match: { path: /x }\n    upstream: nowhere\n  - name: one\n    match: { path: /y }\n    upstream: a\n", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 8, column 5: routes[0].upstream: unknown upstream `nowhere`"),
        "{err}"
    );
    assert!(
        err.contains("line 9") && err.contains("duplicate route name `one`"),
        "{err}"
    );
}

#[test]
fn schema_is_the_committed_one() {
    let out = Command::new(common::gateway_bin())
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/routes.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        printed, committed,
        "docs/routes.schema.json is stale: run `api-gateway schema > docs/routes.schema.json`"
    );
    assert!(printed["properties"]["routes"].is_object());
}

/// `rediss://` (Redis over TLS) is a valid Redis URL; an unknown scheme is refused at
/// the option that names the variable. Nothing connects during a check.
#[test]
fn check_accepts_a_tls_redis_url() {
    let table = "version: 1\nupstreams:\n  a: { targets: [{ addr: \"127.0.0.1:9\" }] }\nroutes:\n  - name: r\n    match: { path: /x }\n    upstream: a\n    plugins: [{ name: rate_limit, average: 10, period: 1s, store: redis }]\n";
    let with_url = |url: &str| check(table, &[("REDIS_URL", url)]);
    assert_ok(&with_url("rediss://:s3cret@cache.example:6380/0"));
    let out = with_url("redis-tls://:s3cret@cache.example:6380");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("redis_url_env"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn a_plugin_that_needs_an_identity_must_follow_an_auth_plugin() {
    let table = |plugins: &str| {
        format!("version: 1\nupstreams:\n  a: {{ targets: [{{ addr: \"127.0.0.1:9\" }}] }}\nroutes:\n  - name: admin\n    match: {{ path_prefix: /admin }}\n    upstream: a\n    plugins:\n{plugins}")
    };
    let out = check(
        &table("      - { name: rbac, any_roles: [admin] }\n      - { name: jwt, secret_env: JWT_SECRET }\n"),
        &JWT_ENV,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 9") && err.contains("routes[0].plugins[0]") && err.contains("`rbac`"),
        "{err}"
    );
    // in the right order it passes
    assert_ok(&check(
        &table("      - { name: jwt, secret_env: JWT_SECRET }\n      - { name: rbac, any_roles: [admin] }\n"),
        &JWT_ENV,
    ));
}

#[test]
fn a_cache_before_a_plugin_that_guards_access_is_refused() {
    // stored answers would reach callers the later plugin refuses: a cached 200 for a
    // request without a key
    let table = |plugins: &str| {
        format!("version: 1\nupstreams:\n  a: {{ targets: [{{ addr: \"127.0.0.1:9\" }}] }}\nplugins:\n  - {{ name: ip_filter, deny: [\"192.0.2.0/24\"] }}\nroutes:\n  - name: items\n    match: {{ path_prefix: /items }}\n    upstream: a\n    plugins:\n{plugins}")
    };
    let out = check(
        &table(
            "      - { name: cache, ttl: 30s }\n      - { name: jwt, secret_env: JWT_SECRET }\n",
        ),
        &JWT_ENV,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 12")
            && err.contains("routes[0].plugins[1]")
            && err
                .contains("`jwt` (authenticate stage) comes after `cache` (routes[0].plugins[0])"),
        "{err}"
    );
    // after the guards, and with a limit after it (hits not counted: a choice), it passes
    assert_ok(&check(
        &table("      - { name: jwt, secret_env: JWT_SECRET }\n      - { name: cache, ttl: 30s }\n      - { name: rate_limit, average: 10, period: 1s }\n"),
        &JWT_ENV,
    ));
}
