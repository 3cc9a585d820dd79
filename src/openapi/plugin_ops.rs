//! The endpoints of a route with the `token` plugin (built on the auth branch): it
//! answers `POST <route>/token`, `<route>/refresh` and `<route>/revoke` itself, for a
//! caller authenticated by the route's `api_key` or `basic_auth` plugin. The bodies
//! are the plugin's (`plugins/src/auth/token`): an OAuth 2.0-style token answer.

use super::answers::{self, Chain};
use super::responses::{Body, Responses};
use super::Builder;
use crate::config::RouteConfig;
use serde_json::{json, Map, Value};

/// The component schemas of the token endpoints.
pub fn components() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "TokenPair".into(),
        json!({
            "type": "object",
            "description": "A short-lived access token (an HS256 JWT that a `jwt` plugin with the same secret verifies) and a single-use refresh token.",
            "required": ["access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"],
            "properties": {
                "access_token": { "type": "string" },
                "token_type": { "type": "string", "const": "Bearer" },
                "expires_in": { "type": "integer", "description": "Seconds the access token is valid." },
                "refresh_token": { "type": "string" },
                "refresh_expires_in": { "type": "integer", "description": "Seconds the refresh token is valid." },
                "scope": { "type": "string", "description": "The scopes, space-separated." }
            }
        }),
    );
    m.insert(
        "RefreshTokenRequest".into(),
        json!({
            "type": "object",
            "required": ["refresh_token"],
            "properties": { "refresh_token": { "type": "string" } }
        }),
    );
    m
}

/// The three endpoints under `base` (the route's path or prefix): (path suffix,
/// summary, request body component, 200 schema).
pub fn endpoints() -> [(&'static str, &'static str, Option<&'static str>, Value); 3] {
    let pair = json!({ "$ref": "#/components/schemas/TokenPair" });
    [
        (
            "token",
            "Issue an access token and a refresh token for the authenticated caller.",
            None,
            pair.clone(),
        ),
        (
            "refresh",
            "Exchange a refresh token for a new pair; the old one stops working.",
            Some("RefreshTokenRequest"),
            pair,
        ),
        (
            "revoke",
            "Revoke a refresh token (RFC 7009: 200 also for tokens already gone).",
            Some("RefreshTokenRequest"),
            json!({ "type": "object", "required": ["revoked"], "properties": { "revoked": { "type": "boolean" } } }),
        ),
    ]
}

/// Adds the token endpoints of route `r` (its chain has `token`) under `base`.
pub fn operations(
    b: &mut Builder,
    r: &RouteConfig,
    base: &str,
    security: Option<&Value>,
    chain: &Chain<'_>,
) {
    b.tag("auth", "Tokens issued by the gateway (`token` plugin).");
    b.extra_schemas.extend(components());
    for (suffix, summary, body, ok) in endpoints() {
        let path = format!("{}/{suffix}", base.trim_end_matches('/'));
        let mut a = Responses::default();
        a.everywhere.insert("X-Request-ID");
        a.add(
            "200",
            "Done (`Cache-Control: no-store`).",
            Body::Json(ok),
            &[],
        );
        if body.is_some() {
            a.error(400, "No `refresh_token` in a JSON body.", &[]);
        }
        a.error(
            401,
            "No valid credential, or the refresh token is unknown, used, revoked or expired.",
            &["WWW-Authenticate"],
        );
        a.error(
            503,
            "The refresh token store cannot be reached (`dependency_unavailable`).",
            &["Retry-After"],
        );
        answers::plugin_answers(chain, &mut a);
        a.error(
            413,
            "The request body is larger than the route allows.",
            &[],
        );
        let id = b.operation_id(&format!("{}-{suffix}", r.name));
        let mut op = json!({
            "tags": ["auth"],
            "operationId": id,
            "summary": summary,
            "x-gateway-route": r.name,
            "responses": a.render(),
        });
        if let Some(c) = body {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": {
                "schema": { "$ref": format!("#/components/schemas/{c}") } } } });
        }
        if let Some(s) = security {
            op["security"] = s.clone();
        }
        b.paths.entry(path).or_default().insert("post".into(), op);
    }
}
