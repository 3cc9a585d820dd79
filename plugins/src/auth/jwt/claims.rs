//! From verified claims to the request's identity and forwarded headers.

use crate::{CredentialKind, Identity};
use http::{HeaderName, HeaderValue};
use pingora_http::RequestHeader;
use serde_json::{Map, Value};

/// A claim by name; dots walk into objects (`realm_access.roles`) when the dotted name
/// is not itself a claim.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

/// A list from an array of strings or a space-separated string.
fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A claim as one string (arrays joined by spaces); `None` for objects and null.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

/// The identity a token carries: consumer from `consumer_claim` (`unknown` when
/// absent), scopes from `scope` (space separated) or `scp` (array or string), roles
/// from `roles_claim`.
pub fn identity(claims: &Map<String, Value>, consumer_claim: &str, roles_claim: &str) -> Identity {
    let consumer = claim(claims, consumer_claim)
        .and_then(text)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let mut id = Identity::new(consumer, CredentialKind::Jwt);
    id.scopes = match claims.get("scope") {
        Some(v) => list(Some(v)),
        None => list(claims.get("scp")),
    };
    id.roles = list(claim(claims, roles_claim));
    for name in ["iss", "sub"] {
        if let Some(v) = claims.get(name).and_then(text) {
            id.claims.insert(name.to_string(), v);
        }
    }
    id
}

/// Sets the forwarded claim headers (their client copies were removed already) and
/// records the forwarded claims in the identity. `scope` forwards the scopes found.
pub fn forward(
    req: &mut RequestHeader,
    claims: &Map<String, Value>,
    id: &mut Identity,
    forward: &[(String, HeaderName)],
) {
    for (name, header) in forward {
        let value = if name == "scope" {
            (!id.scopes.is_empty()).then(|| id.scopes.join(" "))
        } else {
            claim(claims, name).and_then(text)
        };
        let Some(value) = value else { continue };
        // a value with control characters is not forwarded
        if let Ok(hv) = HeaderValue::from_str(&value) {
            let _ = req.insert_header(header.clone(), hv);
            id.claims.insert(name.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_roles_and_consumer() {
        let c =
            json!({"sub": "alice", "scope": "read write", "realm_access": {"roles": ["admin"]}});
        let id = identity(c.as_object().unwrap(), "sub", "realm_access.roles");
        assert_eq!(id.consumer, "alice");
        assert_eq!(id.scopes, ["read", "write"]);
        assert_eq!(id.roles, ["admin"]);
        let c = json!({"scp": ["a", "b"], "roles": "x y"});
        let id = identity(c.as_object().unwrap(), "sub", "roles");
        assert_eq!(id.consumer, "unknown");
        assert_eq!(id.scopes, ["a", "b"]);
        assert_eq!(id.roles, ["x", "y"]);
    }

    #[test]
    fn forwarding_skips_bad_values() {
        let c = json!({"sub": "bob\r\nX-Evil: 1", "scope": "a"});
        let claims = c.as_object().unwrap();
        let mut id = identity(claims, "sub", "roles");
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        let fwd = vec![
            ("sub".to_string(), HeaderName::from_static("x-user-id")),
            ("scope".to_string(), HeaderName::from_static("x-scopes")),
        ];
        forward(&mut req, claims, &mut id, &fwd);
        assert!(req.headers.get("x-user-id").is_none());
        assert_eq!(req.headers["x-scopes"], "a");
    }
}
