//! The introspection endpoint (RFC 7662): one HTTP call per token not in the cache, and
//! the cache of answers, kept in [`crate::Shared`] so that it outlives reloads. The
//! cache is keyed by the SHA-256 of the token (the token itself is never stored or
//! logged); concurrent requests with the same new token share one call.

use moka::future::Cache;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest number of cached answers per endpoint (and client).
const CACHE_CAPACITY: u64 = 100_000;

/// How the gateway authenticates itself to the endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

/// What the endpoint said about a token, as the plugin needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspected {
    pub active: bool,
    /// `sub`, else `username`, else `client_id`.
    pub consumer: Option<String>,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    /// String members kept for later plugins and headers (`sub`, `username`,
    /// `client_id`, `iss`, `token_type`).
    pub claims: BTreeMap<String, String>,
    /// `exp`, seconds since the epoch.
    pub exp: Option<u64>,
    /// How long this answer may be cached.
    ttl: Duration,
}

impl Introspected {
    /// Whether the token is active now (an `exp` in the past makes it inactive, whatever
    /// the endpoint or the cache said).
    pub fn is_active(&self) -> bool {
        self.active && self.exp.is_none_or(|e| e > now_secs())
    }
}

/// RFC 7662 §2.2 response members the gateway reads.
#[derive(Deserialize)]
struct Response {
    active: bool,
    scope: Option<String>,
    sub: Option<String>,
    username: Option<String>,
    client_id: Option<String>,
    iss: Option<String>,
    token_type: Option<String>,
    exp: Option<u64>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Response {
    fn into_introspected(self, cache_ttl: Duration) -> Introspected {
        // an active answer is cached no longer than the token lives
        let ttl = match (self.active, self.exp) {
            (true, Some(exp)) => cache_ttl.min(Duration::from_secs(exp.saturating_sub(now_secs()))),
            _ => cache_ttl,
        };
        let mut claims = BTreeMap::new();
        for (k, v) in [
            ("sub", &self.sub),
            ("username", &self.username),
            ("client_id", &self.client_id),
            ("iss", &self.iss),
            ("token_type", &self.token_type),
        ] {
            if let Some(v) = v {
                claims.insert(k.to_string(), v.clone());
            }
        }
        Introspected {
            active: self.active,
            consumer: [self.sub, self.username, self.client_id]
                .into_iter()
                .flatten()
                .find(|s| !s.is_empty()),
            scopes: self
                .scope
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            claims,
            exp: self.exp,
            ttl,
        }
    }
}

/// Each answer expires after its own `ttl`.
struct PerEntry;

impl moka::Expiry<[u8; 32], Arc<Introspected>> for PerEntry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Introspected>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Cached answers of one endpoint for one client and cache time (in [`crate::Shared`]).
pub struct AnswerCache(Cache<[u8; 32], Arc<Introspected>>);

impl AnswerCache {
    pub fn new() -> Self {
        Self(
            Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(PerEntry)
                .build(),
        )
    }
}

/// Why the endpoint gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot reach the introspection endpoint: {0}")]
    Unreachable(String),
    #[error("the introspection endpoint answered {0}")]
    Status(u16),
    #[error("the introspection endpoint's answer is not RFC 7662 JSON: {0}")]
    Invalid(String),
}

/// `unreserved` characters stay as they are; everything else is percent-encoded
/// (`application/x-www-form-urlencoded` for Basic credentials, RFC 6749 §2.3.1).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One endpoint as a route's plugin calls it.
pub struct Endpoint {
    pub url: reqwest::Url,
    pub client_id: String,
    pub client_secret: String,
    pub client_auth: ClientAuth,
    pub timeout: Duration,
    pub cache_ttl: Duration,
    /// `None` in dry builds (they never serve).
    pub client: Option<reqwest::Client>,
    pub cache: Arc<AnswerCache>,
}

/// The cache key of a token.
pub fn token_key(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    k
}

impl Endpoint {
    /// The answer for `token`, from the cache or the endpoint. Failures are not cached.
    pub async fn lookup(&self, token: &str) -> Result<Arc<Introspected>, Arc<EndpointError>> {
        if self.cache_ttl.is_zero() {
            return self.call(token).await.map(Arc::new).map_err(Arc::new);
        }
        self.cache
            .0
            .try_get_with(token_key(token), async {
                self.call(token).await.map(Arc::new)
            })
            .await
    }

    async fn call(&self, token: &str) -> Result<Introspected, EndpointError> {
        let Some(client) = &self.client else {
            return Err(EndpointError::Unreachable(
                "no HTTP client (dry build)".into(),
            ));
        };
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let mut rb = client
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(http::header::ACCEPT, "application/json");
        match self.client_auth {
            ClientAuth::Basic => {
                let id = utf8_percent_encode(&self.client_id, FORM).to_string();
                let secret = utf8_percent_encode(&self.client_secret, FORM).to_string();
                rb = rb.basic_auth(id, Some(secret));
            }
            ClientAuth::Body => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", &self.client_secret));
            }
        }
        let resp = rb
            .form(&form)
            .send()
            .await
            .map_err(|e| EndpointError::Unreachable(e.without_url().to_string()))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(EndpointError::Status(resp.status().as_u16()));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| EndpointError::Unreachable(e.without_url().to_string()))?;
        let r: Response =
            serde_json::from_slice(&body).map_err(|e| EndpointError::Invalid(e.to_string()))?;
        Ok(r.into_introspected(self.cache_ttl))
    }
}

/// Why the endpoint's HTTP client cannot be made from `ca_file`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not a PEM certificate bundle: {0}")]
    NotPem(#[source] reqwest::Error),
    #[error("no certificate in the file")]
    NoCertificate,
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// An HTTP client that trusts the system's roots, plus `ca` (PEM) when given.
pub fn http_client(ca: Option<&[u8]>) -> Result<reqwest::Client, ClientError> {
    let mut b = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent("api-gateway oauth2_introspection");
    if let Ok(roots) = rustls_native_certs::load_native_certs() {
        for c in roots {
            if let Ok(c) = reqwest::Certificate::from_der(c.as_ref()) {
                b = b.add_root_certificate(c);
            }
        }
    }
    if let Some(pem) = ca {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(ClientError::NotPem)?;
        if certs.is_empty() {
            return Err(ClientError::NoCertificate);
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(ClientError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Introspected {
        serde_json::from_value::<Response>(v)
            .unwrap()
            .into_introspected(Duration::from_secs(30))
    }

    #[test]
    fn answers_are_read_as_rfc_7662_says() {
        let i = parse(serde_json::json!({
            "active": true, "scope": "read  write", "username": "alice",
            "client_id": "app", "exp": now_secs() + 5, "extra": [1]
        }));
        assert!(i.is_active());
        assert_eq!(i.consumer.as_deref(), Some("alice"));
        assert_eq!(i.scopes, ["read", "write"]);
        assert_eq!(i.claims["client_id"], "app");
        assert!(i.ttl <= Duration::from_secs(5), "{:?}", i.ttl);

        let i = parse(serde_json::json!({ "active": true, "sub": "s", "exp": 1 }));
        assert!(!i.is_active(), "expired");
        let i = parse(serde_json::json!({ "active": false }));
        assert!(!i.is_active());
        assert_eq!(i.ttl, Duration::from_secs(30));
        assert!(serde_json::from_value::<Response>(serde_json::json!({ "sub": "x" })).is_err());
    }

    #[test]
    fn token_key_is_sha256() {
        assert_eq!(
            hex(&token_key("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
