use super::*;

fn env_none(_: &str) -> Option<String> {
    None
}

const GOOD: &str = r#"
version: 1
upstreams:
  generation:
    targets: [{ addr: "127.0.0.1:8001", weight: 1 }]
    balance: round_robin
    health_check: { kind: http, path: /health, interval: 5s, timeout: 1s, healthy_threshold: 2, unhealthy_threshold: 3 }
    circuit_breaker: { failure_threshold: 5, open_for: 60s }
    retry: { attempts: 3, backoff: 1s, on: [connect_failure, 502, 503, 504] }
    timeouts: { connect: 2s, read: 30s }
routes:
  - name: generate-v1
    match: { path_prefix: /api/v1/generate, methods: [POST] }
    upstream: generation
    rewrite: { strip_prefix: /api/v1 }
    plugins:
      - { name: request_headers, set: { x-api-version: "1" } }
"#;

#[test]
fn spec_example_loads() {
    let c = parse(GOOD, "t.yaml", &env_none).unwrap();
    assert_eq!(c.routes.len(), 1);
    assert_eq!(
        c.upstreams["generation"].retry.as_ref().unwrap().attempts,
        3
    );
}

#[test]
fn every_error_is_located() {
    let bad = "version: 1\nupstreams:\n  a:\n    targets: []\nroutes:\n  - name: r1\n    match: { path: /x }\n    upstream: nope\n  - name: r1\n    match: { path: /y }\n    upstream: a\n    plugins: [{ name: frobnicate }]\n";
    let e = parse(bad, "t.yaml", &env_none).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("upstreams.a.targets"), "{text}");
    let up = e
        .errors
        .iter()
        .find(|e| e.path == "routes[0].upstream")
        .expect(&text);
    assert_eq!(up.pos, Some(Pos { line: 8, column: 5 }));
    assert!(up.message.contains("unknown upstream `nope`"));
    let dup = e
        .errors
        .iter()
        .find(|e| e.path == "routes[1].name")
        .expect(&text);
    assert_eq!(dup.pos.map(|p| p.line), Some(9));
    assert!(
        e.errors
            .iter()
            .any(|e| e.path == "routes[1].plugins[0].name" && e.message.contains("unknown plugin")),
        "{text}"
    );
}

#[test]
fn unknown_fields_and_types_are_refused_per_route() {
    let bad = "version: 1\nupstreams:\n  a: { targets: [{addr: '127.0.0.1:1'}] }\nroutes:\n  - name: r1\n    match: { path: /x, pathprefix: /y }\n    upstream: a\n  - name: r2\n    match: { path: /z }\n    upstream: a\n    timeout: 5\n";
    let e = parse(bad, "t.yaml", &env_none).unwrap_err();
    let text = e.to_string();
    let unk = e
        .errors
        .iter()
        .find(|e| e.message.contains("unknown field `pathprefix`"))
        .expect(&text);
    assert_eq!(unk.path, "routes[0].match.pathprefix");
    assert_eq!(unk.pos.map(|p| p.line), Some(6));
    let dur = e
        .errors
        .iter()
        .find(|e| e.path == "routes[1].timeout")
        .expect(&text);
    assert!(dur.message.contains("no unit"), "{text}");
    assert_eq!(dur.pos.map(|p| p.line), Some(11));
}

#[test]
fn syntax_error_has_position() {
    let e = parse("version: 1\nroutes: [\n", "t.yaml", &env_none).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert!(e.errors[0].pos.is_some());
    assert!(e.errors[0].message.starts_with("invalid YAML"));
}

#[test]
fn indistinguishable_routes() {
    let bad = "version: 1\nupstreams:\n  a: { targets: [{addr: '127.0.0.1:1'}] }\nroutes:\n  - { name: r1, match: { path: '/x/{id}' }, upstream: a }\n  - { name: r2, match: { path: '/x/{other}', methods: [GET] }, upstream: a }\n";
    let e = parse(bad, "t.yaml", &env_none).unwrap_err();
    assert!(
        e.errors
            .iter()
            .any(|e| e.path == "routes[1].match" && e.message.contains("can never match")),
        "{e}"
    );
}

#[test]
fn env_overrides_targets() {
    let env = |k: &str| (k == "API_GENERATION_URL").then(|| "http://10.1.2.3:9000".to_string());
    let c = parse(GOOD, "t.yaml", &env).unwrap();
    assert_eq!(
        c.upstreams["generation"].targets,
        vec![TargetConfig {
            addr: "10.1.2.3:9000".into(),
            weight: 1
        }]
    );
    let env = |k: &str| (k == "API_GENERATION_URL").then(|| "ftp://x".to_string());
    assert!(parse(GOOD, "t.yaml", &env).is_err());
}

#[test]
fn zero_weights_and_bad_plugin_settings() {
    let bad = "version: 1\nupstreams:\n  a: { targets: [{addr: '127.0.0.1:1', weight: 0}] }\nroutes:\n  - { name: r1, match: { path: /x }, upstream: a, plugins: [{ name: request_headers, sett: {} }] }\n";
    let e = parse(bad, "t.yaml", &env_none).unwrap_err();
    assert!(
        e.errors.iter().any(|e| e.message.contains("weight 0")),
        "{e}"
    );
    assert!(
        e.errors
            .iter()
            .any(|e| e.path == "routes[0].plugins[0].sett" && e.message.contains("unknown field")),
        "{e}"
    );
}

/// Plugin settings are checked by the one build of the table (dry for `check`), and
/// its errors are located like the validator's.
#[test]
fn the_build_checks_plugin_settings_and_locates_its_errors() {
    let text = "version: 1\nupstreams:\n  a: { targets: [{addr: '127.0.0.1:1'}] }\nroutes:\n  - { name: r1, match: { path: /x }, upstream: a, plugins: [{ name: request_headers, sett: {} }] }\n";
    let parsed = super::parse_located(text, "t.yaml", &env_none)
        .expect("the validator leaves plugins to the build");
    let Err(e) = crate::runtime::Runtime::build(
        parsed,
        &crate::upstream::Registry::new(),
        &gateway_plugins::Shared::dry(),
    ) else {
        panic!("a bad plugin setting must refuse the table");
    };
    let err = e
        .errors
        .iter()
        .find(|e| e.path == "routes[0].plugins[0].sett")
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(err.pos.map(|p| p.line), Some(5));
    assert!(err.message.contains("unknown field"), "{e}");
    assert_eq!(e.lines()[0], "t.yaml: 1 error");
    assert!(e.lines()[1].starts_with("  t.yaml: line 5, column "), "{e}");
}

#[test]
fn sse_keepalive_must_be_shorter_than_stream_idle_timeout() {
    let table = |fields: &str| {
        format!("version: 1\nupstreams:\n  a: {{ targets: [{{addr: '127.0.0.1:1'}}] }}\nroutes:\n  - name: r\n    match: {{ path: /x }}\n    upstream: a\n{fields}")
    };
    let ok = "    sse_keepalive: 15s\n    stream_idle_timeout: 60s\n";
    assert!(parse(&table(ok), "t.yaml", &env_none).is_ok());
    for (fields, want) in [
        (
            "    sse_keepalive: 60s\n    stream_idle_timeout: 60s\n",
            "shorter than `stream_idle_timeout`",
        ),
        ("    sse_keepalive: 0s\n", "more than 0s"),
    ] {
        let e = parse(&table(fields), "t.yaml", &env_none).unwrap_err();
        let err = e
            .errors
            .iter()
            .find(|e| e.path == "routes[0].sse_keepalive");
        assert!(err.is_some_and(|e| e.message.contains(want)), "{e}");
    }
}
