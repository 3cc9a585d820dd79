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
    let mut req = RequestHeader::build("POST", b"/auth/token", None).unwrap();
    let f = p
        .on_request(&mut RequestCall::new(
            &mut req,
            info("/auth/token"),
            &mut ctx("alice"),
        ))
        .await
        .unwrap();
    let (status, body) = json_of(f);
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
    let mut req = RequestHeader::build("GET", b"/auth/token", None).unwrap();
    let f = p
        .on_request(&mut RequestCall::new(
            &mut req,
            info("/auth/token"),
            &mut ctx("a"),
        ))
        .await
        .unwrap();
    assert_eq!(json_of(f).0, 405);
    let mut req = RequestHeader::build("POST", b"/auth/other", None).unwrap();
    let f = p
        .on_request(&mut RequestCall::new(
            &mut req,
            info("/auth/other"),
            &mut ctx("a"),
        ))
        .await
        .unwrap();
    assert_eq!(json_of(f).0, 404);
    let mut req = RequestHeader::build("POST", b"/auth/token", None).unwrap();
    let f = p
        .on_request(&mut RequestCall::new(
            &mut req,
            info("/auth/token"),
            &mut PluginCtx::default(),
        ))
        .await
        .unwrap();
    assert_eq!(json_of(f).0, 401);
}
