//! `/admin/plugins/{plugin}/{action}`: the admin actions plugins register in their
//! shared state (a cache purge, a cache's figures). The core passes the method and
//! the JSON body and answers with the action's JSON; it knows no plugin by name.

use super::{err, json};
use crate::gateway::Gateway;
use gateway_plugins::{AdminActionError, AdminRequest};
use http::{Response, StatusCode};
use pingora_core::protocols::http::ServerSession;

/// The largest body an action takes.
const MAX_BODY: usize = 64 * 1024;

pub const PREFIX: &str = "/admin/plugins/";

/// Runs the action `rest` (`{plugin}/{action}`) names, once the caller is authorised.
pub async fn run(gw: &Gateway, session: &mut ServerSession, rest: &str) -> Response<Vec<u8>> {
    let Some((plugin, action)) = rest.split_once('/') else {
        return err(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    };
    let Some(handler) = gw.plugins.admin_action(plugin, action) else {
        return err(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such plugin action (is the plugin on a route?)",
        );
    };
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY => {
                body.extend_from_slice(&chunk)
            }
            Ok(Some(_)) => {
                return err(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "an action's body is at most 64 KiB",
                )
            }
            Ok(None) => break,
            Err(e) => return err(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
        }
    }
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("the body is not JSON: {e}"),
                )
            }
        }
    };
    let method = session.req_header().method.clone();
    match handler(AdminRequest { method, body }) {
        Ok(v) => json(StatusCode::OK, v),
        Err(e @ AdminActionError::BadRequest(_)) => {
            err(StatusCode::BAD_REQUEST, "bad_request", &e.to_string())
        }
        Err(e @ AdminActionError::Method(_)) => err(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &e.to_string(),
        ),
    }
}
