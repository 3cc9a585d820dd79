//! Load shedding and request policy through a real gateway: concurrency limit (503,
//! permits released when requests end), body limit (413 from Content-Length and while
//! streaming), CORS (preflight, headers on an error answer), header transforms, CIDR
//! allow/deny, JSON Schema validation.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::time::Duration;

fn table(addr: std::net::SocketAddr, routes: &[(&str, &str)]) -> String {
    let mut t =
        format!("version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n");
    for (name, plugins) in routes {
        t.push_str(&format!(
            "  - name: {name}\n    match: {{ path_prefix: /{name} }}\n    upstream: u\n    plugins: [{plugins}]\n"
        ));
    }
    t
}

fn h(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_sheds_with_503_and_releases_permits() {
    let up = Echo::start_slow("u", Duration::from_millis(1000)).await;
    let gw = Gateway::start(&table(
        up.addr,
        &[(
            "busy",
            "{ name: concurrency_limit, max: 2, retry_after: 2 }",
        )],
    ));
    let c = reqwest::Client::new();
    let url = gw.url("/busy");
    let send = || {
        let c = c.clone();
        let url = url.clone();
        tokio::spawn(async move { c.get(url).send().await.unwrap() })
    };
    let first = [send(), send()];
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(h(&r, "retry-after"), "2");
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "service_unavailable");
    for f in first {
        assert_eq!(f.await.unwrap().status(), 200);
    }
    // a client that goes away mid-request gives its permit back too
    for _ in 0..2 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        std::io::Write::write_all(&mut s, b"GET /busy HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(s);
    }
    let ok = wait_until(Duration::from_secs(5), || {
        let c = c.clone();
        let url = url.clone();
        async move { c.get(url).send().await.unwrap().status() == 200 }
    })
    .await;
    assert!(ok.is_some(), "permits were not released");
    assert_eq!(
        gw.metric("gateway_requests_blocked_total{reason=\"concurrency_limit\"}")
            .await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_from_content_length_and_while_streaming() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&table(
        up.addr,
        &[("small", "{ name: body_limit, max: 1KB }")],
    ));
    let c = reqwest::Client::new();
    let url = gw.url("/small");
    let r = c.post(&url).body(vec![b'x'; 500]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.post(&url).body(vec![b'x'; 1500]).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(b["request_id"].is_string(), "{b}");
    // chunked, no length: counted while streaming
    let chunks = futures::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 400]))),
    );
    let r = c
        .post(&url)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_headers_on_an_error_answer() {
    let up = Echo::start("u").await;
    let cors = "{ name: cors, allow_origins: [\"https://app.example.com\", \"https://*.example.org\"], allow_methods: [GET, POST], allow_headers: [content-type, authorization], expose_headers: [x-request-id], allow_credentials: true, max_age: 10m }";
    let mut config = table(
        up.addr,
        &[
            ("web", cors),
            (
                "locked",
                &format!("{cors}, {{ name: ip_filter, deny: [127.0.0.0/8] }}"),
            ),
        ],
    );
    // routes restricted to a method get their preflight too; others keep the 405
    config.push_str(&format!(
        "  - {{ name: post-only, match: {{ path: /post-only, methods: [POST] }}, upstream: u, plugins: [{cors}] }}\n  - {{ name: bare, match: {{ path: /bare, methods: [POST] }}, upstream: u }}\n"
    ));
    let gw = Gateway::start(&config);
    let c = reqwest::Client::new();
    let preflight = |origin: &str, method: &str| {
        c.request(reqwest::Method::OPTIONS, gw.url("/web"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let r = preflight("https://app.example.com", "POST").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        h(&r, "access-control-allow-origin"),
        "https://app.example.com"
    );
    assert_eq!(h(&r, "access-control-allow-methods"), "GET, POST");
    assert_eq!(
        h(&r, "access-control-allow-headers"),
        "content-type, authorization"
    );
    assert_eq!(h(&r, "access-control-allow-credentials"), "true");
    assert_eq!(h(&r, "access-control-max-age"), "600");
    assert!(h(&r, "vary").contains("Origin"));
    let b: serde_json::Value = get_json(&c, &gw.url("/nowhere")).await;
    assert_eq!(b["error"], "not_found");
    // a suffix origin; a method not allowed; an origin not allowed
    let r = preflight("https://a.b.example.org", "GET").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        preflight("https://app.example.com", "DELETE")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        preflight("https://evil.example.net", "GET")
            .await
            .unwrap()
            .status(),
        403
    );

    let restricted = |path: &str| {
        c.request(reqwest::Method::OPTIONS, gw.url(path))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .send()
    };
    let r = restricted("/post-only").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        h(&r, "access-control-allow-origin"),
        "https://app.example.com"
    );
    assert_eq!(restricted("/bare").await.unwrap().status(), 405);

    // a proxied answer, and the gateway's own error answer: the headers on both
    let from_app = |path: &str| {
        c.get(gw.url(path))
            .header("origin", "https://app.example.com")
            .send()
    };
    let allowed = |r: &reqwest::Response| {
        assert_eq!(
            h(r, "access-control-allow-origin"),
            "https://app.example.com"
        );
        assert!(h(r, "vary").contains("Origin"));
    };
    let r = from_app("/web").await.unwrap();
    assert_eq!(r.status(), 200);
    allowed(&r);
    assert_eq!(h(&r, "access-control-expose-headers"), "x-request-id");
    // no Origin: no allow header, still Vary
    let r = c.get(gw.url("/web")).send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(h(&r, "vary").contains("Origin"));
    // the gateway's own error answer carries them too
    let r = from_app("/locked").await.unwrap();
    assert_eq!(r.status(), 403);
    allowed(&r);
    assert_eq!(h(&r, "access-control-allow-credentials"), "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_transforms_on_request_and_response() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&table(
        up.addr,
        &[
            (
                "t",
                "{ name: headers, request: { set: { x-api-version: \"2\" }, add: { x-via: gw }, remove: [x-debug], rename: { x-user: x-consumer } }, response: { set: { x-served-by: gateway }, remove: [x-upstream], rename: { content-type: x-original-type } } }",
            ),
            ("old", "{ name: request_headers, set: { x-old: \"yes\" }, rename: { x-a: x-b } }"),
        ],
    ));
    let c = reqwest::Client::new();
    let r = c
        .get(gw.url("/t"))
        .header("x-debug", "1")
        .header("x-user", "alice")
        .header("x-api-version", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-served-by"), "gateway");
    assert!(r.headers().get("x-upstream").is_none());
    assert_eq!(h(&r, "x-original-type"), "application/json");
    let b: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let seen = &b["headers"];
    assert_eq!(seen["x-api-version"], "2");
    assert_eq!(seen["x-via"], "gw");
    assert_eq!(seen["x-consumer"], "alice");
    assert!(
        seen.get("x-user").is_none() && seen.get("x-debug").is_none(),
        "{seen}"
    );
    // the older one-sided names still work, with rename too
    let b = json_of(c.get(gw.url("/old")).header("x-a", "1")).await;
    assert_eq!(b["headers"]["x-old"], "yes");
    assert_eq!(b["headers"]["x-b"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cidr_allow_and_deny() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&table(
        up.addr,
        &[
            ("inside", "{ name: ip_filter, allow: [127.0.0.0/8] }"),
            ("outside", "{ name: ip_filter, allow: [10.0.0.0/8] }"),
            (
                "denied",
                "{ name: ip_filter, allow: [127.0.0.0/8], deny: [127.0.0.1/32] }",
            ),
            (
                "proxied",
                "{ name: ip_filter, deny: [203.0.113.0/24], trusted_proxies: [127.0.0.1] }",
            ),
            ("legacy", "{ name: ip_restriction, deny: [127.0.0.0/8] }"),
        ],
    ));
    let c = reqwest::Client::new();
    let st = |p: &str, xff: Option<&str>| {
        let mut rb = c.get(gw.url(p));
        if let Some(x) = xff {
            rb = rb.header("x-forwarded-for", x);
        }
        async move { rb.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(st("/inside", None).await, 200);
    assert_eq!(st("/outside", None).await, 403);
    assert_eq!(st("/denied", None).await, 403);
    assert_eq!(st("/proxied", Some("198.51.100.1")).await, 200);
    assert_eq!(st("/proxied", Some("203.0.113.5")).await, 403);
    assert_eq!(st("/legacy", None).await, 403);
    assert_eq!(
        gw.metric("gateway_requests_blocked_total{reason=\"ip_filter\"}")
            .await,
        Some(3.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_validation_lists_violations_with_pointers() {
    let up = Echo::start("u").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schema.json"),
        r#"{"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}, "max_tokens": {"type": "integer", "minimum": 1}}}"#,
    )
    .unwrap();
    let config = dir.path().join("routes.yaml");
    std::fs::write(
        &config,
        table(
            up.addr,
            &[
                ("gen", "{ name: validate, schema_file: schema.json }"),
                (
                    "inline",
                    "{ name: validate, max_body: 1KB, schema: { type: object, properties: { tags: { type: array, items: { type: string } } } } }",
                ),
            ],
        ),
    )
    .unwrap();
    let gw = Gateway::spawn(dir, config, &[]);
    let c = reqwest::Client::new();
    let r = c
        .post(gw.url("/gen"))
        .json(&serde_json::json!({"prompt": "hi", "max_tokens": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(
        b["body_len"].as_u64().unwrap() > 0,
        "the body still goes upstream"
    );

    let r = c
        .post(gw.url("/gen"))
        .json(&serde_json::json!({"prompt": 7, "max_tokens": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "validation_failed");
    let mut pointers: Vec<_> = b["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["pointer"].as_str().unwrap().to_string())
        .collect();
    pointers.sort();
    assert_eq!(pointers, ["/max_tokens", "/prompt"], "{b}");

    let r = c
        .post(gw.url("/inline"))
        .json(&serde_json::json!({"tags": ["a", 2]}))
        .send()
        .await
        .unwrap();
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["violations"][0]["pointer"], "/tags/1", "{b}");

    // the body buffered for the check is bounded
    let r = c
        .post(gw.url("/inline"))
        .body(vec![b' '; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // a GET without a body is not checked
    assert_eq!(c.get(gw.url("/gen")).send().await.unwrap().status(), 200);

    let r = c
        .post(gw.url("/gen"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "invalid_json");
}
