//! `api_key`: a key sent in a header (default `X-API-Key`) or, when `query` names a
//! parameter, in the query string; checked against SHA-256 hashes in a key file
//! (never plaintext keys), in constant time. The file is read when the route table is
//! built, so a reload re-reads it: editing it adds or revokes keys, and a bad file
//! refuses the reload like any other error. Wrong or missing key → 401.
//!
//! ```yaml
//! - { name: api_key, keys_file: keys.yaml }            # path relative to routes.yaml
//! ```
//! keys.yaml: `consumers: [{ name: alice, key_sha256: "<hex>", roles: [admin], scopes: [generate] }]`
//! (`printf %s "$KEY" | sha256sum`).

use super::{deny, Forwarding, Reason};
use crate::{
    BuildCtx, CredentialKind, Decision, Factory, Flow, Identity, Plugin, PluginCtx, PluginMetrics,
    RequestCall, SettingsError,
};
use async_trait::async_trait;
use http::HeaderName;
use pingora_http::RequestHeader;
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

fn default_header() -> String {
    "X-API-Key".into()
}
fn yes() -> bool {
    true
}

/// API keys checked against hashed keys in a file.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// The key file (YAML, relative to routes.yaml): `consumers: [{ name, key_sha256,
    /// roles, scopes }]`. Re-read on every reload.
    pub keys_file: String,
    /// Header carrying the key.
    #[serde(default = "default_header")]
    pub header: String,
    /// Query parameter carrying the key (off unless named; keys in URLs end up in
    /// browser histories and proxy logs: prefer the header).
    #[serde(default)]
    pub query: Option<String>,
    /// Remove the key (header or query parameter) before the request goes upstream.
    #[serde(default = "yes")]
    pub hide_credentials: bool,
    /// The older spelling of `forward_claims.sub`: the header that carries the
    /// consumer's name (empty: none).
    #[serde(default)]
    pub consumer_header: Option<String>,
    /// Identity fields sent upstream as headers (field → header): `sub` (the
    /// consumer), `scope` (scopes, space-separated), `roles` (comma-separated) or a
    /// claim (default `{sub: X-User-Id, scope: X-Scopes}`). Every client-sent spelling of
    /// these headers (`X_User_Id` too) is removed, whatever the outcome.
    #[serde(default)]
    pub forward_claims: Option<std::collections::BTreeMap<String, String>>,
}

/// The key file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    consumers: Vec<ConsumerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerEntry {
    name: String,
    key_sha256: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

struct Consumer {
    hash: [u8; 32],
    identity: Identity,
}

pub struct ApiKey {
    consumers: Vec<Consumer>,
    header: HeaderName,
    /// The header name as configured, for the challenge.
    header_text: String,
    query: Option<String>,
    hide: bool,
    forward: Forwarding,
    metrics: PluginMetrics,
}

/// A key file that is refused; the message names the entry (`consumers[2].key_sha256`).
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Not YAML, or not the file's shape; `path` is where in the document.
    #[error("{path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("consumers[{0}].name: empty name")]
    EmptyName(usize),
    #[error("consumers[{0}].key_sha256: not a SHA-256 in hex (64 characters)")]
    NotSha256(usize),
    #[error("consumers[{index}].name: `{name}` appears twice")]
    DuplicateName { index: usize, name: String },
    #[error("consumers[{0}].key_sha256: the same key as another consumer")]
    DuplicateKey(usize),
}

/// Parses a key file; errors name the entry (`consumers[2].key_sha256`) or the line.
fn parse_keys(text: &str) -> Result<Vec<Consumer>, KeyFileError> {
    let file: KeyFile = serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(|e| KeyFileError::Parse {
            path: e.path().to_string(),
            source: e.into_inner(),
        })?;
    let mut out: Vec<Consumer> = Vec::with_capacity(file.consumers.len());
    for (i, c) in file.consumers.into_iter().enumerate() {
        if c.name.trim().is_empty() {
            return Err(KeyFileError::EmptyName(i));
        }
        let bytes = hex::decode(c.key_sha256.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(KeyFileError::NotSha256(i))?;
        if out.iter().any(|o| o.identity.consumer == c.name) {
            return Err(KeyFileError::DuplicateName {
                index: i,
                name: c.name,
            });
        }
        if out.iter().any(|o| o.hash == bytes) {
            return Err(KeyFileError::DuplicateKey(i));
        }
        let mut identity = Identity::new(c.name, CredentialKind::ApiKey);
        identity.roles = c.roles;
        identity.scopes = c.scopes;
        identity.configured = true;
        out.push(Consumer {
            hash: bytes,
            identity,
        });
    }
    Ok(out)
}

impl ApiKey {
    /// The consumer whose key hashes to the key's hash. Every entry is compared, in
    /// constant time, so the time taken says nothing about which one matched.
    fn find(&self, key: &[u8]) -> Option<&Identity> {
        let hash: [u8; 32] = Sha256::digest(key).into();
        let mut found = None;
        for c in &self.consumers {
            if bool::from(c.hash.ct_eq(&hash)) {
                found = Some(&c.identity);
            }
        }
        found
    }

    /// The key from the header, else from the query parameter (percent-decoded).
    fn key_of(&self, req: &RequestHeader, query: Option<&str>) -> Option<(Vec<u8>, bool)> {
        if let Some(v) = req.headers.get(&self.header) {
            return Some((v.as_bytes().trim_ascii().to_vec(), false));
        }
        let name = self.query.as_deref()?;
        query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| (percent_decode(v), true))
        })
    }
}

/// `%XX` and `+` decoding of a query value.
fn percent_decode(v: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(&v.replace('+', " ")).collect()
}

/// The query string without parameter `name`.
fn without_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|p| p.split_once('=').map_or(*p, |(k, _)| k) != name)
        .collect::<Vec<_>>()
        .join("&")
}

impl ApiKey {
    /// The request phase: it never waits.
    fn admit(&self, call: &mut RequestCall<'_>) -> Decision {
        self.metrics
            .auth_requests
            .with_label_values(&[CredentialKind::ApiKey.as_str()])
            .inc();
        self.forward.strip(call.req);
        let challenge = Some(format!("ApiKey header=\"{}\"", self.header_text));
        let Some((key, from_query)) = self.key_of(call.req, call.info.query) else {
            return Ok(Flow::Respond(deny(
                &self.metrics,
                Reason::Missing,
                challenge,
                format!("an API key is required (header {})", self.header_text),
            )));
        };
        let Some(identity) = self.find(&key) else {
            let reason = if key.is_empty() {
                Reason::Missing
            } else {
                Reason::BadCredentials
            };
            return Ok(Flow::Respond(deny(
                &self.metrics,
                reason,
                challenge,
                "invalid API key",
            )));
        };
        self.forward.set(call.req, identity);
        call.set_identity(identity.clone());
        if self.hide && !from_query {
            call.req.remove_header(&self.header);
        }
        Ok(Flow::Continue)
    }
}

#[async_trait]
impl Plugin for ApiKey {
    fn sets_identity(&self) -> bool {
        true
    }

    /// Decides without waiting: no future per request.
    fn request_now(&self, call: &mut RequestCall<'_>) -> Option<Decision> {
        Some(self.admit(call))
    }

    /// The query parameter is removed from what goes upstream (after any rewrite).
    fn on_upstream_request(&self, up: &mut RequestHeader, _ctx: &mut PluginCtx) {
        let (Some(name), true) = (self.query.as_deref(), self.hide) else {
            return;
        };
        let Some(q) = up.uri.query() else { return };
        let rest = without_param(q, name);
        if rest.len() == q.len() {
            return;
        }
        let path = up.uri.path();
        let uri = if rest.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{rest}")
        };
        if let Ok(u) = uri.parse::<http::Uri>() {
            up.set_uri(u);
        }
    }
}

impl Factory for ApiKey {
    const NAME: &'static str = "api_key";
    const SUMMARY: &'static str =
        "API keys (header or query) checked against SHA-256 hashes in a key file; 401 otherwise";
    type Settings = ApiKeySettings;

    fn api_doc(s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        let mut schemes = vec![(
            crate::component_key(&["apiKeyHeader", &s.header]),
            serde_json::json!({ "type": "apiKey", "in": "header", "name": s.header, "description": "An API key in a header." }),
        )];
        if let Some(q) = &s.query {
            schemes.push((
                crate::component_key(&["apiKeyQuery", q]),
                serde_json::json!({ "type": "apiKey", "in": "query", "name": q, "description": "An API key in a query parameter (prefer the header: URLs end up in logs)." }),
            ));
        }
        crate::ApiDoc::auth(schemes)
    }

    fn build(s: ApiKeySettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        let path = cx.file(&s.keys_file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            SettingsError::at("keys_file", format!("cannot read {}: {e}", path.display()))
        })?;
        let consumers = parse_keys(&text)
            .map_err(|e| SettingsError::at("keys_file", format!("{}: {e}", path.display())))?;
        let header = HeaderName::from_bytes(s.header.as_bytes()).map_err(|_| {
            SettingsError::at("header", format!("`{}` is not a header name", s.header))
        })?;
        if s.query.as_deref().is_some_and(str::is_empty) {
            return Err(SettingsError::at("query", "name a query parameter"));
        }
        cx.shared.watch_file(&path);
        Ok(Arc::new(ApiKey {
            consumers,
            header,
            header_text: s.header,
            query: s.query,
            hide: s.hide_credentials,
            forward: Forwarding::parse(
                s.forward_claims.as_ref(),
                &[("sub", "consumer_header", s.consumer_header.as_deref())],
            )?,
            metrics: cx.shared.metrics.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sha(k: &str) -> String {
        hex::encode(Sha256::digest(k.as_bytes()))
    }

    #[test]
    fn key_file_and_lookup() {
        let text = format!(
            "consumers:\n  - {{ name: alice, key_sha256: \"{}\", roles: [admin] }}\n  - {{ name: bob, key_sha256: \"{}\" }}\n",
            sha("k-alice"),
            sha("k-bob")
        );
        let p = ApiKey {
            consumers: parse_keys(&text).unwrap(),
            header: HeaderName::from_static("x-api-key"),
            header_text: "X-API-Key".into(),
            query: Some("apikey".into()),
            hide: true,
            forward: Forwarding::parse(None, &[]).unwrap(),
            metrics: PluginMetrics::unregistered(),
        };
        assert_eq!(p.find(b"k-alice").unwrap().consumer, "alice");
        assert_eq!(p.find(b"k-bob").unwrap().consumer, "bob");
        assert!(p.find(b"k-carol").is_none());
        let req = RequestHeader::build("GET", b"/x?a=1&apikey=k%2Dbob", None).unwrap();
        let (k, q) = p.key_of(&req, Some("a=1&apikey=k%2Dbob")).unwrap();
        assert_eq!((k.as_slice(), q), (&b"k-bob"[..], true));
        assert_eq!(without_param("a=1&apikey=x&b=2", "apikey"), "a=1&b=2");
    }

    #[test]
    fn bad_key_files_are_located() {
        let e = parse_keys("consumers:\n  - { name: a, key_sha256: nothex }\n")
            .err()
            .unwrap();
        assert!(matches!(e, KeyFileError::NotSha256(0)), "{e}");
        let e = e.to_string();
        assert!(e.starts_with("consumers[0].key_sha256"), "{e}");
        let e = parse_keys("consumers:\n  - { name: a, key: x }\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
        let dup = format!(
            "consumers:\n  - {{ name: a, key_sha256: \"{0}\" }}\n  - {{ name: b, key_sha256: \"{0}\" }}\n",
            sha("x")
        );
        assert!(matches!(
            parse_keys(&dup).err(),
            Some(KeyFileError::DuplicateKey(1))
        ));
    }
}
