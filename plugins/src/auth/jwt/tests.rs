#![allow(clippy::unwrap_used)]
use super::*;
use crate::{PluginCtx, RequestCall, RequestInfo, Shared};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use pingora_http::RequestHeader;
use serde_json::{json, Map};

const SECRET: &str = "unit-test-secret-unit-test-secret";

fn build(v: serde_json::Value) -> Result<crate::Instance, SettingsError> {
    let shared = Shared::with_env(false, |k| (k == "JWT_SECRET").then(|| SECRET.to_string()));
    let cx = BuildCtx {
        shared: &shared,
        base_dir: std::path::Path::new("."),
        route: Some("r"),
    };
    crate::registry::build("jwt", v.as_object().unwrap(), &cx)
        .map_err(|e| SettingsError::at(e.path(), e.to_string()))
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn hs(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn run(p: &crate::Instance, token: Option<&str>) -> (Option<u16>, PluginCtx, RequestHeader) {
    let mut req = RequestHeader::build("GET", b"/x", None).unwrap();
    req.insert_header("x-user-id", "forged").unwrap();
    req.insert_header("X_User_Id", "forged").unwrap();
    req.insert_header("x-scopes_", "kept").unwrap();
    if let Some(t) = token {
        req.insert_header("authorization", format!("Bearer {t}"))
            .unwrap();
    }
    let info = RequestInfo::new("r", "/x");
    let mut ctx = PluginCtx::default();
    let status = match p
        .on_request(&mut RequestCall::new(&mut req, info, &mut ctx))
        .await
        .unwrap()
    {
        Flow::Continue => None,
        Flow::Respond(r) => Some(r.status),
    };
    (status, ctx, req)
}

fn contract() -> crate::Instance {
    build(json!({"secret_env": "JWT_SECRET", "algorithms": ["HS256"], "scopes": ["generate"]}))
        .unwrap()
}

#[tokio::test]
async fn valid_token_sets_identity_and_headers() {
    let p = contract();
    let t = hs(
        json!({"sub": "alice", "exp": now() + 60, "scope": "generate read", "roles": ["admin"]}),
    );
    let (status, ctx, req) = run(&p, Some(&t)).await;
    assert_eq!(status, None);
    let id = ctx.identity.unwrap();
    assert_eq!(id.consumer, "alice");
    assert!(id.has_role("admin"));
    assert_eq!(req.headers["x-user-id"], "alice");
    assert_eq!(req.headers.get_all("x-user-id").iter().count(), 1);
    assert!(req.headers.get("x_user_id").is_none());
    assert_eq!(req.headers["x-scopes"], "generate read");
    assert_eq!(req.headers["x-scopes_"], "kept");
}

#[tokio::test]
async fn refusals() {
    let p = contract();
    // missing: the forged identity header is gone anyway
    let (status, _, req) = run(&p, None).await;
    assert_eq!(status, Some(401));
    assert!(req.headers.get("x-user-id").is_none());
    // expired beyond the leeway; within it passes
    let t = hs(json!({"sub": "a", "exp": now() - 120, "scope": "generate"}));
    assert_eq!(run(&p, Some(&t)).await.0, Some(401));
    let t = hs(json!({"sub": "a", "exp": now() - 5, "scope": "generate"}));
    assert_eq!(run(&p, Some(&t)).await.0, None);
    // no exp at all
    let t = hs(json!({"sub": "a", "scope": "generate"}));
    assert_eq!(run(&p, Some(&t)).await.0, Some(401));
    // string-typed exp and nbf (CVE-2026-25537: must not count as absent)
    let t = hs(json!({"sub": "a", "exp": (now() + 60).to_string(), "scope": "generate"}));
    assert_eq!(run(&p, Some(&t)).await.0, Some(401));
    let t = hs(
        json!({"sub": "a", "exp": now() + 60, "nbf": (now() + 3600).to_string(), "scope": "generate"}),
    );
    assert_eq!(run(&p, Some(&t)).await.0, Some(401));
    // nbf and iat in the future
    let t = hs(json!({"sub": "a", "exp": now() + 7200, "nbf": now() + 3600, "scope": "generate"}));
    assert_eq!(run(&p, Some(&t)).await.0, Some(401));
    let t = hs(json!({"sub": "a", "exp": now() + 7200, "iat": now() + 3600, "scope": "generate"}));
    assert_eq!(run(&p, Some(&t)).await.0, Some(401));
    // scope missing: 403
    let t = hs(json!({"sub": "a", "exp": now() + 60, "scope": "read"}));
    assert_eq!(run(&p, Some(&t)).await.0, Some(403));
    // alg none
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD
        .encode(json!({"sub": "a", "exp": now() + 60, "scope": "generate"}).to_string());
    assert_eq!(run(&p, Some(&format!("{head}.{body}."))).await.0, Some(401));
    // HS384 with the right secret but not in `algorithms`
    let t = encode(
        &Header::new(Algorithm::HS384),
        &json!({"sub": "a", "exp": now() + 60, "scope": "generate"}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(run(&p, Some(&t)).await.0, Some(401));
    // garbage
    assert_eq!(run(&p, Some("a.b.c")).await.0, Some(401));
    assert_eq!(run(&p, Some(&"x".repeat(9000))).await.0, Some(401));
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured() {
    let p = build(json!({"secret_env": "JWT_SECRET", "issuer": "idp", "audience": ["api", "web"]}))
        .unwrap();
    let ok = hs(json!({"sub": "a", "exp": now() + 60, "iss": "idp", "aud": "web"}));
    assert_eq!(run(&p, Some(&ok)).await.0, None);
    for bad in [
        json!({"sub": "a", "exp": now() + 60, "aud": "web"}),
        json!({"sub": "a", "exp": now() + 60, "iss": "other", "aud": "web"}),
        json!({"sub": "a", "exp": now() + 60, "iss": "idp", "aud": "other"}),
        json!({"sub": "a", "exp": now() + 60, "iss": "idp"}),
    ] {
        assert_eq!(run(&p, Some(&hs(bad))).await.0, Some(401));
    }
}

#[test]
fn settings_errors_are_located() {
    let e = build(json!({"secret_env": "JWT_SECRET", "algorithms": ["HS256", "XX1"]}))
        .err()
        .unwrap();
    assert_eq!(e.path, "algorithms[1]");
    let e = build(json!({"secret_env": "JWT_SECRET", "algorithms": ["RS256"]}))
        .err()
        .unwrap();
    assert_eq!(e.path, "secret_env");
    let e = build(json!({"secret_env": "NOPE"})).err().unwrap();
    assert_eq!(e.path, "secret_env");
    let e = build(json!({"secret_env": "JWT_SECRET", "leeway": "later"}))
        .err()
        .unwrap();
    assert_eq!(e.path, "leeway");
    let e = build(json!({"jwks_url": "ftp://x"})).err().unwrap();
    assert_eq!(e.path, "jwks_url");
    assert!(build(json!({})).is_err());
}

#[test]
fn a_dry_build_opens_nothing() {
    let shared = Shared::dry();
    let cx = BuildCtx {
        shared: &shared,
        base_dir: std::path::Path::new("."),
        route: None,
    };
    let s = json!({"jwks_url": "http://127.0.0.1:9/jwks.json"});
    assert!(crate::registry::build("jwt", s.as_object().unwrap(), &cx).is_ok());
}

/// CPU time of this thread, in microseconds (utime + stime of /proc/thread-self/stat).
fn thread_cpu_us() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000) // USER_HZ = 100
}

/// Cost probe, run by hand (never asserts speed):
/// `cargo test --release -p gateway-plugins jwt_cpu_cost -- --ignored --nocapture`.
/// Thread CPU time, so other processes on the machine do not inflate it.
#[test]
#[ignore]
fn jwt_cpu_cost() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let p = contract();
    let t = hs(
        json!({"sub": "bench", "iat": now(), "nbf": now() - 60, "exp": now() + 86400, "scope": "bench generate"}),
    );
    let info = RequestInfo::new("r", "/x");
    let base = RequestHeader::build("GET", b"/x", None).unwrap();
    let n = 200_000u64;
    rt.block_on(async {
        let mut req = base.clone();
        req.insert_header("authorization", format!("Bearer {t}")).unwrap();
        let start = thread_cpu_us().unwrap();
        for _ in 0..n {
            let mut r = req.clone();
            let mut ctx = PluginCtx::default();
            let f = p.on_request(&mut RequestCall::new(&mut r, info, &mut ctx)).await.unwrap();
            assert!(matches!(f, Flow::Continue));
        }
        let jwt = thread_cpu_us().unwrap() - start;
        // the same loop without the plugin: what cloning the request costs
        let start = thread_cpu_us().unwrap();
        for _ in 0..n {
            let r = std::hint::black_box(req.clone());
            drop(r);
        }
        let clone = thread_cpu_us().unwrap() - start;
        println!(
            "jwt HS256 on_request: {:.2} µs CPU per request ({n} requests; request clone {:.2} µs subtracted)",
            (jwt.saturating_sub(clone)) as f64 / n as f64,
            clone as f64 / n as f64
        );
    });
}

#[test]
#[ignore]
fn jwt_cpu_parts() {
    let t = hs(
        json!({"sub": "bench", "iat": now(), "nbf": now() - 60, "exp": now() + 86400, "scope": "bench generate"}),
    );
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes());
    let v = verify::validation(&[Algorithm::HS256], 30, None, None);
    let n = 200_000u64;
    let time = |name: &str, f: &mut dyn FnMut()| {
        let start = thread_cpu_us().unwrap();
        for _ in 0..n {
            f();
        }
        let us = thread_cpu_us().unwrap() - start;
        println!("{name}: {:.2} µs", us as f64 / n as f64);
    };
    time("decode_header", &mut || {
        std::hint::black_box(jsonwebtoken::decode_header(&t).unwrap());
    });
    time("decode Map", &mut || {
        std::hint::black_box(
            jsonwebtoken::decode::<Map<String, serde_json::Value>>(&t, &key, &v).unwrap(),
        );
    });
    time("decode IgnoredAny", &mut || {
        std::hint::black_box(jsonwebtoken::decode::<serde::de::IgnoredAny>(&t, &key, &v).unwrap());
    });
    let shared = Shared::with_env(false, |k| (k == "JWT_SECRET").then(|| SECRET.to_string()));
    let cx = BuildCtx {
        shared: &shared,
        base_dir: std::path::Path::new("."),
        route: Some("r"),
    };
    let s: JwtSettings = crate::parse_settings(
        &json!({"secret_env": "JWT_SECRET", "algorithms": ["HS256"], "scopes": ["generate"]}),
    )
    .unwrap();
    let plugin = Jwt::new(s, &cx).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    time("verifier.check", &mut || {
        std::hint::black_box(rt.block_on(plugin.verifier.check(&t)));
    });
    let claims = jsonwebtoken::decode::<Map<String, serde_json::Value>>(&t, &key, &v)
        .unwrap()
        .claims;
    time("identity", &mut || {
        std::hint::black_box(claims::identity(&claims, "sub", "roles"));
    });
    let m = PluginMetrics::unregistered();
    time("metric with_label_values", &mut || {
        m.auth_requests.with_label_values(&["jwt"]).inc();
    });
}

/// A token signed with the right key whose header is `head` (raw JSON).
fn signed_with_header(head: &str, claims: serde_json::Value) -> String {
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(head),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{msg}.{sig}")
}

#[tokio::test]
async fn critical_extensions_are_refused() {
    let p = contract();
    let claims = json!({"sub": "a", "exp": now() + 60, "scope": "generate"});
    // the same header without `crit` passes: the signature is right
    let plain = signed_with_header(r#"{"alg":"HS256","typ":"JWT"}"#, claims.clone());
    assert_eq!(run(&p, Some(&plain)).await.0, None);
    for head in [
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"HS256","\u0063rit":["x"],"x":1}"#,
        r#"{"alg":"HS256","crit":[]}"#,
    ] {
        let t = signed_with_header(head, claims.clone());
        let (status, ctx, req) = run(&p, Some(&t)).await;
        assert_eq!(status, Some(401), "{head}");
        assert!(ctx.identity.is_none());
        assert!(req.headers.get("x-user-id").is_none());
    }
}
