//! `oauth2_introspection`: the bearer token of `Authorization` is checked against an
//! OAuth 2.0 token introspection endpoint (RFC 7662) with the gateway's client
//! credentials; answers are cached for `cache_ttl` (never longer than the token's
//! `exp`). Inactive token → 401 `error="invalid_token"`; a required scope missing → 403
//! `error="insufficient_scope"`. The endpoint down, timing out or answering nonsense:
//! fail-closed 503 by default (`on_error: deny`), or the request goes on anonymous with
//! `on_error: allow` (fail-open).
//!
//! ```yaml
//! - name: oauth2_introspection
//!   endpoint: https://auth.example/oauth2/introspect
//!   client_id: api-gateway
//!   client_secret_env: INTROSPECTION_SECRET
//!   scopes: [generate]
//! ```

mod endpoint;

use crate::auth::Forwarding;
use crate::{
    BuildCtx, CredentialKind, Decision, Factory, Flow, Identity, Plugin, PluginFailure, Reply,
    RequestCall, SettingsError,
};
use async_trait::async_trait;
pub use endpoint::ClientAuth;
use endpoint::{AnswerCache, Endpoint};
use http::HeaderValue;
use pingora_http::RequestHeader;
use prometheus::IntCounter;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

const NAME: &str = "oauth2_introspection";

/// What happens when the endpoint cannot answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail closed: 503 with `Retry-After`.
    #[default]
    Deny,
    /// Fail open: the request goes on without an identity.
    Allow,
}

/// Token introspection settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSettings {
    /// The introspection endpoint's URL (`http` or `https`).
    endpoint: String,
    /// The gateway's client id at the authorization server.
    client_id: String,
    /// Environment variable holding the client secret (never inline).
    client_secret_env: String,
    /// How the client credentials are sent: `basic` (HTTP Basic, default) or `body`.
    #[serde(default)]
    client_auth: ClientAuth,
    /// Scopes the token must all have (403 `insufficient_scope` otherwise).
    #[serde(default)]
    scopes: Vec<String>,
    /// How long an answer is cached (default `30s`; `0s`: no cache). An active answer
    /// is never cached past the token's `exp`; a revoked token may pass until then.
    #[serde(default = "default_cache_ttl")]
    cache_ttl: String,
    /// Timeout of one call to the endpoint (default `2s`).
    #[serde(default = "default_timeout")]
    timeout: String,
    /// `deny` (default): the endpoint failing answers 503 (fail-closed); `allow`: the
    /// request goes on without an identity (fail-open).
    #[serde(default)]
    on_error: OnError,
    /// PEM file of CA certificates trusted for an `https` endpoint, besides the system
    /// roots (relative to routes.yaml).
    ca_file: Option<String>,
    /// The older spelling of `forward_claims.sub`: the header that carries the
    /// consumer (`sub`, else `username`, else `client_id`; empty: none).
    #[serde(default)]
    consumer_header: Option<String>,
    /// The older spelling of `forward_claims.scope` (empty: none).
    #[serde(default)]
    scopes_header: Option<String>,
    /// Identity fields sent upstream as headers (field → header): `sub` (the
    /// consumer), `scope` (the token's scopes, space-separated) or a claim of the
    /// introspection answer (default `{sub: X-User-Id, scope: X-Scopes}`). Every
    /// client-sent spelling of these headers (`X_User_Id` too) is removed, whatever the
    /// outcome.
    #[serde(default)]
    forward_claims: Option<std::collections::BTreeMap<String, String>>,
    /// Remove `Authorization` before the request goes upstream (default false).
    #[serde(default)]
    hide_credentials: bool,
}

fn default_cache_ttl() -> String {
    "30s".into()
}
fn default_timeout() -> String {
    "2s".into()
}

struct Counters {
    requests: IntCounter,
    missing: IntCounter,
    malformed: IntCounter,
    inactive: IntCounter,
    insufficient_scope: IntCounter,
    unavailable: IntCounter,
    dependency: IntCounter,
}

pub struct Introspection {
    endpoint: Endpoint,
    scopes: Vec<String>,
    on_error: OnError,
    forward: Forwarding,
    hide_credentials: bool,
    m: Counters,
}

impl Introspection {
    pub fn new(s: IntrospectionSettings, cx: &BuildCtx<'_>) -> Result<Self, SettingsError> {
        let url = reqwest::Url::parse(&s.endpoint)
            .map_err(|e| SettingsError::at("endpoint", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(SettingsError::at(
                "endpoint",
                "the endpoint must be an http:// or https:// URL with a host",
            ));
        }
        if s.client_id.is_empty() {
            return Err(SettingsError::at("client_id", "must not be empty"));
        }
        for (i, sc) in s.scopes.iter().enumerate() {
            if sc.is_empty()
                || sc
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\\')
            {
                return Err(SettingsError::at(
                    format!("scopes[{i}]"),
                    "a scope is one word without spaces, `\"` or `\\`",
                ));
            }
        }
        let secret = cx.secret("client_secret_env", &s.client_secret_env)?;
        let cache_ttl = crate::auth::parse_duration("cache_ttl", &s.cache_ttl)?;
        let timeout = crate::auth::parse_duration("timeout", &s.timeout)?;
        if timeout.is_zero() {
            return Err(SettingsError::at("timeout", "must be more than 0s"));
        }
        let ca = match &s.ca_file {
            None => None,
            Some(f) => Some(
                std::fs::read(cx.file(f))
                    .map_err(|e| SettingsError::at("ca_file", format!("cannot read `{f}`: {e}")))?,
            ),
        };
        let client = if cx.shared.is_dry() {
            // validate the CA file without building a client (a dry build opens nothing)
            if let Some(pem) = &ca {
                if reqwest::Certificate::from_pem_bundle(pem).map_or(true, |c| c.is_empty()) {
                    return Err(SettingsError::at(
                        "ca_file",
                        "no PEM certificate in the file",
                    ));
                }
            }
            None
        } else {
            // one client per set of trusted CAs (a changed CA file gets a new client)
            let ca_id: String = ca.as_deref().map_or(String::new(), |pem| {
                endpoint::token_key(&String::from_utf8_lossy(pem))
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            });
            let key = format!("{NAME}:client:{ca_id}");
            let slot = cx.shared.state(&key, std::sync::OnceLock::new);
            if slot.get().is_none() {
                let c = endpoint::http_client(ca.as_deref())
                    .map_err(|e| SettingsError::at("ca_file", e.to_string()))?;
                let _ = slot.set(c);
            }
            slot.get().cloned()
        };
        let cache = cx.shared.state(
            &format!("{NAME}:cache:{url}\n{}\n{cache_ttl:?}", s.client_id),
            AnswerCache::new,
        );
        let m = &cx.shared.metrics;
        let failure = |r: &str| m.auth_failures.with_label_values(&[r]);
        Ok(Self {
            endpoint: Endpoint {
                url,
                client_id: s.client_id,
                client_secret: secret,
                client_auth: s.client_auth,
                timeout,
                cache_ttl,
                client,
                cache,
            },
            scopes: s.scopes,
            on_error: s.on_error,
            forward: Forwarding::parse(
                s.forward_claims.as_ref(),
                &[
                    ("sub", "consumer_header", s.consumer_header.as_deref()),
                    ("scope", "scopes_header", s.scopes_header.as_deref()),
                ],
            )?,
            hide_credentials: s.hide_credentials,
            m: Counters {
                requests: m
                    .auth_requests
                    .with_label_values(&[CredentialKind::OAuth2.as_str()]),
                missing: failure("missing"),
                malformed: failure("malformed"),
                inactive: failure("inactive"),
                insufficient_scope: failure("insufficient_scope"),
                unavailable: failure("introspection_unavailable"),
                dependency: m
                    .dependency_errors
                    .with_label_values(&[NAME, "introspection_endpoint"]),
            },
        })
    }
}

/// The bearer token of `Authorization`: `None` when there is none, `Some(Err)` when
/// the header is there but unusable.
fn bearer(req: &RequestHeader) -> Option<Result<&str, ()>> {
    let v = req.headers.get(http::header::AUTHORIZATION)?;
    let Ok(v) = v.to_str() else {
        return Some(Err(()));
    };
    let (scheme, token) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Some(Err(()));
    }
    Some(Ok(token))
}

/// A 401 or 403 with its RFC 6750 challenge.
fn refuse(status: u16, error: Option<&str>, message: &str, scope: Option<String>) -> Flow {
    let mut challenge = String::from("Bearer realm=\"api-gateway\"");
    if let Some(e) = error {
        challenge.push_str(&format!(", error=\"{e}\""));
    }
    if let Some(s) = scope {
        challenge.push_str(&format!(", scope=\"{s}\""));
    }
    let kind = if status == 403 {
        "forbidden"
    } else {
        "unauthorized"
    };
    let mut reply = Reply::error(status, kind, message).blocked_as("auth");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        reply = reply.with_header(http::header::WWW_AUTHENTICATE, v);
    }
    Flow::Respond(reply)
}

#[async_trait]
impl Plugin for Introspection {
    fn sets_identity(&self) -> bool {
        true
    }

    async fn on_request(&self, call: &mut RequestCall<'_>) -> Decision {
        self.m.requests.inc();
        self.forward.strip(call.req);
        let token = match bearer(call.req) {
            None => {
                self.m.missing.inc();
                return Ok(refuse(401, None, "a bearer token is required", None));
            }
            Some(Err(())) => {
                self.m.malformed.inc();
                return Ok(refuse(
                    401,
                    Some("invalid_token"),
                    "the bearer token is malformed",
                    None,
                ));
            }
            Some(Ok(t)) => t,
        };
        let answer = match self.endpoint.lookup(token).await {
            Ok(a) => a,
            Err(e) => {
                self.m.dependency.inc();
                self.m.unavailable.inc();
                tracing::warn!(plugin = NAME, endpoint = %self.endpoint.url, error = %e, "token introspection failed");
                return match self.on_error {
                    OnError::Deny => Err(PluginFailure::unavailable(
                        NAME,
                        "the token introspection endpoint is unavailable",
                    )),
                    OnError::Allow => Ok(Flow::Continue),
                };
            }
        };
        if !answer.is_active() {
            self.m.inactive.inc();
            return Ok(refuse(
                401,
                Some("invalid_token"),
                "the token is not active",
                None,
            ));
        }
        let missing: Vec<&str> = self
            .scopes
            .iter()
            .filter(|s| !answer.scopes.contains(s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            self.m.insufficient_scope.inc();
            let msg = format!("the token lacks the scope(s): {}", missing.join(", "));
            return Ok(refuse(
                403,
                Some("insufficient_scope"),
                &msg,
                Some(self.scopes.join(" ")),
            ));
        }
        let consumer = answer.consumer.clone().unwrap_or_else(|| "unknown".into());
        if self.hide_credentials {
            call.req.remove_header(&http::header::AUTHORIZATION);
        }
        let mut id = Identity::new(consumer, CredentialKind::OAuth2);
        id.scopes = answer.scopes.clone();
        id.claims = answer.claims.clone();
        self.forward.set(call.req, &id);
        call.set_identity(id);
        Ok(Flow::Continue)
    }
}

impl Factory for Introspection {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str = "Bearer token checked at an OAuth 2.0 introspection endpoint \
        (RFC 7662), answers cached; inactive: 401, scope missing: 403, endpoint down: 503";
    type Settings = IntrospectionSettings;

    fn api_doc(s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        let (key, desc) = crate::bearer_with_scopes(
            "oauth2Bearer",
            "An OAuth 2.0 access token in `Authorization: Bearer <token>`, checked by token introspection (RFC 7662) at the authorization server.",
            &s.scopes,
        );
        let scheme = serde_json::json!({ "type": "http", "scheme": "bearer", "description": desc });
        crate::ApiDoc::auth(vec![(key, scheme)]).with(crate::DEPENDENCY_ANSWER)
    }

    fn build(
        s: IntrospectionSettings,
        cx: &BuildCtx<'_>,
    ) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(Introspection::new(s, cx)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shared;

    fn build(v: serde_json::Value, dry: bool) -> Result<Introspection, SettingsError> {
        let shared = Shared::with_env(dry, |k| (k == "SECRET").then(|| "s3cret".to_string()));
        let cx = BuildCtx {
            shared: &shared,
            base_dir: std::path::Path::new("."),
            route: Some("r"),
        };
        Introspection::new(crate::parse_settings(&v)?, &cx)
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "endpoint": "http://127.0.0.1:1/introspect",
            "client_id": "gw",
            "client_secret_env": "SECRET",
        })
    }

    fn with(k: &str, v: serde_json::Value) -> serde_json::Value {
        let mut b = base();
        b[k] = v;
        b
    }

    #[test]
    fn settings_are_checked_at_their_path() {
        assert!(build(base(), true).is_ok());
        assert!(build(base(), false).is_ok());
        for (field, v) in [
            ("endpoint", serde_json::json!("ftp://x/")),
            ("endpoint", serde_json::json!("not a url")),
            ("cache_ttl", serde_json::json!("soon")),
            ("timeout", serde_json::json!("0s")),
            ("scopes", serde_json::json!(["ok", "two words"])),
            ("on_error", serde_json::json!("maybe")),
            ("consumer_header", serde_json::json!("a b")),
            ("ca_file", serde_json::json!("/nonexistent/ca.pem")),
            ("client_secret_env", serde_json::json!("UNSET_VAR")),
        ] {
            let e = build(with(field, v.clone()), false).err().unwrap();
            let want = if field == "scopes" {
                "scopes[1]"
            } else {
                field
            };
            assert_eq!(e.path, want, "{field}: {v} → {e}");
        }
        // a dry build does not need the secret itself
        assert!(build(with("client_secret_env", "UNSET_VAR".into()), true).is_ok());
    }

    #[test]
    fn bearer_tokens() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        assert!(bearer(&req).is_none());
        req.insert_header("authorization", "Basic abc").unwrap();
        assert!(bearer(&req).is_none());
        req.insert_header("authorization", "bearer  tok.en ")
            .unwrap();
        assert_eq!(bearer(&req), Some(Ok("tok.en")));
        req.insert_header("authorization", "Bearer ").unwrap();
        assert_eq!(bearer(&req), Some(Err(())));
        req.insert_header("authorization", "Bearer a b").unwrap();
        assert_eq!(bearer(&req), Some(Err(())));
    }
}
