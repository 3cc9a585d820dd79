//! The OpenAPI description of the token endpoints: `POST <route>/token`, `/refresh`
//! and `/revoke`, answered by the plugin itself for a caller authenticated by the
//! route's `api_key` or `basic_auth` plugin, with OAuth 2.0-style token answers.

use crate::{ApiAnswer, ApiDoc, ApiEndpoint};
use serde_json::{json, Map, Value};

/// The component schemas of the token endpoints.
fn components() -> Map<String, Value> {
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

const REFUSED: ApiAnswer = ApiAnswer::new(
    401,
    "No valid credential, or the refresh token is unknown, used, revoked or expired.",
    &["WWW-Authenticate"],
);
const STORE_DOWN: ApiAnswer = ApiAnswer::new(
    503,
    "The refresh token store cannot be reached (`dependency_unavailable`).",
    &["Retry-After"],
);
const NO_TOKEN: ApiAnswer = ApiAnswer::new(400, "No `refresh_token` in a JSON body.", &[]);

/// The plugin's contribution: its three endpoints, their schemas and tag.
pub(super) fn api_doc() -> ApiDoc {
    let pair = json!({ "$ref": "#/components/schemas/TokenPair" });
    let endpoints = vec![
        ApiEndpoint {
            suffix: "token",
            summary: "Issue an access token and a refresh token for the authenticated caller.",
            request: None,
            ok: pair.clone(),
            answers: vec![REFUSED, STORE_DOWN],
        },
        ApiEndpoint {
            suffix: "refresh",
            summary: "Exchange a refresh token for a new pair; the old one stops working.",
            request: Some("RefreshTokenRequest"),
            ok: pair,
            answers: vec![NO_TOKEN, REFUSED, STORE_DOWN],
        },
        ApiEndpoint {
            suffix: "revoke",
            summary: "Revoke a refresh token (RFC 7009: 200 also for tokens already gone).",
            request: Some("RefreshTokenRequest"),
            ok: json!({ "type": "object", "required": ["revoked"], "properties": { "revoked": { "type": "boolean" } } }),
            answers: vec![NO_TOKEN, REFUSED, STORE_DOWN],
        },
    ];
    ApiDoc {
        endpoints,
        tag: Some(("auth", "Tokens issued by the gateway (`token` plugin).")),
        schemas: components(),
        ..ApiDoc::auth(Vec::new()).with(crate::DEPENDENCY_ANSWER)
    }
}
