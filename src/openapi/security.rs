//! Security schemes from a route's auth plugins (global ones included): `jwt` (bearer
//! JWT), `api_key` (a header, and a query parameter when configured), `basic_auth`,
//! `oauth2_introspection` (a bearer token checked at the authorization server) and
//! `mtls` (a client certificate). Plugins of one chain must all pass, so their schemes
//! form one requirement; an API key accepted in a header or a query parameter gives
//! two alternatives.

use serde_json::{json, Map, Value};

/// One plugin entry of a chain: its name and settings (routes.yaml's keys).
pub type Entry<'a> = (&'a str, &'a Map<String, Value>);

/// The plugins that authenticate (they answer 401 without a valid credential).
pub const AUTHENTICATING: &[&str] = &[
    "jwt",
    "api_key",
    "basic_auth",
    "oauth2_introspection",
    "mtls",
    "token",
];

fn str_setting<'a>(s: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    s.get(key).and_then(Value::as_str)
}

fn list_setting(s: &Map<String, Value>, key: &str) -> Vec<String> {
    s.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A component name made of the characters OpenAPI allows (`[A-Za-z0-9._-]`).
fn key(parts: &[&str]) -> String {
    parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The alternatives one plugin accepts: each a (scheme name, scheme) pair.
fn schemes_of(name: &str, s: &Map<String, Value>) -> Vec<(String, Value)> {
    match name {
        "jwt" => {
            let scopes = list_setting(s, "scopes");
            let mut desc =
                "A JWT in `Authorization: Bearer <token>`; `exp` is required.".to_string();
            if !scopes.is_empty() {
                desc.push_str(&format!(" Needs the scopes: {}.", scopes.join(", ")));
            }
            let k = if scopes.is_empty() {
                "bearerJwt".to_string()
            } else {
                key(&["bearerJwt", &scopes.join("-")])
            };
            vec![(
                k,
                json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": desc }),
            )]
        }
        "api_key" => {
            let header = str_setting(s, "header").unwrap_or("X-API-Key");
            let mut out = vec![(
                key(&["apiKeyHeader", header]),
                json!({ "type": "apiKey", "in": "header", "name": header, "description": "An API key in a header." }),
            )];
            if let Some(q) = str_setting(s, "query") {
                out.push((
                    key(&["apiKeyQuery", q]),
                    json!({ "type": "apiKey", "in": "query", "name": q, "description": "An API key in a query parameter (prefer the header: URLs end up in logs)." }),
                ));
            }
            out
        }
        "basic_auth" => vec![(
            "basicAuth".into(),
            json!({ "type": "http", "scheme": "basic", "description": "HTTP Basic credentials (checked against an htpasswd file)." }),
        )],
        "oauth2_introspection" => {
            let scopes = list_setting(s, "scopes");
            let mut desc = "An OAuth 2.0 access token in `Authorization: Bearer <token>`, checked by token introspection (RFC 7662) at the authorization server.".to_string();
            if !scopes.is_empty() {
                desc.push_str(&format!(" Needs the scopes: {}.", scopes.join(", ")));
            }
            let k = if scopes.is_empty() {
                "oauth2Bearer".to_string()
            } else {
                key(&["oauth2Bearer", &scopes.join("-")])
            };
            vec![(
                k,
                json!({ "type": "http", "scheme": "bearer", "description": desc }),
            )]
        }
        "mtls" => vec![(
            "mutualTLS".into(),
            json!({ "type": "mutualTLS", "description": "A TLS client certificate that the gateway's listener verifies." }),
        )],
        _ => Vec::new(),
    }
}

/// The schemes of a chain (added to `schemes`) and the operation's `security`
/// (alternatives, each a set of schemes that must all pass); `None` when no plugin
/// authenticates.
pub fn requirements(chain: &[Entry<'_>], schemes: &mut Map<String, Value>) -> Option<Value> {
    // each plugin: its alternatives; the requirement is every combination
    let mut combos: Vec<Map<String, Value>> = vec![Map::new()];
    let mut any = false;
    for (name, settings) in chain {
        let alts = schemes_of(name, settings);
        if alts.is_empty() {
            continue;
        }
        any = true;
        let mut next = Vec::with_capacity(combos.len() * alts.len());
        for c in &combos {
            for (k, scheme) in &alts {
                schemes.insert(k.clone(), scheme.clone());
                let mut c = c.clone();
                c.insert(k.clone(), json!([]));
                next.push(c);
            }
        }
        combos = next;
    }
    any.then(|| Value::Array(combos.into_iter().map(Value::Object).collect()))
}
