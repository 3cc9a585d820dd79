//! `basic_auth`: HTTP Basic credentials checked against an htpasswd file of bcrypt
//! hashes (`htpasswd -B`). bcrypt is slow on purpose, so it runs off the proxy
//! threads, and a successful check is remembered for `cache_ttl`, keyed by a salted
//! SHA-256 of user and password (never the password). Unknown users cost a bcrypt
//! check too, so timing does not tell which users exist. Bad or missing → 401 with
//! `WWW-Authenticate: Basic realm="..."`. The file is re-read on every reload.
//!
//! ```yaml
//! - { name: basic_auth, htpasswd_file: users.htpasswd, realm: api }
//! ```

use super::{deny, parse_duration, Forwarding, Reason};
use crate::{
    BuildCtx, CredentialKind, Decision, Factory, Flow, Identity, Plugin, PluginFailure,
    PluginMetrics, RequestCall, SettingsError,
};
use async_trait::async_trait;
use base64::Engine;
use pingora_http::RequestHeader;
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn default_realm() -> String {
    "api".into()
}
fn default_ttl() -> String {
    "60s".into()
}
fn yes() -> bool {
    true
}

/// Largest number of remembered verifications.
const CACHE_MAX: usize = 10_000;
/// A bcrypt hash of a random password: what unknown users are checked against.
const DUMMY_HASH: &str = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

/// HTTP Basic authentication against an htpasswd file (bcrypt only).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicSettings {
    /// The htpasswd file (`user:$2y$...` lines, bcrypt only), relative to routes.yaml.
    pub htpasswd_file: String,
    /// The realm named in `WWW-Authenticate`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// How long a successful check is remembered (`0s`: never).
    #[serde(default = "default_ttl")]
    pub cache_ttl: String,
    /// Remove `Authorization` before the request goes upstream.
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

pub struct BasicAuth {
    users: Users,
    realm: String,
    ttl: Duration,
    hide: bool,
    forward: Forwarding,
    /// Salt of the cache keys, random per build.
    salt: [u8; 16],
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    metrics: PluginMetrics,
}

/// A line of an htpasswd file that is refused (lines count from 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtpasswdError {
    #[error("line {0}: expected `user:hash`")]
    NoSeparator(usize),
    #[error("line {line}: the hash of `{user}` is not bcrypt (create it with `htpasswd -B`)")]
    NotBcrypt { line: usize, user: String },
    #[error("line {line}: `{user}` appears twice")]
    Duplicate { line: usize, user: String },
}

/// User name → bcrypt hash.
type Users = HashMap<String, String>;

/// Parses htpasswd lines; an error names its line.
fn parse_htpasswd(text: &str) -> Result<Users, HtpasswdError> {
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (user, hash) = line
            .split_once(':')
            .ok_or(HtpasswdError::NoSeparator(n + 1))?;
        if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$"))
            || hash.parse::<bcrypt::HashParts>().is_err()
        {
            return Err(HtpasswdError::NotBcrypt {
                line: n + 1,
                user: user.to_string(),
            });
        }
        if users.insert(user.to_string(), hash.to_string()).is_some() {
            return Err(HtpasswdError::Duplicate {
                line: n + 1,
                user: user.to_string(),
            });
        }
    }
    Ok(users)
}

/// `user` and `password` of a Basic `Authorization` header.
fn credentials(req: &RequestHeader) -> Option<Option<(String, String)>> {
    let v = req.headers.get(http::header::AUTHORIZATION)?;
    let v = v.to_str().unwrap_or("").trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Some(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    Some(decoded.and_then(|s| {
        s.split_once(':')
            .map(|(u, p)| (u.to_string(), p.to_string()))
    }))
}

impl BasicAuth {
    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn cached(&self, key: &[u8; 32]) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).is_some_and(|t| t.elapsed() < self.ttl)
    }

    fn remember(&self, key: [u8; 32]) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            let ttl = self.ttl;
            cache.retain(|_, t| t.elapsed() < ttl);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, Instant::now());
    }

    /// Checks the password with bcrypt, off the proxy threads.
    async fn verify(&self, user: &str, password: String) -> Result<bool, PluginFailure> {
        let known = self.users.get(user);
        let hash = known.cloned().unwrap_or_else(|| DUMMY_HASH.to_string());
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .map_err(|e| PluginFailure::internal("basic_auth", format!("bcrypt task: {e}")))?;
        Ok(ok && known.is_some())
    }

    fn refuse(&self, reason: Reason, message: &str) -> Flow {
        let challenge = format!(
            "Basic realm=\"{}\", charset=\"UTF-8\"",
            self.realm.replace(['"', '\\'], "'")
        );
        Flow::Respond(deny(&self.metrics, reason, Some(challenge), message))
    }
}

#[async_trait]
impl Plugin for BasicAuth {
    fn sets_identity(&self) -> bool {
        true
    }

    async fn on_request(&self, call: &mut RequestCall<'_>) -> Decision {
        self.metrics
            .auth_requests
            .with_label_values(&[CredentialKind::Basic.as_str()])
            .inc();
        self.forward.strip(call.req);
        let (user, password) = match credentials(call.req) {
            None => return Ok(self.refuse(Reason::Missing, "credentials are required")),
            Some(None) => return Ok(self.refuse(Reason::Malformed, "malformed Basic credentials")),
            Some(Some(c)) => c,
        };
        let key = self.cache_key(&user, &password);
        if !self.cached(&key) {
            if !self.verify(&user, password).await? {
                return Ok(self.refuse(Reason::BadCredentials, "invalid user or password"));
            }
            self.remember(key);
        }
        let mut id = Identity::new(user, CredentialKind::Basic);
        id.configured = true;
        self.forward.set(call.req, &id);
        call.set_identity(id);
        if self.hide {
            call.req.remove_header(&http::header::AUTHORIZATION);
        }
        Ok(Flow::Continue)
    }
}

impl Factory for BasicAuth {
    const NAME: &'static str = "basic_auth";
    const SUMMARY: &'static str =
        "HTTP Basic authentication against an htpasswd file (bcrypt); 401 otherwise";
    type Settings = BasicSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc::auth(vec![(
            "basicAuth".into(),
            serde_json::json!({ "type": "http", "scheme": "basic", "description": "HTTP Basic credentials (checked against an htpasswd file)." }),
        )])
    }

    fn build(s: BasicSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        let path = cx.file(&s.htpasswd_file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            SettingsError::at(
                "htpasswd_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let users = parse_htpasswd(&text)
            .map_err(|e| SettingsError::at("htpasswd_file", format!("{}: {e}", path.display())))?;
        let ttl = parse_duration("cache_ttl", &s.cache_ttl)?;
        cx.shared.watch_file(&path);
        Ok(Arc::new(BasicAuth {
            users,
            realm: s.realm,
            ttl,
            hide: s.hide_credentials,
            forward: Forwarding::parse(
                s.forward_claims.as_ref(),
                &[("sub", "consumer_header", s.consumer_header.as_deref())],
            )?,
            salt: rand::random(),
            cache: Mutex::new(HashMap::new()),
            metrics: cx.shared.metrics.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn plugin() -> BasicAuth {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        BasicAuth {
            users: parse_htpasswd(&format!("# users\nalice:{hash}\n")).unwrap(),
            realm: "api".into(),
            ttl: Duration::from_secs(60),
            hide: true,
            forward: Forwarding::parse(None, &[]).unwrap(),
            salt: rand::random(),
            cache: Mutex::new(HashMap::new()),
            metrics: PluginMetrics::unregistered(),
        }
    }

    #[tokio::test]
    async fn verify_and_cache() {
        let p = plugin();
        assert!(
            bcrypt::verify("x", DUMMY_HASH).is_ok(),
            "the dummy hash must be a real bcrypt hash"
        );
        assert!(p.verify("alice", "s3cret".into()).await.unwrap());
        assert!(!p.verify("alice", "wrong".into()).await.unwrap());
        assert!(!p.verify("mallory", "s3cret".into()).await.unwrap());
        let k = p.cache_key("alice", "s3cret");
        assert!(!p.cached(&k));
        p.remember(k);
        assert!(p.cached(&k));
        assert!(!p.cached(&p.cache_key("alice", "s3creu")));
    }

    #[test]
    fn htpasswd_errors_name_the_line() {
        let e = parse_htpasswd("alice:{SHA}abc\n").err().unwrap();
        assert!(matches!(e, HtpasswdError::NotBcrypt { line: 1, .. }), "{e}");
        assert!(e.to_string().starts_with("line 1"), "{e}");
        let e = parse_htpasswd("\nbob\n").err().unwrap();
        assert_eq!(e, HtpasswdError::NoSeparator(2));
        assert_eq!(e.to_string(), "line 2: expected `user:hash`");
    }
}
