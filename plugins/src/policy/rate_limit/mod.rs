//! `rate_limit`: `average` requests per `period` refill a bucket of `burst` (Traefik's
//! meaning), per key (consumer, client IP, route, or a header), counted per route or
//! per shared `policy`, in this process (`store: local`) or in Redis shared by every
//! replica (`store: redis`).
//!
//! ```yaml
//! - { name: rate_limit, average: 100, burst: 200, period: 1m, key: consumer }
//! ```

mod gcra;
pub(crate) mod headers;
pub(crate) mod local;
pub(crate) mod redis_store;
mod sliding;

use crate::policy::limit_key::{scope, LimitKey};
use crate::policy::units::Period;
use crate::{BuildCtx, Factory, Flow, Plugin, Reply, RequestCall, SettingsError, Shared};
use async_trait::async_trait;
use gcra::Gcra;
use http::HeaderValue;
use local::LocalStore;
use redis_store::RedisStore;
use schemars::JsonSchema;
use serde::Deserialize;
use sliding::Sliding;
use std::sync::Arc;
use std::time::Duration;

/// One decision, whichever algorithm and store made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests that may still be sent now.
    pub remaining: u64,
    /// Until the quota is whole again (token bucket) or the window ends (sliding).
    pub reset: Duration,
    /// Refused: until one more request fits.
    pub retry_after: Duration,
}

/// The algorithm.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// GCRA: a bucket of `burst` refilled with `average` per `period`.
    #[default]
    TokenBucket,
    /// At most `average` requests in any window of `period` (`burst` is not used).
    SlidingWindow,
}

/// Where the buckets live.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In this gateway process.
    #[default]
    Local,
    /// In Redis (`redis_url_env`, default `REDIS_URL`), shared by every replica.
    Redis,
}

/// What to do while Redis cannot answer.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// Apply the same limit in this process until Redis returns.
    #[default]
    Local,
    /// Let every request through.
    Allow,
    /// Refuse every request (429, `Retry-After: 1`).
    Deny,
}

fn default_key() -> String {
    "consumer".into()
}
fn default_redis_env() -> String {
    "REDIS_URL".into()
}
fn default_max_keys() -> usize {
    100_000
}
fn default_timeout() -> Period {
    Period(Duration::from_millis(100))
}

/// Rate limit settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests allowed per `period`, on average (the bucket's refill rate).
    pub average: u64,
    /// The bucket's size: a fresh key may send this many at once (default: `average`).
    #[serde(default)]
    pub burst: Option<u64>,
    /// The period of `average` (default `1s`).
    #[serde(default)]
    pub period: Option<Period>,
    /// What a bucket is keyed by: `consumer` (default; anonymous requests by client
    /// IP), `ip`, `route` (one bucket), or `header:NAME` (requests without it by IP).
    #[serde(default = "default_key")]
    pub key: String,
    /// `token_bucket` (GCRA, default) or `sliding_window`.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// A name shared by several routes that count together (default: each route
    /// counts on its own). Also the name in the `RateLimit` headers.
    #[serde(default)]
    pub policy: Option<String>,
    /// `local` (default) or `redis`.
    #[serde(default)]
    pub store: StoreKind,
    /// The environment variable holding the Redis URL (`store: redis`).
    #[serde(default = "default_redis_env")]
    pub redis_url_env: String,
    /// While Redis cannot answer: `local` (default), `allow` or `deny`.
    #[serde(default)]
    pub on_store_error: OnStoreError,
    /// Longest wait for Redis before falling back (default `100ms`).
    #[serde(default = "default_timeout")]
    pub store_timeout: Period,
    /// Proxies whose `X-Forwarded-For` gives the client address (addresses or CIDR).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Most keys kept in this process per route or policy (idle ones are evicted).
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
}

/// The algorithm with its limits.
#[derive(Debug, Clone, Copy)]
enum Limiter {
    Gcra(Gcra),
    Sliding(Sliding),
}

pub struct RateLimit {
    limiter: Limiter,
    key: LimitKey,
    local: Arc<LocalStore>,
    redis: Option<Arc<RedisStore>>,
    on_store_error: OnStoreError,
    max_keys: usize,
    /// `rl:<scope>:` prefix of Redis keys.
    redis_prefix: String,
    headers: headers::Fixed,
    shared: Arc<Shared>,
}

impl RateLimit {
    pub fn new(s: RateLimitSettings, cx: &BuildCtx<'_>) -> Result<Self, SettingsError> {
        if s.average == 0 {
            return Err(SettingsError::at("average", "must be at least 1"));
        }
        let burst = s.burst.unwrap_or(s.average);
        if burst == 0 {
            return Err(SettingsError::at("burst", "must be at least 1"));
        }
        let period = s.period.map_or(Duration::from_secs(1), |p| p.0);
        if period.is_zero() {
            return Err(SettingsError::at("period", "must be longer than zero"));
        }
        if s.max_keys == 0 {
            return Err(SettingsError::at("max_keys", "must be at least 1"));
        }
        if s.policy.as_deref().is_some_and(str::is_empty) {
            return Err(SettingsError::at("policy", "must not be empty"));
        }
        let key = LimitKey::parse(&s.key, &s.trusted_proxies)?;
        let limiter = match s.algorithm {
            Algorithm::TokenBucket => Limiter::Gcra(Gcra::new(s.average, burst, period)),
            Algorithm::SlidingWindow => Limiter::Sliding(Sliding::new(s.average, period)),
        };
        let scope = scope(s.policy.as_deref(), cx.route);
        let header_name = s.policy.as_deref().or(cx.route).unwrap_or("default");
        let local = cx
            .shared
            .state(&format!("rate_limit:{scope}"), LocalStore::default);
        let redis = match s.store {
            StoreKind::Local => None,
            StoreKind::Redis => redis_store("rate_limit", &s.redis_url_env, s.store_timeout.0, cx)?,
        };
        Ok(Self {
            limiter,
            key,
            local,
            redis,
            on_store_error: s.on_store_error,
            max_keys: s.max_keys,
            redis_prefix: format!("gw:rl:{scope}:"),
            headers: headers::Fixed::new(header_name, s.average, period),
            shared: cx.shared.clone(),
        })
    }

    fn decide_local(&self, key: &str) -> Decision {
        match &self.limiter {
            Limiter::Gcra(g) => self.local.gcra(g, key, self.max_keys),
            Limiter::Sliding(s) => self.local.sliding(s, key, self.max_keys),
        }
    }

    /// A decision: Redis when configured and answering, else the fallback. `None`:
    /// let the request through with no headers (`on_store_error: allow`).
    async fn decide(&self, key: &str) -> Option<Decision> {
        let Some(redis) = &self.redis else {
            return Some(self.decide_local(key));
        };
        let rkey = format!("{}{key}", self.redis_prefix);
        let answer = match &self.limiter {
            Limiter::Gcra(g) => redis.gcra(g, &rkey).await,
            Limiter::Sliding(s) => redis.sliding(s, &rkey).await,
        };
        match answer {
            Ok(Some(d)) => return Some(d),
            Ok(None) => {}
            Err(_) => {
                self.shared
                    .metrics
                    .dependency_errors
                    .with_label_values(&["rate_limit", "redis"])
                    .inc();
            }
        }
        match self.on_store_error {
            OnStoreError::Local => Some(self.decide_local(key)),
            OnStoreError::Allow => None,
            OnStoreError::Deny => Some(Decision {
                allowed: false,
                remaining: 0,
                reset: Duration::from_secs(1),
                retry_after: Duration::from_secs(1),
            }),
        }
    }
}

/// The Redis store named by `redis_url_env`, kept in `Shared` by URL (one per process,
/// shared by `rate_limit` and `token_limit`). Dry builds open nothing; a serving
/// gateway without the variable uses local state (logged).
pub(crate) fn redis_store(
    plugin: &str,
    redis_url_env: &str,
    timeout: Duration,
    cx: &BuildCtx<'_>,
) -> Result<Option<Arc<RedisStore>>, SettingsError> {
    let Some(url) = cx.shared.env(redis_url_env) else {
        if !cx.shared.is_dry() {
            tracing::warn!(
                var = %redis_url_env,
                "{plugin}: store is redis but the variable is not set; state is local"
            );
        }
        return Ok(None);
    };
    if timeout.is_zero() {
        return Err(SettingsError::at(
            "store_timeout",
            "must be longer than zero",
        ));
    }
    // parse now so that a bad URL (or an unreadable REDIS_CA_FILE, REDIS_CERT_FILE or
    // REDIS_KEY_FILE of a `rediss://` URL) is refused at its option; the store opens
    // nothing
    let tls = redis_connect::TlsFiles::from_lookup(|k| cx.shared.env(k));
    let store = RedisStore::new(&url, &tls, timeout)
        .map_err(|e| SettingsError::at("redis_url_env", format!("{redis_url_env}: {e}")))?;
    if cx.shared.is_dry() {
        return Ok(None);
    }
    let key = format!("{url}|{}", timeout.as_micros());
    Ok(Some(cx.shared.state(&key, || store)))
}

#[async_trait]
impl Plugin for RateLimit {
    fn stage(&self) -> crate::Stage {
        crate::Stage::Limit
    }

    async fn on_request(&self, call: &mut RequestCall<'_>) -> crate::Decision {
        let key = self.key.of(call);
        let Some(d) = self.decide(&key).await else {
            return Ok(Flow::Continue);
        };
        call.ctx
            .response_headers
            .extend(self.headers.for_decision(&d));
        if d.allowed {
            return Ok(Flow::Continue);
        }
        let client = match call.identity() {
            Some(i) if i.configured => i.consumer.as_str(),
            _ => "anonymous",
        };
        self.shared
            .metrics
            .rate_limit_hits
            .with_label_values(&[client])
            .inc();
        let secs = headers::secs_ceil(d.retry_after).max(1);
        Ok(Flow::Respond(
            Reply::error(429, "rate_limited", "too many requests; retry later")
                .with_header(http::header::RETRY_AFTER, HeaderValue::from(secs))
                .blocked_as("rate_limited"),
        ))
    }
}

impl Factory for RateLimit {
    const NAME: &'static str = "rate_limit";
    const SUMMARY: &'static str =
        "Limit requests per consumer, IP, route or header (token bucket or sliding window; local or Redis); refused: 429";
    type Settings = RateLimitSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc {
            headers_everywhere: vec![
                "RateLimit",
                "RateLimit-Policy",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
            ],
            ..crate::ApiDoc::answers([
                crate::ApiAnswer::new(429, "Too many requests (`rate_limited`).", &["Retry-After"]),
                crate::DEPENDENCY_ANSWER,
            ])
        }
    }

    fn build(s: RateLimitSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(RateLimit::new(s, cx)?))
    }
}

#[cfg(test)]
mod tests;
