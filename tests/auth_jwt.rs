//! The `jwt` plugin through a real gateway: a valid token of each algorithm family
//! (HMAC, RSA, RSA-PSS, ECDSA, EdDSA), then the attacks (alg none, HS256 signed with the
//! RSA public key, expired, nbf in the future, string-typed exp, wrong iss/aud, bad
//! signature, tampered payload, malformed base64, an 8 KB token), and keys from a JWKS
//! URL served by a local HTTP server (unknown kid: one refetch, then refused; endpoint
//! down: cached keys keep working; `jku` ignored). The access log never holds a token.
#![allow(clippy::unwrap_used)]

mod auth_common;
mod common;
use auth_common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

const SECRET: &str = "integration-secret-0123456789abcdef";

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn hs(claims: serde_json::Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

fn good_claims() -> serde_json::Value {
    json!({"sub": "alice", "exp": now() + 300, "iat": now(), "scope": "generate read"})
}

/// Sends GET `path` with the bearer token (if any); returns status, headers, body.
async fn call(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut rb = c.get(gw.url(path)).header("x-user-id", "forged");
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, headers, body)
}

fn table(up: std::net::SocketAddr, extra_routes: &str) -> String {
    format!(
        r#"version: 1
upstreams:
  u: {{ targets: [{{ addr: "{up}" }}] }}
routes:
  - name: hs
    match: {{ path_prefix: /hs }}
    upstream: u
    plugins: [{{ name: jwt, secret_env: JWT_SECRET, algorithms: [HS256], scopes: [generate] }}]
  - name: claims
    match: {{ path_prefix: /claims }}
    upstream: u
    plugins: [{{ name: jwt, secret_env: JWT_SECRET, algorithms: [HS256], issuer: idp, audience: [api] }}]
  - name: rs
    match: {{ path_prefix: /rs }}
    upstream: u
    plugins: [{{ name: jwt, public_key_file: rsa.pem, algorithms: [RS256, RS384, RS512, PS256, HS256] }}]
  - name: es256
    match: {{ path_prefix: /es256 }}
    upstream: u
    plugins: [{{ name: jwt, public_key_file: ec256.pem, algorithms: [ES256] }}]
  - name: es384
    match: {{ path_prefix: /es384 }}
    upstream: u
    plugins: [{{ name: jwt, public_key_file: ec384.pem, algorithms: [ES384] }}]
  - name: ed
    match: {{ path_prefix: /ed }}
    upstream: u
    plugins: [{{ name: jwt, public_key_file: ed.pem, algorithms: [EdDSA] }}]
{extra_routes}"#
    )
}

fn start(routes: &str, files: &[(&str, &str)]) -> Gateway {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    Gateway::start_with_files(routes, &files, &[("JWT_SECRET", SECRET)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_algorithm_family_and_every_attack() {
    let up = Echo::start("u").await;
    let rsa = rsa_pair();
    let ec256 = rcgen_pair(&rcgen::PKCS_ECDSA_P256_SHA256, false);
    let ec384 = rcgen_pair(&rcgen::PKCS_ECDSA_P384_SHA384, false);
    let ed = rcgen_pair(&rcgen::PKCS_ED25519, true);
    let gw = start(
        &table(up.addr, ""),
        &[
            ("rsa.pem", &rsa.public_pem),
            ("ec256.pem", &ec256.public_pem),
            ("ec384.pem", &ec384.public_pem),
            ("ed.pem", &ed.public_pem),
        ],
    );
    let c = reqwest::Client::new();
    let mut sent = Vec::new();

    // a valid token of each family; the identity headers come from the token only
    let cases: Vec<(&str, String)> = vec![
        ("/hs", hs(good_claims())),
        (
            "/rs",
            sign(Algorithm::RS256, None, &good_claims(), &rsa.enc),
        ),
        (
            "/rs",
            sign(Algorithm::RS512, None, &good_claims(), &rsa.enc),
        ),
        (
            "/rs",
            sign(Algorithm::PS256, None, &good_claims(), &rsa.enc),
        ),
        (
            "/es256",
            sign(Algorithm::ES256, None, &good_claims(), &ec256.enc),
        ),
        (
            "/es384",
            sign(Algorithm::ES384, None, &good_claims(), &ec384.enc),
        ),
        ("/ed", sign(Algorithm::EdDSA, None, &good_claims(), &ed.enc)),
    ];
    for (path, token) in &cases {
        let (status, _, body) = call(&c, &gw, path, Some(token)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["headers"]["x-user-id"], "alice", "{path}");
        assert_eq!(body["headers"]["x-scopes"], "generate read", "{path}");
        sent.push(token.clone());
    }

    // the scheme is case-insensitive; another scheme is refused
    let r = c
        .get(gw.url("/hs"))
        .header("authorization", format!("bearer {}", cases[0].1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(gw.url("/hs"))
        .header("authorization", format!("Basic {}", cases[0].1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // no token: 401 with a bare Bearer challenge
    let (status, h, body) = call(&c, &gw, "/hs", None).await;
    assert_eq!(status, 401);
    assert!(h["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(body["error"], "unauthorized");

    let valid_rs = sign(Algorithm::RS256, None, &good_claims(), &rsa.enc);
    let (head, rest) = valid_rs.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let forged_payload = URL_SAFE_NO_PAD
        .encode(json!({"sub": "admin", "exp": now() + 300, "scope": "generate read"}).to_string());
    let none_head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let mut flipped = sig.as_bytes().to_vec();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let big = hs(
        json!({"sub": "alice", "exp": now() + 300, "scope": "generate", "pad": "x".repeat(8 * 1024)}),
    );
    // (path, token, reason)
    let attacks: Vec<(&str, &str, String, &str)> = vec![
        (
            "alg none",
            "/rs",
            format!("{none_head}.{payload}."),
            "wrong_algorithm",
        ),
        (
            "alg none (hs route)",
            "/hs",
            format!("{none_head}.{payload}."),
            "wrong_algorithm",
        ),
        (
            "HS256 signed with the RSA public key",
            "/rs",
            sign(
                Algorithm::HS256,
                None,
                &good_claims(),
                &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
            ),
            "wrong_algorithm",
        ),
        (
            "expired",
            "/hs",
            hs(json!({"sub": "a", "exp": now() - 120, "scope": "generate"})),
            "expired",
        ),
        (
            "nbf in the future",
            "/hs",
            hs(json!({"sub": "a", "exp": now() + 7200, "nbf": now() + 3600, "scope": "generate"})),
            "not_yet_valid",
        ),
        (
            "iat in the future",
            "/hs",
            hs(json!({"sub": "a", "exp": now() + 7200, "iat": now() + 3600, "scope": "generate"})),
            "not_yet_valid",
        ),
        (
            "string-typed exp",
            "/hs",
            hs(json!({"sub": "a", "exp": (now() + 300).to_string(), "scope": "generate"})),
            "malformed",
        ),
        (
            "string-typed nbf",
            "/hs",
            hs(
                json!({"sub": "a", "exp": now() + 300, "nbf": (now() + 3600).to_string(), "scope": "generate"}),
            ),
            "malformed",
        ),
        (
            "no exp",
            "/hs",
            hs(json!({"sub": "a", "scope": "generate"})),
            "malformed",
        ),
        (
            "wrong iss",
            "/claims",
            hs(json!({"sub": "a", "exp": now() + 300, "iss": "evil", "aud": "api"})),
            "wrong_issuer",
        ),
        (
            "wrong aud",
            "/claims",
            hs(json!({"sub": "a", "exp": now() + 300, "iss": "idp", "aud": "other"})),
            "wrong_audience",
        ),
        (
            "bad signature",
            "/rs",
            format!("{head}.{payload}.{}", String::from_utf8(flipped).unwrap()),
            "bad_signature",
        ),
        (
            "tampered payload",
            "/rs",
            format!("{head}.{forged_payload}.{sig}"),
            "bad_signature",
        ),
        (
            "malformed base64",
            "/rs",
            format!("{head}.{payload}!!.{sig}"),
            "malformed",
        ),
        ("not a JWT", "/hs", "zzz-not-a-jwt".to_string(), "malformed"),
        ("an 8 KB token", "/hs", big.clone(), "malformed"),
        (
            "wrong HMAC secret",
            "/hs",
            sign(
                Algorithm::HS256,
                None,
                &good_claims(),
                &EncodingKey::from_secret(b"guessed"),
            ),
            "bad_signature",
        ),
    ];
    assert!(big.len() > 8 * 1024);
    // the Basic-scheme request above counted as malformed
    let mut expected: HashMap<&str, f64> = HashMap::from([("malformed", 1.0)]);
    for (what, path, token, reason) in &attacks {
        let (status, h, body) = call(&c, &gw, path, Some(token)).await;
        assert_eq!(status, 401, "{what}: {body}");
        let challenge = h["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        assert!(
            !body.to_string().contains(token.as_str()),
            "{what}: the answer echoes the token"
        );
        *expected.entry(reason).or_default() += 1.0;
        sent.push(token.clone());
    }
    for (reason, n) in &expected {
        let series = format!("gateway_auth_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(gw.metric(&series).await, Some(*n), "{series}");
    }

    // a valid token without the required scope: 403 insufficient_scope
    let t = hs(json!({"sub": "bob", "exp": now() + 300, "scp": ["read"]}));
    let (status, h, body) = call(&c, &gw, "/hs", Some(&t)).await;
    assert_eq!(status, 403, "{body}");
    let challenge = h["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"generate\""), "{challenge}");
    assert!(
        body["message"].as_str().unwrap().contains("generate"),
        "{body}"
    );
    assert!(
        gw.metric("gateway_auth_requests_total{method=\"jwt\"}")
            .await
            .unwrap()
            >= 20.0
    );

    // the access log names the consumer but never holds a token
    let logs = gw.logs();
    assert!(
        logs.contains("\"user_id\":\"alice\""),
        "no user_id in the access log"
    );
    for t in &sent {
        let sig = t.rsplit('.').next().unwrap();
        assert!(
            sig.len() < 20 || !logs.contains(sig),
            "a token reached the log"
        );
        // a 3-letter token like `abc` may occur by chance in hex trace ids
        assert!(
            t.len() < 20 || !logs.contains(t.as_str()),
            "a token reached the log"
        );
    }
    assert!(!logs.to_lowercase().contains("bearer "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_url_kid_refetch_and_outage() {
    let up = Echo::start("u").await;
    let rsa = rsa_pair();
    let ec = rcgen_pair(&rcgen::PKCS_ECDSA_P256_SHA256, false);
    let ec384 = rcgen_pair(&rcgen::PKCS_ECDSA_P384_SHA384, false);
    let ed = rcgen_pair(&rcgen::PKCS_ED25519, true);
    let mut jwk_rs = Jwk::from_encoding_key(&rsa.enc, Algorithm::RS256).unwrap();
    jwk_rs.common.key_id = Some("rs-1".into());
    let mut jwk_ec = Jwk::from_encoding_key(&ec.enc, Algorithm::ES256).unwrap();
    jwk_ec.common.key_id = Some("ec-1".into());
    let doc = serde_json::to_value(JwkSet {
        keys: vec![jwk_rs, jwk_ec],
    })
    .unwrap();
    let mut server = JwksServer::start(doc);
    let extra = format!(
        r#"  - name: jwks
    match: {{ path_prefix: /jwks }}
    upstream: u
    plugins: [{{ name: jwt, jwks_url: "http://{a}/a.json", jwks_refresh: 1h, algorithms: [RS256, ES256] }}]
  - name: jwks-fast
    match: {{ path_prefix: /fast }}
    upstream: u
    plugins: [{{ name: jwt, jwks_url: "http://{a}/b.json", jwks_refresh: 1s }}]
"#,
        a = server.addr
    );
    let gw = start(
        &table(up.addr, &extra),
        &[
            ("rsa.pem", &rsa.public_pem),
            ("ec256.pem", &ec.public_pem),
            ("ec384.pem", &ec384.public_pem),
            ("ed.pem", &ed.public_pem),
        ],
    );
    let c = reqwest::Client::new();
    assert!(
        wait_until(Duration::from_secs(10), || async {
            server.hits("/a.json") >= 1 && server.hits("/b.json") >= 1
        })
        .await
        .is_some(),
        "the JWKS was not fetched at start"
    );
    let claims = good_claims();
    let rs = sign(Algorithm::RS256, Some("rs-1"), &claims, &rsa.enc);
    let es = sign(Algorithm::ES256, Some("ec-1"), &claims, &ec.enc);
    for t in [&rs, &es] {
        let (status, _, body) = call(&c, &gw, "/jwks", Some(t)).await;
        assert_eq!(status, 200, "{body}");
    }
    // a JWK's own `alg` pins it: PS256 with the RS256 key is refused even on a route
    // that names no algorithms
    let ps = sign(Algorithm::PS256, Some("rs-1"), &claims, &rsa.enc);
    assert_eq!(call(&c, &gw, "/fast", Some(&ps)).await.0, 401);
    assert_eq!(call(&c, &gw, "/fast", Some(&rs)).await.0, 200);
    // the RSA key's token cannot claim the EC key's kid
    let mixed = sign(Algorithm::RS256, Some("ec-1"), &claims, &rsa.enc);
    assert_eq!(call(&c, &gw, "/jwks", Some(&mixed)).await.0, 401);

    // unknown kid: one refetch, then refused; more unknown kids within the interval
    // fetch nothing
    let before = server.hits("/a.json");
    let unknown = sign(Algorithm::RS256, Some("rs-9"), &claims, &rsa.enc);
    let (status, _, body) = call(&c, &gw, "/jwks", Some(&unknown)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(server.hits("/a.json"), before + 1);
    for _ in 0..5 {
        assert_eq!(call(&c, &gw, "/jwks", Some(&unknown)).await.0, 401);
    }
    assert_eq!(
        server.hits("/a.json"),
        before + 1,
        "refetches are rate limited"
    );
    assert_eq!(
        gw.metric("gateway_auth_failures_total{reason=\"unknown_key\"}")
            .await,
        Some(6.0)
    );

    // a token pointing at its own key set (jku/x5u) is not followed
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("evil".into());
    h.jku = Some(format!("http://{}/evil.json", server.addr));
    h.x5u = Some(format!("http://{}/evil.pem", server.addr));
    let evil = encode(&h, &claims, &rsa.enc).unwrap();
    assert_eq!(call(&c, &gw, "/jwks", Some(&evil)).await.0, 401);
    assert_eq!(server.hits("/evil.json") + server.hits("/evil.pem"), 0);

    // the endpoint goes down: the keys held keep working
    server.stop();
    let failed = wait_until(Duration::from_secs(10), || async {
        gw.metric("gateway_plugin_dependency_errors_total{dependency=\"jwks\",plugin=\"jwt\"}")
            .await
            .unwrap_or(0.0)
            >= 2.0
    })
    .await;
    assert!(failed.is_some(), "no failed refresh was counted");
    for path in ["/jwks", "/fast"] {
        let (status, _, body) = call(&c, &gw, path, Some(&rs)).await;
        assert_eq!(
            status, 200,
            "{path} after the JWKS endpoint went down: {body}"
        );
    }
}

#[test]
fn a_bad_jwt_option_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("routes.yaml");
    std::fs::write(
        &f,
        "version: 1\nupstreams:\n  u: { targets: [{ addr: \"127.0.0.1:9\" }] }\nroutes:\n  - name: r\n    match: { path_prefix: /r }\n    upstream: u\n    plugins:\n      - name: jwt\n        secret_env: JWT_SECRET\n        algorithms:\n          - HS256\n          - HS999\n",
    )
    .unwrap();
    let out = std::process::Command::new(gateway_bin())
        .arg("check")
        .arg(&f)
        .env_remove("JWT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 13, column 13: routes[0].plugins[0].algorithms[1]"),
        "{err}"
    );
}
