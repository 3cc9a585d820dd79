//! `token_limit`: a budget of generation tokens per key (consumer, IP, route or a
//! header, as `rate_limit`) and `period`. A request is admitted while its key's budget
//! is positive; once its answer is over, the tokens it used are charged: the `tokens`
//! of a JSON answer, of the final Server-Sent Event of a stream, or a response header.
//! The budget lives in this process or in Redis, where the charge is one atomic script,
//! so replicas share one budget exactly. Spent: 429 `rate_limited` with `Retry-After`;
//! every answer of the route carries `RateLimit` / `RateLimit-Policy` in tokens.
//!
//! ```yaml
//! - { name: token_limit, tokens: 10000, period: 1h, key: consumer, store: redis }
//! ```

mod meter;
mod window;

use crate::policy::limit_key::{scope, LimitKey};
use crate::policy::rate_limit::headers::{secs_ceil, sf_string};
use crate::policy::rate_limit::redis_store::RedisStore;
use crate::policy::rate_limit::{redis_store, OnStoreError, StoreKind};
use crate::policy::units::Period;
use crate::{
    BodyCall, BuildCtx, Decision, Factory, Flow, Plugin, PluginCtx, Reply, RequestCall,
    SettingsError, Shared,
};
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use meter::{Meter, Mode};
use pingora_http::ResponseHeader;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use window::LocalWindows;

fn default_key() -> String {
    "consumer".into()
}
fn default_period() -> Period {
    Period(Duration::from_secs(3600))
}
fn default_redis_env() -> String {
    "REDIS_URL".into()
}
fn default_timeout() -> Period {
    Period(Duration::from_millis(100))
}
fn default_max_keys() -> usize {
    100_000
}
fn default_charge_from() -> String {
    "body".into()
}

/// Token budget settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenLimitSettings {
    /// Tokens a key may use per `period`.
    pub tokens: u64,
    /// The budget's window, from a key's first charge (default `1h`).
    #[serde(default = "default_period")]
    pub period: Period,
    /// What a budget is keyed by: `consumer` (default; anonymous requests by client
    /// IP), `ip`, `route` (one budget), or `header:NAME`.
    #[serde(default = "default_key")]
    pub key: String,
    /// A name shared by several routes that spend one budget (default: each route has
    /// its own). Also the name in the `RateLimit` headers.
    #[serde(default)]
    pub policy: Option<String>,
    /// `local` (default) or `redis` (shared by every replica).
    #[serde(default)]
    pub store: StoreKind,
    /// The environment variable holding the Redis URL (`store: redis`).
    #[serde(default = "default_redis_env")]
    pub redis_url_env: String,
    /// While Redis cannot answer: `local` (default: this process's budget), `allow` or
    /// `deny` (429).
    #[serde(default)]
    pub on_store_error: OnStoreError,
    /// Longest wait for Redis before falling back (default `100ms`).
    #[serde(default = "default_timeout")]
    pub store_timeout: Period,
    /// Proxies whose `X-Forwarded-For` gives the client address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Most keys kept in this process (idle ones are evicted).
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// Where the count is read: `body` (default: `tokens` of a JSON answer or of the
    /// final SSE event; `usage.total_tokens` and a pipeline's `generation.tokens` too)
    /// or `header:NAME` (a response header).
    #[serde(default = "default_charge_from")]
    pub charge_from: String,
    /// Refuse up front a request whose JSON body asks for more `max_tokens` than the
    /// key has left (the body is then read before it goes upstream).
    #[serde(default)]
    pub refuse_over_budget: bool,
}

/// Where the count comes from.
#[derive(Debug, Clone)]
enum ChargeFrom {
    Body,
    Header(HeaderName),
}

/// The budgets, shared with the charges that run after the answer.
struct Budget {
    tokens: u64,
    window: Duration,
    local: Arc<LocalWindows>,
    redis: Option<Arc<RedisStore>>,
    on_store_error: OnStoreError,
    redis_prefix: String,
    max_keys: usize,
    shared: Arc<Shared>,
    /// The `route` label of `gateway_tokens_total`.
    scope_label: String,
}

/// Tokens used and time left in a key's window; `None`: no decision (`allow`).
enum Seen {
    Used(u64, Duration),
    Allow,
    Deny,
}

impl Budget {
    fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }

    async fn read(&self, key: &str) -> Seen {
        self.apply(key, 0).await
    }

    /// Adds `n` tokens (0: reads) and returns what the window holds.
    async fn apply(&self, key: &str, n: u64) -> Seen {
        if let Some(redis) = &self.redis {
            match redis
                .tokens(&format!("{}{key}", self.redis_prefix), n, self.window_ms())
                .await
            {
                Ok(Some((used, left_ms))) => {
                    return Seen::Used(used, Duration::from_millis(left_ms));
                }
                Ok(None) => {}
                Err(_) => self
                    .shared
                    .metrics
                    .dependency_errors
                    .with_label_values(&["token_limit", "redis"])
                    .inc(),
            }
            match self.on_store_error {
                OnStoreError::Local => {}
                OnStoreError::Allow => return Seen::Allow,
                OnStoreError::Deny => return Seen::Deny,
            }
        }
        let (used, left) = self.local.apply(key, n, self.window, self.max_keys);
        Seen::Used(used, left)
    }

    /// Charges `n` tokens to `key` once the answer is over (Redis: in a task of its own).
    fn charge(self: &Arc<Self>, key: String, consumer: &str, n: u64) {
        if n == 0 {
            return;
        }
        self.shared
            .metrics
            .tokens
            .with_label_values(&[&self.scope_label, consumer])
            .inc_by(n);
        let me = self.clone();
        match (&self.redis, tokio::runtime::Handle::try_current()) {
            (Some(_), Ok(rt)) => {
                rt.spawn(async move {
                    let _ = me.apply(&key, n).await;
                });
            }
            _ => {
                let _ = self.local.apply(&key, n, self.window, self.max_keys);
            }
        }
    }
}

/// Per request and entry (the entry's own value: two `token_limit` entries on a route,
/// a global one and the route's, each charge their own budget): the key, and the meter
/// of the answer once its type is known.
struct Charge {
    key: String,
    consumer: String,
    remaining: u64,
    meter: Option<Meter>,
}

pub struct TokenLimit {
    budget: Arc<Budget>,
    key: LimitKey,
    charge_from: ChargeFrom,
    refuse_over_budget: bool,
    /// `RateLimit-Policy` without its `pk`, and the `"name"` of `RateLimit`.
    policy: String,
    name: String,
}

const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

impl TokenLimit {
    /// `RateLimit-Policy` (with `pk`, the key's partition: the first 12 bytes of its
    /// SHA-256, so the header names no consumer or address) and `RateLimit`.
    fn headers(&self, key: &str, remaining: u64, left: Duration) -> [(HeaderName, HeaderValue); 2] {
        use base64::Engine;
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let pk = base64::engine::general_purpose::STANDARD.encode(&digest[..12]);
        let value = |s: String| {
            HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("\"tokens\""))
        };
        let rl = format!("{};r={remaining};t={}", self.name, secs_ceil(left));
        [
            (POLICY, value(format!("{};pk=:{pk}:", self.policy))),
            (RATELIMIT, value(rl)),
        ]
    }

    fn spent(&self, message: String, left: Duration) -> Flow {
        let secs = secs_ceil(left).max(1);
        Flow::Respond(
            Reply::error(429, "rate_limited", message)
                .with_header(http::header::RETRY_AFTER, HeaderValue::from(secs))
                .blocked_as("token_limit"),
        )
    }
}

#[async_trait]
impl Plugin for TokenLimit {
    fn stage(&self) -> crate::Stage {
        crate::Stage::Limit
    }

    async fn on_request(&self, call: &mut RequestCall<'_>) -> Decision {
        let key = self.key.of(call);
        let (used, left) = match self.budget.read(&key).await {
            Seen::Used(u, l) => (u, l),
            Seen::Allow => return Ok(Flow::Continue),
            Seen::Deny => (self.budget.tokens, Duration::from_secs(1)),
        };
        let remaining = self.budget.tokens.saturating_sub(used);
        call.ctx.response_headers.extend(self.headers(
            &key,
            remaining,
            left.max(Duration::from_secs(1)),
        ));
        if remaining == 0 {
            return Ok(self.spent("the token budget is spent; retry later".into(), left));
        }
        let consumer = match call.identity() {
            Some(i) if i.configured => i.consumer.clone(),
            _ => "anonymous".to_string(),
        };
        call.ctx.set_own(Charge {
            key,
            consumer,
            remaining,
            meter: None,
        });
        Ok(Flow::Continue)
    }

    fn wants_body(&self) -> bool {
        self.refuse_over_budget
    }

    async fn on_request_body(&self, call: &mut BodyCall<'_>) -> Decision {
        let Some(c) = call.ctx.own::<Charge>() else {
            return Ok(Flow::Continue);
        };
        let asked = serde_json::from_slice::<serde_json::Value>(call.body)
            .ok()
            .and_then(|v| v.get("max_tokens").and_then(serde_json::Value::as_u64));
        match asked {
            Some(n) if n > c.remaining => Ok(self.spent(
                format!("the request asks for {n} tokens; {} are left", c.remaining),
                self.budget.window,
            )),
            _ => Ok(Flow::Continue),
        }
    }

    fn on_response(&self, resp: &mut ResponseHeader, ctx: &mut PluginCtx) {
        let Some(mut c) = ctx.take_own::<Charge>() else {
            return;
        };
        match &self.charge_from {
            ChargeFrom::Header(h) => {
                let n = resp
                    .headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                self.budget.charge(c.key, &c.consumer, n);
            }
            ChargeFrom::Body => {
                let ct = resp
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let mode = if ct.starts_with("text/event-stream") {
                    Mode::Sse
                } else if ct.starts_with("application/json") || ct.contains("+json") {
                    Mode::Json
                } else {
                    return;
                };
                c.meter = Some(Meter::new(mode));
                ctx.set_own(c);
            }
        }
    }

    fn wants_response_body(&self) -> bool {
        matches!(self.charge_from, ChargeFrom::Body)
    }

    fn on_response_body(&self, body: &mut Option<Bytes>, end_of_stream: bool, ctx: &mut PluginCtx) {
        let Some(m) = ctx.own::<Charge>().and_then(|c| c.meter.as_mut()) else {
            return;
        };
        if let Some(b) = body.as_ref() {
            m.feed(b);
        }
        if end_of_stream {
            let n = m.finish().unwrap_or(0);
            if let Some(c) = ctx.take_own::<Charge>() {
                self.budget.charge(c.key, &c.consumer, n);
            }
        }
    }
}

impl Factory for TokenLimit {
    const NAME: &'static str = "token_limit";
    const SUMMARY: &'static str =
        "A budget of generation tokens per consumer, IP, route or header and period (local or Redis); spent: 429";
    type Settings = TokenLimitSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc {
            headers_everywhere: vec!["RateLimit", "RateLimit-Policy"],
            ..crate::ApiDoc::answers([
                crate::ApiAnswer::new(
                    429,
                    "The token budget is spent (`rate_limited`).",
                    &["Retry-After"],
                ),
                crate::DEPENDENCY_ANSWER,
            ])
        }
    }

    fn build(s: TokenLimitSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        if s.tokens == 0 {
            return Err(SettingsError::at("tokens", "must be at least 1"));
        }
        if s.period.0.is_zero() {
            return Err(SettingsError::at("period", "must be longer than zero"));
        }
        if s.max_keys == 0 {
            return Err(SettingsError::at("max_keys", "must be at least 1"));
        }
        if s.policy.as_deref().is_some_and(str::is_empty) {
            return Err(SettingsError::at("policy", "must not be empty"));
        }
        let charge_from = match s.charge_from.trim() {
            "body" => ChargeFrom::Body,
            other => match other.strip_prefix("header:") {
                Some(h) => {
                    ChargeFrom::Header(HeaderName::from_bytes(h.trim().as_bytes()).map_err(
                        |_| SettingsError::at("charge_from", format!("`{h}` is not a header name")),
                    )?)
                }
                None => {
                    return Err(SettingsError::at(
                        "charge_from",
                        format!("`{other}`: use body or header:NAME"),
                    ))
                }
            },
        };
        let key = LimitKey::parse(&s.key, &s.trusted_proxies)?;
        let scope = scope(s.policy.as_deref(), cx.route);
        let label = s.policy.as_deref().or(cx.route).unwrap_or("global");
        let redis = match s.store {
            StoreKind::Local => None,
            StoreKind::Redis => {
                redis_store("token_limit", &s.redis_url_env, s.store_timeout.0, cx)?
            }
        };
        let name = sf_string(label);
        let w = secs_ceil(s.period.0).max(1);
        let policy = format!("{name};q={};w={w}", s.tokens);
        Ok(Arc::new(TokenLimit {
            budget: Arc::new(Budget {
                tokens: s.tokens,
                window: s.period.0,
                local: cx
                    .shared
                    .state(&format!("token_limit:{scope}"), LocalWindows::default),
                redis,
                on_store_error: s.on_store_error,
                redis_prefix: format!("gw:tl:{scope}:"),
                max_keys: s.max_keys,
                shared: cx.shared.clone(),
                scope_label: label.to_string(),
            }),
            key,
            charge_from,
            refuse_over_budget: s.refuse_over_budget,
            policy,
            name,
        }))
    }
}
