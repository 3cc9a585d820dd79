#![allow(clippy::unwrap_used)]
use super::*;
use crate::{BodyCall, CredentialKind, PluginCtx, RequestCall, RequestInfo, Shared};
use pingora_http::RequestHeader;

fn plugin() -> crate::Instance {
    let shared = Shared::with_env(false, |k| {
        (k == "TOKEN_SECRET").then(|| "s3cret-s3cret".to_string())
    });
    let cx = BuildCtx {
        shared: &shared,
        base_dir: std::path::Path::new("."),
        route: Some("auth"),
    };
    let s = serde_json::json!({"secret_env": "TOKEN_SECRET", "ttl": "1m"});
    crate::registry::build("token", s.as_object().unwrap(), &cx).unwrap()
}

fn info(path: &str) -> RequestInfo<'_> {
    RequestInfo::new("auth", path)
}

fn ctx(consumer: &str) -> PluginCtx {
    let mut id = Identity::new(consumer, CredentialKind::ApiKey);
    id.scopes = vec!["generate".into()];
    PluginCtx {
        identity: Some(id),
        ..Default::default()
    }
}

fn json_of(f: Flow) -> (u16, serde_json::Value) {
    match f {
        Flow::Respond(Reply {
            status,
            body: crate::ReplyBody::Json(v),
            ..
        }) => (status, v),
        Flow::Respond(r) => (r.status, serde_json::Value::Null),
        Flow::Continue => (0, serde_json::Value::Null),
    }
}

/// The request phase's answer to `method path` (status 0: it goes on).
async fn head_call(
    p: &crate::Instance,
    method: &str,
    path: &str,
    ctx: &mut PluginCtx,
) -> (u16, serde_json::Value) {
    let mut req = RequestHeader::build(method, path.as_bytes(), None).unwrap();
    let call = &mut RequestCall::new(&mut req, info(path), ctx);
    json_of(p.on_request(call).await.unwrap())
}

async fn body_call(p: &crate::Instance, path: &str, who: &str, token: &str) -> u16 {
    let req = RequestHeader::build("POST", path.as_bytes(), None).unwrap();
    let body = Bytes::from(serde_json::json!({ "refresh_token": token }).to_string());
    let mut call = BodyCall {
        body: &body,
        req: &req,
        info: info(path),
        ctx: &mut ctx(who),
    };
    let f = p.on_request_body(&mut call).await.unwrap();
    json_of(f).0
}

#[tokio::test]
async fn refresh_tokens_are_single_use_and_bound_to_their_consumer() {
    let p = plugin();
    let (status, body) = head_call(&p, "POST", "/auth/token", &mut ctx("alice")).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "generate");
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(body_call(&p, "/auth/refresh", "alice", "nope").await, 401);
    assert_eq!(body_call(&p, "/auth/refresh", "alice", &refresh).await, 200);
    assert_eq!(body_call(&p, "/auth/refresh", "alice", &refresh).await, 401);
    // revoke always answers 200
    assert_eq!(body_call(&p, "/auth/revoke", "alice", "unknown").await, 200);
}

#[tokio::test]
async fn endpoints_and_methods() {
    let p = plugin();
    let anonymous = &mut PluginCtx::default();
    assert_eq!(
        head_call(&p, "GET", "/auth/token", &mut ctx("a")).await.0,
        405
    );
    assert_eq!(
        head_call(&p, "POST", "/auth/other", &mut ctx("a")).await.0,
        404
    );
    assert_eq!(head_call(&p, "POST", "/auth/token", anonymous).await.0, 401);
}
