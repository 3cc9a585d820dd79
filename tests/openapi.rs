//! The OpenAPI document: generated for the repo's routes.yaml and for a table with
//! auth, rate-limit and validation plugins, each checked by `openapi-spec-validator`
//! (PyPI); served at `/openapi.json`, following reloads; and the `/docs` page rendered
//! in headless Chromium (screenshot saved under the test's output directory).
#![allow(clippy::unwrap_used)]

mod common;

use api_gateway::config::{self, Config};
use common::{Echo, Gateway};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs `openapi-spec-validator` on the document; panics with its output when it
/// refuses it, or with how to install it when it is missing.
fn validate(doc: &Value, name: &str) {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.openapi.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = Command::new("openapi-spec-validator").arg(&path).output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!(
            "openapi-spec-validator is needed for this test ({e}): `pip install openapi-spec-validator` (scripts/test.sh installs it)"
        ),
    };
    assert!(
        out.status.success(),
        "{} is not a valid OpenAPI document:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_repo_table_is_documented_and_valid() {
    let c = config::load_file(&repo_root().join("routes.yaml")).unwrap();
    let doc = api_gateway::openapi::document(&c, repo_root());
    validate(&doc, "routes");
    assert_eq!(doc["openapi"], "3.1.0");
    let p = &doc["paths"];

    // a proxied backend operation gets the backend's own schemas
    let gen = &p["/api/v2/generate"]["post"];
    assert_eq!(gen["operationId"], "generate-v2");
    assert_eq!(
        gen["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/GenerateRequest"
    );
    assert_eq!(
        gen["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/GenerateResponse"
    );
    for s in ["422", "502", "503", "504"] {
        assert!(gen["responses"][s].is_object(), "{s}: {gen}");
    }
    assert!(gen["responses"]["200"]["headers"]["X-Request-ID"].is_object());
    assert!(gen["responses"]["503"]["headers"]["Retry-After"].is_object());
    let enr = &p["/api/v2/enrich"]["post"];
    assert_eq!(
        enr["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/DocumentIn"
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["GenerateRequest"]["required"][0], "prompt");
    assert!(schemas["EnrichedDocument"]["properties"]["keywords"].is_object());
    assert_eq!(
        schemas["Error"]["required"],
        serde_json::json!(["error", "message", "request_id"])
    );

    // deprecation and sunset
    let v1 = &p["/api/v1/generate"]["post"];
    assert_eq!(v1["deprecated"], true);
    assert_eq!(v1["x-sunset"], "2027-06-30");
    assert!(v1["responses"]["200"]["headers"]["Sunset"].is_object());
    assert!(p["/api/v2/generate"]["post"].get("deprecated").is_none());

    // the pipeline answer: generation's answer, enrichment's as `result`, and steps
    let proc = &p["/api/v1/process"]["post"];
    let ok = &proc["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(
        ok["properties"]["result"]["$ref"],
        "#/components/schemas/EnrichedDocument"
    );
    assert_eq!(
        ok["properties"]["generation"]["$ref"],
        "#/components/schemas/GenerateResponse"
    );
    assert!(
        proc["responses"]["504"].is_object(),
        "the route has a timeout"
    );

    // async: 202 with Location; the job resource with its 404
    let sub = &p["/api/v1/async-process"]["post"];
    assert!(sub["responses"]["202"]["headers"]["Location"].is_object());
    assert_eq!(
        sub["responses"]["202"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Accepted"
    );
    let job = &p["/api/v1/jobs/{job_id}"]["get"];
    assert_eq!(job["parameters"][0]["name"], "job_id");
    assert_eq!(job["parameters"][0]["in"], "path");
    assert!(job["responses"]["404"].is_object());
    assert_eq!(
        job["responses"]["404"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );

    // a GET-only route without a body; tags by upstream and kind
    let m = &p["/internal/generation/metrics"]["get"];
    assert!(m.get("requestBody").is_none());
    assert_eq!(m["tags"][0], "generation");
    assert_eq!(proc["tags"][0], "pipeline");
    assert_eq!(job["tags"][0], "jobs");
    assert!(m["responses"]["403"].is_object(), "ip_restriction refuses");
}

const PLUGINS_TABLE: &str = r#"
version: 1
upstreams:
  generation: { targets: [{ addr: "127.0.0.1:8001" }] }
  files: { targets: [{ addr: "127.0.0.1:8003" }] }
plugins:
  - { name: rate_limit, average: 100, period: 1m }
routes:
  - name: generate
    match: { path: /api/v1/generate, methods: [POST] }
    upstream: generation
    rewrite: { strip_prefix: /api/v1 }
    plugins:
      - { name: jwt, secret_env: JWT_SECRET, algorithms: [HS256], scopes: [generate] }
      - name: validate
        schema: { type: object, required: [prompt], properties: { prompt: { type: string, maxLength: 200 } } }
  - name: files
    match: { path_prefix: /files }
    upstream: files
    plugins:
      - { name: api_key, keys_file: keys.yaml, query: api_key }
      - { name: rate_limit, enabled: false }
  - name: admin
    match: { path: "/admin/{user}/items/{item}", methods: [GET, DELETE], headers: { x-tenant: acme } }
    upstream: files
    deprecated: true
    plugins:
      - { name: basic_auth, htpasswd_file: users.htpasswd }
      - { name: mtls }
      - { name: oauth2_introspection, endpoint: "https://as.example.com/introspect", client_id: gw, client_secret_env: AS_SECRET }
  - name: auth-token
    match: { path_prefix: /auth, methods: [POST] }
    fallback: { status: 404 }
    plugins:
      - { name: api_key, keys_file: keys.yaml }
      - { name: token, secret_env: JWT_SECRET, ttl: 15m }
"#;

/// The generator works on the table as written: plugins built on other branches (jwt,
/// api_key, validate...) are read from their settings, not built.
#[test]
fn auth_rate_limit_and_validate_plugins_are_documented() {
    let c: Config = serde_yaml::from_str(PLUGINS_TABLE).unwrap();
    let doc = api_gateway::openapi::document(&c, repo_root());
    validate(&doc, "plugins");
    let schemes = &doc["components"]["securitySchemes"];
    let p = &doc["paths"];

    // jwt: bearer JWT; validate: the request body; global rate_limit: 429 + headers
    let gen = &p["/api/v1/generate"]["post"];
    let jwt_key = gen["security"][0]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap();
    assert_eq!(schemes[jwt_key]["scheme"], "bearer");
    assert_eq!(schemes[jwt_key]["bearerFormat"], "JWT");
    let body = &gen["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["allOf"][0]["properties"]["prompt"]["maxLength"], 200);
    assert_eq!(
        body["allOf"][1]["$ref"],
        "#/components/schemas/GenerateRequest"
    );
    let r = &gen["responses"];
    for s in ["400", "401", "403", "413", "429", "502", "503", "504"] {
        assert!(r[s].is_object(), "{s} missing: {r}");
    }
    assert!(r["401"]["headers"]["WWW-Authenticate"].is_object());
    for h in [
        "Retry-After",
        "RateLimit",
        "RateLimit-Policy",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-Request-ID",
    ] {
        assert!(r["429"]["headers"][h].is_object(), "{h}");
    }
    assert!(r["200"]["headers"]["RateLimit"].is_object());

    // api_key in a header or a query parameter: two alternatives; the global
    // rate_limit turned off on this route; a prefix route is marked as such
    for m in ["get", "post", "put", "patch", "delete", "head", "options"] {
        assert!(p["/files"][m].is_object(), "{m}");
    }
    let files = &p["/files"]["get"];
    assert_eq!(files["x-gateway-path-prefix"], true);
    assert_eq!(files["operationId"], "files-get");
    let alts: Vec<&str> = files["security"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_object().unwrap().keys().next().unwrap().as_str())
        .collect();
    assert_eq!(alts.len(), 2);
    let ins: Vec<(&str, &str)> = alts
        .iter()
        .map(|k| {
            (
                schemes[*k]["in"].as_str().unwrap(),
                schemes[*k]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(ins.contains(&("header", "X-API-Key")), "{ins:?}");
    assert!(ins.contains(&("query", "api_key")), "{ins:?}");
    assert!(files["responses"].get("429").is_none());

    // basic + mTLS + introspection all required at once; path and header parameters
    let admin = &p["/admin/{user}/items/{item}"]["delete"];
    let req = admin["security"][0].as_object().unwrap();
    assert_eq!(req.len(), 3, "{req:?}");
    let types: Vec<&str> = req
        .keys()
        .map(|k| {
            schemes[k]["scheme"]
                .as_str()
                .or(schemes[k]["type"].as_str())
                .unwrap()
        })
        .collect();
    for t in ["basic", "mutualTLS", "bearer"] {
        assert!(types.contains(&t), "{types:?}");
    }
    let names: Vec<&str> = admin["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["user", "item", "x-tenant"]);
    assert_eq!(admin["deprecated"], true);

    // the token plugin's endpoints, for a caller with an API key
    assert!(p.get("/auth").is_none());
    let issue = &p["/auth/token"]["post"];
    assert_eq!(issue["operationId"], "auth-token-token");
    assert_eq!(
        issue["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/TokenPair"
    );
    let key = issue["security"][0]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap();
    assert_eq!(schemes[key]["in"], "header");
    let refresh = &p["/auth/refresh"]["post"];
    assert_eq!(
        refresh["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/RefreshTokenRequest"
    );
    assert!(refresh["responses"]["401"].is_object());
    assert!(p["/auth/revoke"]["post"].is_object());
    assert!(doc["components"]["schemas"]["TokenPair"].is_object());
}

fn served_table(echo: &str, extra: &str) -> String {
    format!(
        r#"version: 1
upstreams:
  echo: {{ targets: [{{ addr: "{echo}" }}] }}
routes:
  - name: things
    match: {{ path: "/api/v1/things/{{id}}", methods: [GET] }}
    upstream: echo
    plugins:
      - {{ name: ip_restriction, allow: [127.0.0.0/8] }}
{extra}"#
    )
}

async fn fetch_doc(gw: &Gateway) -> (Value, reqwest::header::HeaderMap) {
    let r = reqwest::get(gw.url("/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    (r.json().await.unwrap(), h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_json_is_served_and_follows_reloads() {
    let echo = Echo::start("echo").await;
    let addr = echo.addr.to_string();
    let gw = Gateway::start(&served_table(&addr, ""));
    let (doc, headers) = fetch_doc(&gw).await;
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(headers["content-type"], "application/json");
    validate(&doc, "served");
    assert!(doc["paths"]["/api/v1/things/{id}"]["get"].is_object());
    assert!(doc["paths"]["/openapi.json"]["get"].is_object());
    assert!(doc["paths"].get("/api/v1/new").is_none());
    let post = reqwest::Client::new()
        .post(gw.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");

    // a route added to the file appears once the reload is applied
    gw.write_config(&served_table(
        &addr,
        "  - { name: new-route, match: { path: /api/v1/new, methods: [POST] }, upstream: echo }\n",
    ));
    let mut seen = None;
    for _ in 0..100 {
        let (doc, _) = fetch_doc(&gw).await;
        if doc["paths"]["/api/v1/new"]["post"].is_object() {
            seen = Some(doc);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let doc = seen.expect("the new route never appeared in /openapi.json");
    assert_eq!(
        doc["paths"]["/api/v1/new"]["post"]["operationId"],
        "new-route"
    );
    validate(&doc, "reloaded");

    // the offline command prints the same document for the same file
    let out = Command::new(common::gateway_bin())
        .args(["openapi", gw.config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let offline: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(offline, doc);
}

fn headless(args: &[&str]) -> String {
    common::browser::headless("1280,1100", 10000, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_renders_the_operations_in_a_browser() {
    let echo = Echo::start("echo").await;
    let gw = Gateway::start(&served_table(&echo.addr.to_string(), ""));
    // the page's files are built in
    for (path, ct) in [
        ("/docs", "text/html"),
        ("/docs/swagger-ui-bundle.js", "application/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ] {
        let r = reqwest::get(gw.url(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let got = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(got.starts_with(ct), "{path}: {got}");
    }
    assert_eq!(
        reqwest::get(gw.url("/docs/missing.js"))
            .await
            .unwrap()
            .status(),
        404
    );

    let url = gw.url("/docs");
    let dom = headless(&["--dump-dom", &url]);
    assert!(dom.contains("/api/v1/things/{id}"), "{dom}");
    assert!(dom.contains("opblock-get"), "{dom}");
    assert!(dom.contains("/openapi.json"), "{dom}");

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-docs.png");
    let _ = std::fs::remove_file(&shot);
    headless(&[&format!("--screenshot={}", shot.display()), &url]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        shot.display()
    );
    println!("docs screenshot: {}", shot.display());
}
