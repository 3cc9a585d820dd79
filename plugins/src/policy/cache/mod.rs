//! `cache`: a shared HTTP cache (RFC 9111) in front of a route's upstream. `GET` and
//! `HEAD` answers are kept in memory (bounded by `max_size`, weighed in bytes, LRU
//! eviction) under a key of method, scheme, host, path, query and the request's values
//! of the answer's `Vary` headers, and served while fresh with `Age` and a
//! `Cache-Status` (RFC 9211). Concurrent misses of one key wait for a single upstream
//! request (up to `lock_timeout`). Entries outlive reloads (kept in `Shared` by route
//! and settings) and are purged through the admin API
//! (`POST /admin/plugins/cache/purge`).
//!
//! ```yaml
//! - { name: cache, ttl: 30s, max_size: 64MiB }
//! ```
//!
//! Freshness: see [`control`]. Storing: see [`phases`].

mod control;
mod key;
mod phases;
mod store;

use super::units::{Period, Size};
use crate::{AdminActionError, AdminRequest, BuildCtx, Factory, Plugin, SettingsError, Shared};
use control::Defaults;
use prometheus::IntCounterVec;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use store::{Purge, Store, Stores};

fn default_ttl() -> Period {
    Period(Duration::from_secs(30))
}

fn default_max_size() -> Size {
    Size(64 << 20)
}

fn default_max_entry_size() -> Size {
    Size(1 << 20)
}

fn default_lock_timeout() -> Period {
    Period(Duration::from_secs(5))
}

fn default_status_name() -> String {
    "gateway".into()
}

/// Cache settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Freshness of an answer whose upstream gives none (no `s-maxage`, `max-age` or
    /// `Expires`); default `30s`.
    #[serde(default = "default_ttl")]
    pub ttl: Period,
    /// Memory for stored answers (bodies, headers and keys), default `64MiB`; the least
    /// recently used are evicted beyond it.
    #[serde(default = "default_max_size")]
    pub max_size: Size,
    /// Largest body stored (default `1MiB`); larger answers pass through unstored.
    #[serde(default = "default_max_entry_size")]
    pub max_entry_size: Size,
    /// How long concurrent misses of one key wait for the request filling it before
    /// going upstream themselves (default `5s`).
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout: Period,
    /// How long a stale answer may still be served while one request refills it, when
    /// the upstream's `Cache-Control: stale-while-revalidate` says nothing (default
    /// `0s`: never).
    #[serde(default)]
    pub stale_while_revalidate: Option<Period>,
    /// The cache's name in `Cache-Status` (default `gateway`).
    #[serde(default = "default_status_name")]
    pub status_name: String,
}

pub struct Cache {
    store: Arc<Store>,
    defaults: Defaults,
    max_entry_size: usize,
    lock_timeout: Duration,
    status_name: String,
    requests: IntCounterVec,
    stores: IntCounterVec,
}

/// What `POST /admin/plugins/cache/purge` takes: every field given must match (none:
/// everything).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    route: Option<String>,
    host: Option<String>,
    path_prefix: Option<String>,
}

/// The admin actions: `purge` (POST or DELETE) and `stats` (GET), over every store.
fn register_actions(shared: &Shared, stores: Arc<Stores>) {
    let s = stores.clone();
    shared.register_admin_action(
        Cache::NAME,
        "purge",
        Arc::new(move |r: AdminRequest| {
            if r.method != http::Method::POST && r.method != http::Method::DELETE {
                return Err(AdminActionError::Method("POST or DELETE"));
            }
            let body: PurgeBody = if r.body.is_null() {
                PurgeBody::default()
            } else {
                serde_json::from_value(r.body)
                    .map_err(|e| AdminActionError::BadRequest(e.to_string()))?
            };
            let purged = s.purge(&Purge {
                route: body.route,
                host: body.host,
                path_prefix: body.path_prefix,
            });
            Ok(serde_json::json!({ "purged": purged }))
        }),
    );
    shared.register_admin_action(
        Cache::NAME,
        "stats",
        Arc::new(move |r: AdminRequest| {
            if r.method != http::Method::GET {
                return Err(AdminActionError::Method("GET"));
            }
            Ok(stores.stats())
        }),
    );
}

impl Factory for Cache {
    const NAME: &'static str = "cache";
    const SUMMARY: &'static str =
        "Shared HTTP cache (RFC 9111) of GET/HEAD answers, in memory, with a miss lock";
    type Settings = CacheSettings;

    fn build(s: CacheSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        if s.max_size.0 == 0 {
            return Err(SettingsError::at("max_size", "must be more than 0"));
        }
        if s.max_entry_size.0 > s.max_size.0 {
            return Err(SettingsError::at(
                "max_entry_size",
                "must not be more than max_size",
            ));
        }
        let token = |c: char| c.is_ascii_alphanumeric() || "-_.:/".contains(c);
        if s.status_name.is_empty()
            || !s.status_name.starts_with(|c: char| c.is_ascii_alphabetic())
            || !s.status_name.chars().all(token)
        {
            return Err(SettingsError::at(
                "status_name",
                "a token: a letter, then letters, digits, `-`, `_`, `.`, `:` or `/`",
            ));
        }
        let config = format!("{}|{s:?}", cx.route.unwrap_or("(global)"));
        let store = if cx.shared.is_dry() {
            Arc::new(Store::new(s.max_size.0))
        } else {
            let stores = cx.shared.state::<Stores>("cache", Stores::default);
            register_actions(cx.shared, stores.clone());
            stores.get_or_make(&config, s.max_size.0)
        };
        Ok(Arc::new(Cache {
            store,
            defaults: Defaults {
                ttl: s.ttl.0,
                stale_while_revalidate: s.stale_while_revalidate.map_or(Duration::ZERO, |p| p.0),
            },
            max_entry_size: usize::try_from(s.max_entry_size.0).unwrap_or(usize::MAX),
            lock_timeout: s.lock_timeout.0,
            status_name: s.status_name,
            requests: cx.shared.metrics.cache_requests.clone(),
            stores: cx.shared.metrics.cache_stores.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn build(v: serde_json::Value, shared: &Arc<Shared>) -> Result<(), crate::PluginError> {
        let cx = BuildCtx {
            shared,
            base_dir: std::path::Path::new("."),
            route: Some("r"),
        };
        crate::registry::build("cache", v.as_object().unwrap(), &cx).map(|_| ())
    }

    #[test]
    fn settings_are_checked() {
        let shared = Shared::dry();
        assert!(build(serde_json::json!({"ttl": "30s"}), &shared).is_ok());
        let e = build(
            serde_json::json!({"max_size": "1KiB", "max_entry_size": "1MiB"}),
            &shared,
        );
        assert_eq!(e.unwrap_err().path(), "max_entry_size");
        let e = build(serde_json::json!({"status_name": "a b"}), &shared);
        assert_eq!(e.unwrap_err().path(), "status_name");
        let e = build(serde_json::json!({"ttl": "30"}), &shared);
        assert_eq!(e.unwrap_err().path(), "ttl");
    }

    #[test]
    fn stores_outlive_a_rebuild_and_actions_are_offered() {
        let shared = Shared::with_env(false, |_| None);
        let cfg = serde_json::json!({"ttl": "30s"});
        build(cfg.clone(), &shared).unwrap();
        build(cfg, &shared).unwrap();
        let stores = shared.state::<Stores>("cache", Stores::default);
        assert_eq!(stores.stats()["caches"].as_array().unwrap().len(), 1);
        let purge = shared.admin_action("cache", "purge").unwrap();
        let r = purge(AdminRequest {
            method: http::Method::POST,
            body: serde_json::json!({"route": "r"}),
        });
        assert_eq!(r.unwrap()["purged"], 0);
        let bad = purge(AdminRequest {
            method: http::Method::POST,
            body: serde_json::json!({"nope": 1}),
        });
        assert!(matches!(bad, Err(AdminActionError::BadRequest(_))));
        let stats = shared.admin_action("cache", "stats").unwrap();
        assert!(matches!(
            stats(AdminRequest {
                method: http::Method::POST,
                body: serde_json::Value::Null
            }),
            Err(AdminActionError::Method(_))
        ));
    }
}
