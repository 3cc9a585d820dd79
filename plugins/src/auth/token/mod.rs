//! `token`: a route that exchanges a credential checked by a preceding `api_key` or
//! `basic_auth` plugin on the same route for a short-lived JWT (HS256, signed with
//! `secret_env`, so a `jwt` plugin with the same secret verifies it) plus a refresh
//! token. Refresh tokens are single use (a refresh returns a new pair) and revocable;
//! they are kept in Redis when `REDIS_URL` is set, else in memory. The plugin answers
//! every request itself:
//!
//! - `POST <route>/token` → `{access_token, token_type, expires_in, refresh_token, ...}`
//! - `POST <route>/refresh` with `{"refresh_token": "..."}` → a new pair; the old
//!   refresh token no longer works (401 `revoked`)
//! - `POST <route>/revoke` with `{"refresh_token": "..."}` → 200 (RFC 7009: also for
//!   tokens already gone)
//!
//! All three need the caller's credential (RFC 6749 client authentication), and a
//! refresh token only works for the consumer it was issued to.
//! Redis down → 503 (fail-closed).
//!
//! ```yaml
//! - name: auth-token
//!   match: { path_prefix: /auth, methods: [POST] }
//!   fallback: { status: 404 }
//!   plugins:
//!     - { name: api_key, keys_file: keys.yaml }
//!     - { name: token, secret_env: JWT_SECRET, ttl: 15m, refresh_ttl: 24h }
//! ```

mod api_doc;
mod store;

use super::{deny, parse_duration, Reason};
use crate::{
    BodyCall, BuildCtx, Decision, Factory, Flow, Identity, Plugin, PluginFailure, PluginMetrics,
    Reply, RequestCall, SettingsError,
};
use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use jsonwebtoken::{EncodingKey, Header};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use store::{MemoryStore, Record, RedisStore, Store};

fn default_ttl() -> String {
    "15m".into()
}
fn default_refresh_ttl() -> String {
    "24h".into()
}

/// Issues short-lived JWTs and single-use refresh tokens to authenticated callers.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Environment variable holding the HS256 signing secret.
    pub secret_env: String,
    /// Lifetime of an access token.
    #[serde(default = "default_ttl")]
    pub ttl: String,
    /// Lifetime of a refresh token.
    #[serde(default = "default_refresh_ttl")]
    pub refresh_ttl: String,
    /// `iss` of the tokens issued.
    #[serde(default)]
    pub issuer: Option<String>,
    /// `aud` of the tokens issued.
    #[serde(default)]
    pub audience: Option<String>,
}

pub struct Token {
    key: EncodingKey,
    ttl: Duration,
    refresh_ttl: Duration,
    issuer: Option<String>,
    audience: Option<String>,
    store: Arc<Store>,
    metrics: PluginMetrics,
}

pub(crate) fn unix_now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The endpoint a path names (its last segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Issue,
    Refresh,
    Revoke,
}

fn endpoint(path: &str) -> Option<Endpoint> {
    match path.trim_end_matches('/').rsplit('/').next()? {
        "token" => Some(Endpoint::Issue),
        "refresh" => Some(Endpoint::Refresh),
        "revoke" => Some(Endpoint::Revoke),
        _ => None,
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn no_store(r: Reply) -> Reply {
    r.with_header(
        HeaderName::from_static("cache-control"),
        HeaderValue::from_static("no-store"),
    )
}

/// The `refresh_token` member of a JSON body.
fn refresh_token_of(body: &Bytes) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("refresh_token")?.as_str().map(str::to_owned)
}

impl Token {
    fn unavailable(&self, e: store::StoreError) -> PluginFailure {
        self.metrics
            .dependency_errors
            .with_label_values(&["token", "redis"])
            .inc();
        PluginFailure::unavailable("token", format!("refresh token store: {e}"))
    }

    /// A new access token and refresh token for `id`.
    async fn issue(&self, id: &Identity) -> Result<Reply, PluginFailure> {
        let now = unix_now();
        let mut claims = serde_json::json!({
            "sub": id.consumer,
            "iat": now,
            "exp": now + self.ttl.as_secs(),
            "jti": uuid_like(),
        });
        if !id.scopes.is_empty() {
            claims["scope"] = id.scopes.join(" ").into();
        }
        if !id.roles.is_empty() {
            claims["roles"] = id.roles.clone().into();
        }
        if let Some(i) = &self.issuer {
            claims["iss"] = i.clone().into();
        }
        if let Some(a) = &self.audience {
            claims["aud"] = a.clone().into();
        }
        let access = jsonwebtoken::encode(&Header::default(), &claims, &self.key)
            .map_err(|e| PluginFailure::internal("token", format!("signing: {e}")))?;
        let refresh =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let rec = Record {
            consumer: id.consumer.clone(),
            roles: id.roles.clone(),
            scopes: id.scopes.clone(),
            expires: now + self.refresh_ttl.as_secs(),
        };
        self.store
            .put(&hash(&refresh), &rec, self.refresh_ttl)
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut body = serde_json::json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.ttl.as_secs(),
            "refresh_token": refresh,
            "refresh_expires_in": self.refresh_ttl.as_secs(),
        });
        if !id.scopes.is_empty() {
            body["scope"] = id.scopes.join(" ").into();
        }
        Ok(no_store(Reply::json(200, body)))
    }

    async fn refresh(&self, id: &Identity, body: &Bytes) -> Result<Reply, PluginFailure> {
        let Some(t) = refresh_token_of(body) else {
            return Ok(bad_request("give {\"refresh_token\": \"...\"} as JSON"));
        };
        let rec = self
            .store
            .take(&hash(&t))
            .await
            .map_err(|e| self.unavailable(e))?;
        match rec {
            // the new pair carries the roles and scopes the credential has now
            Some(r) if r.consumer == id.consumer && r.expires > unix_now() => self.issue(id).await,
            Some(_) | None => Ok(deny(
                &self.metrics,
                Reason::Revoked,
                Some("Bearer realm=\"api\", error=\"invalid_token\"".into()),
                "refresh token unknown, used, revoked or expired",
            )),
        }
    }

    async fn revoke(&self, id: &Identity, body: &Bytes) -> Result<Reply, PluginFailure> {
        let Some(t) = refresh_token_of(body) else {
            return Ok(bad_request("give {\"refresh_token\": \"...\"} as JSON"));
        };
        let h = hash(&t);
        let rec = self.store.take(&h).await.map_err(|e| self.unavailable(e))?;
        if let Some(r) = rec {
            if r.consumer != id.consumer {
                // not the caller's: leave it as it was
                let left = Duration::from_secs(r.expires.saturating_sub(unix_now()));
                self.store
                    .put(&h, &r, left)
                    .await
                    .map_err(|e| self.unavailable(e))?;
            }
        }
        Ok(no_store(Reply::json(
            200,
            serde_json::json!({ "revoked": true }),
        )))
    }
}

fn bad_request(m: &str) -> Reply {
    Reply::error(400, "bad_request", m).blocked_as("auth")
}

/// A random identifier for `jti`.
fn uuid_like() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[async_trait]
impl Plugin for Token {
    fn needs_identity(&self) -> bool {
        true
    }

    fn wants_body(&self) -> bool {
        true
    }

    async fn on_request(&self, call: &mut RequestCall<'_>) -> Decision {
        let Some(ep) = endpoint(call.info.path) else {
            return Ok(Flow::Respond(
                Reply::error(404, "not_found", "token endpoints: token, refresh, revoke")
                    .blocked_as("auth"),
            ));
        };
        if call.method() != http::Method::POST {
            return Ok(Flow::Respond(
                Reply::error(405, "method_not_allowed", "use POST")
                    .with_header(http::header::ALLOW, HeaderValue::from_static("POST")),
            ));
        }
        let Some(id) = call.identity() else {
            return Ok(Flow::Respond(deny(
                &self.metrics,
                Reason::Missing,
                Some("Bearer realm=\"api\"".into()),
                "authenticate first (an api_key or basic_auth plugin before `token`)",
            )));
        };
        match ep {
            Endpoint::Issue => Ok(Flow::Respond(self.issue(id).await?)),
            Endpoint::Refresh | Endpoint::Revoke => {
                let empty = call
                    .req
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .is_none_or(|v| v.as_bytes() == b"0")
                    && call
                        .req
                        .headers
                        .get(http::header::TRANSFER_ENCODING)
                        .is_none();
                if empty {
                    return Ok(Flow::Respond(bad_request(
                        "give {\"refresh_token\": \"...\"} as JSON",
                    )));
                }
                Ok(Flow::Continue) // answered in the body phase
            }
        }
    }

    async fn on_request_body(&self, call: &mut BodyCall<'_>) -> Decision {
        let Some(id) = call.ctx.identity.clone() else {
            return Ok(Flow::Continue);
        };
        let reply = match endpoint(call.info.path) {
            Some(Endpoint::Refresh) => self.refresh(&id, call.body).await?,
            Some(Endpoint::Revoke) => self.revoke(&id, call.body).await?,
            _ => return Ok(Flow::Continue),
        };
        Ok(Flow::Respond(reply))
    }
}

impl Factory for Token {
    const NAME: &'static str = "token";
    const SUMMARY: &'static str =
        "Exchange an API key or basic credentials for a short-lived JWT and a single-use refresh token";
    type Settings = TokenSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        api_doc::api_doc()
    }

    fn build(s: TokenSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        let secret = cx.secret("secret_env", &s.secret_env)?;
        let ttl = parse_duration("ttl", &s.ttl)?;
        let refresh_ttl = parse_duration("refresh_ttl", &s.refresh_ttl)?;
        if ttl.as_secs() == 0 || refresh_ttl.as_secs() == 0 {
            return Err(SettingsError::at("ttl", "lifetimes are at least 1s"));
        }
        let store = match cx.shared.env("REDIS_URL") {
            Some(url) => {
                // a bad URL, or an unreadable TLS file of a `rediss://` URL, is refused
                // (by `check` too); only a store that could be made is kept, so that a
                // fixed file is read again on the next reload
                let slot = cx.shared.state(&format!("token-store:{url}"), || {
                    std::sync::Mutex::new(None::<Arc<Store>>)
                });
                let mut kept = slot.lock().unwrap_or_else(|e| e.into_inner());
                match kept.as_ref() {
                    Some(s) => s.clone(),
                    None => {
                        let tls = redis_connect::TlsFiles::from_lookup(|k| cx.shared.env(k));
                        let made = RedisStore::new(&url, &tls)
                            .map_err(|e| SettingsError::whole(format!("REDIS_URL: {e}")))?;
                        let made = Arc::new(Store::Redis(Box::new(made)));
                        if !cx.shared.is_dry() {
                            *kept = Some(made.clone());
                        }
                        made
                    }
                }
            }
            None => {
                let slot = cx
                    .shared
                    .state(&format!("token-store:memory:{}", s.secret_env), || {
                        Arc::new(Store::Memory(MemoryStore::default()))
                    });
                Arc::clone(&*slot)
            }
        };
        Ok(Arc::new(Token {
            key: EncodingKey::from_secret(secret.as_bytes()),
            ttl,
            refresh_ttl,
            issuer: s.issuer,
            audience: s.audience,
            store,
            metrics: cx.shared.metrics.clone(),
        }))
    }
}

#[cfg(test)]
mod tests;
