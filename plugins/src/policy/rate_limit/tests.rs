#![allow(clippy::unwrap_used)]

use super::*;
use crate::{CredentialKind, Identity, PluginCtx, RequestCall, RequestInfo};
use pingora_http::RequestHeader;

fn build(v: serde_json::Value) -> Result<RateLimit, SettingsError> {
    let shared = Shared::dry();
    let cx = BuildCtx {
        shared: &shared,
        base_dir: std::path::Path::new("."),
        route: Some("r"),
    };
    RateLimit::new(crate::parse_settings(&v)?, &cx)
}

fn info(ip: &str) -> RequestInfo<'static> {
    RequestInfo {
        client_ip: ip.parse().ok(),
        ..RequestInfo::new("r", "/")
    }
}

async fn status(p: &RateLimit, req: &mut RequestHeader, ip: &str, ctx: &mut PluginCtx) -> u16 {
    match p
        .on_request(&mut RequestCall::new(req, info(ip), ctx))
        .await
        .unwrap()
    {
        Flow::Continue => 200,
        Flow::Respond(r) => r.status,
    }
}

#[tokio::test]
async fn consumer_key_uses_the_identity_else_the_ip() {
    let p = build(serde_json::json!({"average": 1, "burst": 1, "period": "1h", "key": "consumer"}))
        .unwrap();
    let mut req = RequestHeader::build("GET", b"/", None).unwrap();
    let mut alice = PluginCtx {
        identity: Some(Identity::new("alice", CredentialKind::Jwt)),
        ..Default::default()
    };
    assert_eq!(status(&p, &mut req, "10.0.0.1", &mut alice).await, 200);
    // alice from another address shares her bucket
    let mut again = PluginCtx {
        identity: Some(Identity::new("alice", CredentialKind::Jwt)),
        ..Default::default()
    };
    assert_eq!(status(&p, &mut req, "10.0.0.2", &mut again).await, 429);
    let h: Vec<_> = again
        .response_headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert!(
        h.contains(&"ratelimit") && h.contains(&"x-ratelimit-remaining"),
        "{h:?}"
    );
    // bob has his own, anonymous requests go by address
    let mut bob = PluginCtx {
        identity: Some(Identity::new("bob", CredentialKind::Jwt)),
        ..Default::default()
    };
    assert_eq!(status(&p, &mut req, "10.0.0.1", &mut bob).await, 200);
    let mut anon = PluginCtx::default();
    assert_eq!(status(&p, &mut req, "10.0.0.1", &mut anon).await, 200);
    let mut anon = PluginCtx::default();
    assert_eq!(status(&p, &mut req, "10.0.0.1", &mut anon).await, 429);
}

#[test]
fn keys_and_bad_options() {
    let p = build(serde_json::json!({"average": 5, "key": "header:x-api-key"})).unwrap();
    let mut req = RequestHeader::build("GET", b"/", None).unwrap();
    let mut ctx = PluginCtx::default();
    let mut key = |p: &RateLimit, req: &mut RequestHeader| {
        p.key.of(&RequestCall::new(req, info("10.0.0.1"), &mut ctx))
    };
    assert_eq!(key(&p, &mut req), "ip:10.0.0.1");
    req.insert_header("x-api-key", "k1").unwrap();
    assert_eq!(key(&p, &mut req), "h:k1");
    let p = build(serde_json::json!({"average": 5, "key": "route"})).unwrap();
    assert_eq!(key(&p, &mut req), "all");

    let e = build(serde_json::json!({"average": 5, "key": "cookie"}))
        .err()
        .unwrap();
    assert_eq!(e.path, "key");
    let e = build(serde_json::json!({"average": 0})).err().unwrap();
    assert_eq!(e.path, "average");
    let e = build(serde_json::json!({"average": 1, "period": "5"}))
        .err()
        .unwrap();
    assert_eq!(e.path, "period");
    let e = build(serde_json::json!({"average": 1, "trusted_proxies": ["x"]}))
        .err()
        .unwrap();
    assert_eq!(e.path, "trusted_proxies[0]");
    let e = build(serde_json::json!({"average": 1, "store": "memcached"}))
        .err()
        .unwrap();
    assert_eq!(e.path, "store");
}
