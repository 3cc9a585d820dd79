//! The identity headers an auth plugin sends upstream (`forward_claims`, default
//! `{sub: X-User-Id, scope: X-Scopes}`), and the removal of every client-sent copy of
//! them whatever the outcome. Names are compared with `_` and `-` folded: CGI, WSGI and
//! PHP servers read `X_User_Id` and `X-User-Id` as one variable, so no spelling of an
//! identity header from a client survives (docs/security.md).

use crate::{Identity, SettingsError};
use http::{HeaderName, HeaderValue};
use pingora_http::RequestHeader;
use std::collections::BTreeMap;

/// The default `forward_claims`: the consumer as `X-User-Id`, scopes as `X-Scopes`.
pub(crate) fn default_forward() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("sub".to_string(), "X-User-Id".to_string()),
        ("scope".to_string(), "X-Scopes".to_string()),
    ])
}

/// Whether two header names are the same once `_` and `-` are folded (both are
/// lower-case already as `HeaderName`s).
fn folded_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (matches!(x, b'_' | b'-') && matches!(y, b'_' | b'-')))
}

/// Removes every header of `req` that is one of `names` with `_` and `-` folded.
pub(crate) fn strip_folded<'a>(
    req: &mut RequestHeader,
    names: impl IntoIterator<Item = &'a HeaderName> + Clone,
) {
    let doomed: Vec<HeaderName> = req
        .headers
        .keys()
        .filter(|k| {
            names
                .clone()
                .into_iter()
                .any(|n| folded_eq(k.as_str(), n.as_str()))
        })
        .cloned()
        .collect();
    for k in doomed {
        req.remove_header(&k);
    }
}

/// What a forwarded header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    /// `sub`: the consumer's name.
    Consumer,
    /// `scope`: the scopes, space-separated.
    Scopes,
    /// `roles`: the roles, comma-separated.
    Roles,
    /// Any other name: that claim of the identity, when it has it.
    Claim(String),
}

/// A parsed `forward_claims` setting.
#[derive(Debug, Clone, Default)]
pub(crate) struct Forwarding(Vec<(Field, HeaderName)>);

impl Forwarding {
    /// From `forward_claims` (default: [`default_forward`]) and the older per-field
    /// settings (`consumer_header` for `sub`, `scopes_header` for `scope`), which
    /// replace their entry when given (empty: not sent). Bad header names are errors at
    /// their setting.
    pub(crate) fn parse(
        forward_claims: Option<&BTreeMap<String, String>>,
        overrides: &[(&str, &str, Option<&str>)],
    ) -> Result<Self, SettingsError> {
        let mut map: BTreeMap<String, (String, String)> = forward_claims
            .cloned()
            .unwrap_or_else(default_forward)
            .into_iter()
            .map(|(k, v)| {
                let at = format!("forward_claims.{k}");
                (k, (v, at))
            })
            .collect();
        for (claim, setting, value) in overrides {
            if let Some(v) = value {
                map.insert(claim.to_string(), (v.to_string(), setting.to_string()));
            }
        }
        let mut out = Vec::with_capacity(map.len());
        for (claim, (header, at)) in map {
            let header = header.trim();
            if header.is_empty() {
                continue;
            }
            let name = HeaderName::try_from(header)
                .map_err(|_| SettingsError::at(at, format!("`{header}` is not a header name")))?;
            let field = match claim.as_str() {
                "sub" => Field::Consumer,
                "scope" => Field::Scopes,
                "roles" => Field::Roles,
                _ => Field::Claim(claim),
            };
            out.push((field, name));
        }
        Ok(Self(out))
    }

    /// Removes every client-sent spelling of the forwarded headers.
    pub(crate) fn strip(&self, req: &mut RequestHeader) {
        if !self.0.is_empty() {
            strip_folded(req, self.0.iter().map(|(_, h)| h));
        }
    }

    /// Sets the headers from the identity (a value that is not a valid header value,
    /// or an empty list, is not sent).
    pub(crate) fn set(&self, req: &mut RequestHeader, id: &Identity) {
        for (field, h) in &self.0 {
            let value = match field {
                Field::Consumer => Some(id.consumer.clone()),
                Field::Scopes => (!id.scopes.is_empty()).then(|| id.scopes.join(" ")),
                Field::Roles => (!id.roles.is_empty()).then(|| id.roles.join(",")),
                Field::Claim(c) => id.claims.get(c).cloned(),
            };
            if let Some(Ok(v)) = value.map(HeaderValue::try_from) {
                let _ = req.insert_header(h.clone(), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::CredentialKind;

    fn forged() -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in [
            ("x-user-id", "forged"),
            ("X_User_Id", "admin"),
            ("x-user_id", "admin"),
            ("x-scopes", "admin"),
            ("x_scopes", "admin"),
            ("x-other", "kept"),
        ] {
            req.append_header(k.to_string(), v).unwrap();
        }
        req
    }

    #[test]
    fn strips_every_spelling_then_sets() {
        let f = Forwarding::parse(None, &[("sub", "consumer_header", None)]).unwrap();
        let mut req = forged();
        f.strip(&mut req);
        assert_eq!(req.headers.len(), 1, "{:?}", req.headers);
        let mut id = Identity::new("alice", CredentialKind::ApiKey);
        id.scopes = vec!["generate".into(), "read".into()];
        f.set(&mut req, &id);
        assert_eq!(req.headers["x-user-id"], "alice");
        assert_eq!(req.headers["x-scopes"], "generate read");
        // no scopes: no header
        let mut req = forged();
        f.strip(&mut req);
        f.set(&mut req, &Identity::new("bob\nx", CredentialKind::Basic));
        assert!(req.headers.get("x-user-id").is_none());
        assert!(req.headers.get("x-scopes").is_none());
    }

    #[test]
    fn older_settings_replace_their_entry() {
        let f = Forwarding::parse(None, &[("sub", "consumer_header", Some("X-Consumer"))]).unwrap();
        let mut req = forged();
        f.strip(&mut req);
        f.set(&mut req, &Identity::new("alice", CredentialKind::ApiKey));
        assert_eq!(req.headers["x-consumer"], "alice");
        // the default x-user-id is no longer ours to strip
        let none = Forwarding::parse(None, &[("sub", "consumer_header", Some(""))]).unwrap();
        assert_eq!(none.0.len(), 1);
        let e = Forwarding::parse(None, &[("sub", "consumer_header", Some("a b"))]).unwrap_err();
        assert_eq!(e.path, "consumer_header");
        let claims = BTreeMap::from([("email".to_string(), "bad header".to_string())]);
        let e = Forwarding::parse(Some(&claims), &[]).unwrap_err();
        assert_eq!(e.path, "forward_claims.email");
    }
}
