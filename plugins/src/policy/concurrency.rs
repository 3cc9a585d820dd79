//! `concurrency_limit`: at most `max` requests in flight per route (or shared
//! `policy`), or per consumer; a request over it gets 503 with `Retry-After`. The
//! permit is held in the request's context and released when the request ends, however
//! it ends (answered, failed, client gone).
//!
//! ```yaml
//! - { name: concurrency_limit, max: 50, key: consumer }
//! ```

use super::client_addr::TrustedProxies;
use super::limit_key::{scope, KeyKind, LimitKey};
use crate::{BuildCtx, Decision, Factory, Flow, Plugin, Reply, RequestCall, SettingsError};
use async_trait::async_trait;
use dashmap::DashMap;
use http::HeaderValue;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// What requests are counted together.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyKey {
    /// Every request of the route (or `policy`).
    #[default]
    Route,
    /// Per authenticated consumer; anonymous requests by client IP.
    Consumer,
}

fn default_retry_after() -> u64 {
    1
}

/// Concurrency limit settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencySettings {
    /// Most requests in flight at once (per key).
    pub max: u64,
    /// `route` (default) or `consumer`.
    #[serde(default)]
    pub key: ConcurrencyKey,
    /// A name shared by several routes that count together.
    #[serde(default)]
    pub policy: Option<String>,
    /// Seconds in the `Retry-After` of a 503 (default 1).
    #[serde(default = "default_retry_after")]
    pub retry_after: u64,
    /// Proxies whose `X-Forwarded-For` gives the client address (`key: consumer`,
    /// anonymous requests).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// In-flight counts of one scope, kept in `Shared` (across reloads, so requests that
/// started before a reload still count and release).
#[derive(Default)]
pub struct InFlight {
    counts: DashMap<Box<str>, u64>,
}

impl InFlight {
    /// Takes a slot under `key` unless `max` are taken.
    fn acquire(self: &Arc<Self>, key: &str, max: u64) -> Option<Permit> {
        let mut n = self.counts.entry(key.into()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Permit {
            scope: self.clone(),
            key: key.into(),
        })
    }

    /// Requests in flight under `key`.
    pub fn current(&self, key: &str) -> u64 {
        self.counts.get(key).map_or(0, |n| *n)
    }
}

/// A slot, given back when dropped (with the request's context).
pub struct Permit {
    scope: Arc<InFlight>,
    key: Box<str>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(mut n) = self.scope.counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
        // forget keys with nothing in flight (under the shard lock, like acquire)
        self.scope.counts.remove_if(&self.key, |_, n| *n == 0);
    }
}

/// The permit a request holds for one `concurrency_limit` entry (the entry's own value:
/// each entry of a chain holds its own), released when the request's context goes.
struct Held {
    _permit: Permit,
}

pub struct ConcurrencyLimit {
    max: u64,
    key: LimitKey,
    scope: Arc<InFlight>,
    retry_after: HeaderValue,
}

impl ConcurrencyLimit {
    pub fn new(s: ConcurrencySettings, cx: &BuildCtx<'_>) -> Result<Self, SettingsError> {
        if s.max == 0 {
            return Err(SettingsError::at("max", "must be at least 1"));
        }
        let scope = format!("concurrency:{}", scope(s.policy.as_deref(), cx.route));
        let kind = match s.key {
            ConcurrencyKey::Route => KeyKind::Route,
            ConcurrencyKey::Consumer => KeyKind::Consumer,
        };
        let proxies = TrustedProxies::parse("trusted_proxies", &s.trusted_proxies)?;
        Ok(Self {
            max: s.max,
            key: LimitKey::new(kind, proxies),
            scope: cx.shared.state(&scope, InFlight::default),
            retry_after: HeaderValue::from(s.retry_after.max(1)),
        })
    }
}

impl ConcurrencyLimit {
    /// The request phase: it never waits.
    fn admit(&self, call: &mut RequestCall<'_>) -> Decision {
        let Some(permit) = self.scope.acquire(&self.key.of(call), self.max) else {
            return Ok(Flow::Respond(
                Reply::error(
                    503,
                    "service_unavailable",
                    "too many requests in flight; retry shortly",
                )
                .with_header(http::header::RETRY_AFTER, self.retry_after.clone())
                .blocked_as("concurrency_limit"),
            ));
        };
        call.ctx.set_own(Held { _permit: permit });
        Ok(Flow::Continue)
    }
}

#[async_trait]
impl Plugin for ConcurrencyLimit {
    fn stage(&self) -> crate::Stage {
        crate::Stage::Limit
    }

    /// Decides without waiting: no future per request.
    fn request_now(&self, call: &mut RequestCall<'_>) -> Option<Decision> {
        Some(self.admit(call))
    }
}

impl Factory for ConcurrencyLimit {
    const NAME: &'static str = "concurrency_limit";
    const SUMMARY: &'static str =
        "Limit requests in flight per route or per consumer; over it: 503 with Retry-After";
    type Settings = ConcurrencySettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc::answers([crate::ApiAnswer::new(
            503,
            "Too many requests in flight (`overloaded`).",
            &["Retry-After"],
        )])
    }

    fn build(s: ConcurrencySettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(ConcurrencyLimit::new(s, cx)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{PluginCtx, RequestInfo, Shared};
    use pingora_http::RequestHeader;

    fn limit(settings: serde_json::Value) -> ConcurrencyLimit {
        let shared = Shared::dry();
        let cx = BuildCtx {
            shared: &shared,
            base_dir: std::path::Path::new("."),
            route: Some("r"),
        };
        ConcurrencyLimit::new(crate::parse_settings(&settings).unwrap(), &cx).unwrap()
    }

    /// The request phase's answer for a request from 10.0.0.1 with `ctx`: 200 when it
    /// goes on.
    async fn status(p: &ConcurrencyLimit, ctx: &mut PluginCtx) -> u16 {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        let info = RequestInfo {
            client_ip: "10.0.0.1".parse().ok(),
            ..RequestInfo::new("r", "/")
        };
        match p
            .on_request(&mut RequestCall::new(&mut req, info, ctx))
            .await
            .unwrap()
        {
            Flow::Continue => 200,
            Flow::Respond(r) => r.status,
        }
    }

    #[tokio::test]
    async fn permits_are_released_with_the_context() {
        let p = limit(serde_json::json!({"max": 2}));
        let mut a = PluginCtx::default();
        let mut b = PluginCtx::default();
        let mut c = PluginCtx::default();
        assert_eq!(status(&p, &mut a).await, 200);
        assert_eq!(status(&p, &mut b).await, 200);
        assert_eq!(status(&p, &mut c).await, 503);
        assert_eq!(p.scope.current("all"), 2);
        drop(a);
        assert_eq!(p.scope.current("all"), 1);
        let mut d = PluginCtx::default();
        assert_eq!(status(&p, &mut d).await, 200);
        drop(b);
        drop(d);
        assert_eq!(p.scope.current("all"), 0);
    }

    #[tokio::test]
    async fn per_consumer_slots() {
        let p = limit(serde_json::json!({"max": 1, "key": "consumer"}));
        let who = |name: Option<&str>| PluginCtx {
            identity: name.map(|n| crate::Identity::new(n, crate::CredentialKind::ApiKey)),
            ..Default::default()
        };
        let (mut a1, mut a2, mut b, mut anon) =
            (who(Some("a")), who(Some("a")), who(Some("b")), who(None));
        assert_eq!(status(&p, &mut a1).await, 200);
        assert_eq!(status(&p, &mut a2).await, 503);
        assert_eq!(status(&p, &mut b).await, 200);
        assert_eq!(status(&p, &mut anon).await, 200);
        assert_eq!(p.scope.current("ip:10.0.0.1"), 1);
        drop(a1);
        assert_eq!(p.scope.current("c:a"), 0);
    }
}
