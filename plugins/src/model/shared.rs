//! State that outlives a route table: built once at start-up, handed to every build of
//! the plugins, carried across reloads like the upstream `Registry`. Plugins keep their
//! long-lived values here (Redis and HTTP clients, JWKS caches, rate-limit buckets),
//! keyed by what identifies them (a URL, a policy name), so that a reload finds them
//! again instead of starting from zero.
//!
//! A *dry* `Shared` is used by `check` and by validation: plugins built with it must
//! not open a connection, start a task or read anything but their own files.

use super::admin_action::AdminAction;
use prometheus::{IntCounterVec, Opts, Registry};
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::{NoUpstreamCalls, UpstreamCalls};

/// Metrics the plugins count, registered in the gateway's registry.
#[derive(Clone)]
pub struct PluginMetrics {
    /// `gateway_auth_requests_total{method}`: authentication attempts by credential kind.
    pub auth_requests: IntCounterVec,
    /// `gateway_auth_failures_total{reason}`: failed authentications by reason.
    pub auth_failures: IntCounterVec,
    /// `gateway_rate_limit_hits_total{client_id}`: requests refused by a rate limit.
    pub rate_limit_hits: IntCounterVec,
    /// `gateway_plugin_dependency_errors_total{plugin,dependency}`: a store or endpoint
    /// a plugin needs failed (Redis down, JWKS endpoint unreachable...).
    pub dependency_errors: IntCounterVec,
    /// `gateway_tokens_total{route,consumer}`: generation tokens charged by
    /// `token_limit` (consumer: a configured name, else `anonymous`).
    pub tokens: IntCounterVec,
    /// `gateway_mirror_requests_total{route,outcome}`: copies sent by `mirror`, by
    /// outcome (`2xx`..`5xx`, `error`, `timeout`, `no_target`, `dropped`, `too_large`).
    pub mirror_requests: IntCounterVec,
    /// `gateway_cache_requests_total{route,status}`: GET and HEAD requests seen by
    /// `cache`, one status each (`hit`, `stale`, `miss`, `bypass`).
    pub cache_requests: IntCounterVec,
    /// `gateway_cache_stores_total{route,outcome}`: answers `cache` considered storing
    /// (`stored`, `not_cacheable`, `too_large`).
    pub cache_stores: IntCounterVec,
    /// The gateway's registry, for metrics plugins define at run time (wasm filters').
    pub registry: Registry,
}

impl PluginMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        Ok(Self {
            auth_requests: counter(
                "gateway_auth_requests_total",
                "Authentication attempts, by credential kind",
                &["method"],
            )?,
            auth_failures: counter(
                "gateway_auth_failures_total",
                "Failed authentications, by reason",
                &["reason"],
            )?,
            rate_limit_hits: counter(
                "gateway_rate_limit_hits_total",
                "Requests refused by a rate limit, by consumer (`anonymous` when none)",
                &["client_id"],
            )?,
            dependency_errors: counter(
                "gateway_plugin_dependency_errors_total",
                "Failures of a store or endpoint a plugin depends on",
                &["plugin", "dependency"],
            )?,
            tokens: counter(
                "gateway_tokens_total",
                "Generation tokens charged by token_limit, by route and consumer",
                &["route", "consumer"],
            )?,
            mirror_requests: counter(
                "gateway_mirror_requests_total",
                "Request copies sent by mirror, by route and outcome",
                &["route", "outcome"],
            )?,
            cache_requests: counter(
                "gateway_cache_requests_total",
                "Requests seen by the response cache, by route and status (hit, stale, miss, bypass)",
                &["route", "status"],
            )?,
            cache_stores: counter(
                "gateway_cache_stores_total",
                "Answers the response cache considered storing, by route and outcome",
                &["route", "outcome"],
            )?,
            registry: registry.clone(),
        })
    }

    /// Unregistered metrics (dry builds and unit tests).
    pub fn unregistered() -> Self {
        // registering in a throwaway registry cannot clash
        Self::register(&Registry::new()).unwrap_or_else(|_| unreachable!("fresh registry"))
    }
}

/// Looks up an environment variable.
type EnvFn = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Long-lived plugin state; see the module docs.
pub struct Shared {
    dry: bool,
    pub metrics: PluginMetrics,
    env: EnvFn,
    state: Mutex<HashMap<(std::any::TypeId, String), Arc<dyn Any + Send + Sync>>>,
    /// Files plugins read at build (key files, htpasswd): the gateway reloads when one
    /// of them changes, as when routes.yaml does.
    watched: Mutex<BTreeSet<PathBuf>>,
    /// Admin actions by (plugin, action); see [`Shared::register_admin_action`].
    actions: Mutex<BTreeMap<(&'static str, &'static str), AdminAction>>,
    /// The gateway's calls to its pools, installed once by a serving gateway.
    upstream_calls: OnceLock<Arc<dyn UpstreamCalls>>,
}

impl Shared {
    /// The live state of a serving gateway; secrets come from the process environment.
    pub fn live(metrics: PluginMetrics) -> Arc<Self> {
        Arc::new(Self {
            dry: false,
            metrics,
            env: Box::new(|k| std::env::var(k).ok()),
            state: Mutex::new(HashMap::new()),
            watched: Mutex::new(BTreeSet::new()),
            actions: Mutex::new(BTreeMap::new()),
            upstream_calls: OnceLock::new(),
        })
    }

    /// A throwaway state for `check` and validation: plugins open nothing.
    pub fn dry() -> Arc<Self> {
        Arc::new(Self {
            dry: true,
            metrics: PluginMetrics::unregistered(),
            env: Box::new(|k| std::env::var(k).ok()),
            state: Mutex::new(HashMap::new()),
            watched: Mutex::new(BTreeSet::new()),
            actions: Mutex::new(BTreeMap::new()),
            upstream_calls: OnceLock::new(),
        })
    }

    /// A live state whose environment is `env` (tests).
    pub fn with_env(
        dry: bool,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            dry,
            metrics: PluginMetrics::unregistered(),
            env: Box::new(env),
            state: Mutex::new(HashMap::new()),
            watched: Mutex::new(BTreeSet::new()),
            actions: Mutex::new(BTreeMap::new()),
            upstream_calls: OnceLock::new(),
        })
    }

    /// Whether this is a dry build (`check`, validation): open no connection.
    pub fn is_dry(&self) -> bool {
        self.dry
    }

    /// An environment variable (secrets are referenced by name from routes.yaml).
    pub fn env(&self, key: &str) -> Option<String> {
        (self.env)(key).filter(|v| !v.is_empty())
    }

    /// Marks a file a plugin read at build (a key file, an htpasswd file): a change of
    /// its content reloads the route table like a change of routes.yaml does, so an
    /// edit adds or revokes credentials. Ignored by dry builds.
    pub fn watch_file(&self, path: &Path) {
        if !self.dry {
            let mut w = self.watched.lock().unwrap_or_else(|e| e.into_inner());
            w.insert(path.to_path_buf());
        }
    }

    /// The files marked by [`Shared::watch_file`] (every one ever marked).
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let w = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        w.iter().cloned().collect()
    }

    /// Offers `action` of `plugin` on the admin API
    /// (`/admin/plugins/{plugin}/{action}`); a later registration under the same names
    /// replaces it. Ignored by dry builds.
    pub fn register_admin_action(
        &self,
        plugin: &'static str,
        action: &'static str,
        handler: AdminAction,
    ) {
        if !self.dry {
            let mut a = self.actions.lock().unwrap_or_else(|e| e.into_inner());
            a.insert((plugin, action), handler);
        }
    }

    /// The admin action `action` of `plugin`, if one was registered.
    pub fn admin_action(&self, plugin: &str, action: &str) -> Option<AdminAction> {
        let a = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        a.iter()
            .find(|((p, n), _)| *p == plugin && *n == action)
            .map(|(_, h)| h.clone())
    }

    /// Installs the gateway's calls to its pools (once, by a serving gateway; later
    /// calls are ignored). Ignored by dry builds, whose calls always refuse.
    pub fn set_upstream_calls(&self, calls: Arc<dyn UpstreamCalls>) {
        if !self.dry {
            let _ = self.upstream_calls.set(calls);
        }
    }

    /// The calls to the pools of routes.yaml: the gateway's on a serving gateway, calls
    /// that refuse ([`super::UpstreamCallError::Unavailable`]) on a dry build or before
    /// the gateway installed them.
    pub fn upstream_calls(&self) -> Arc<dyn UpstreamCalls> {
        match self.upstream_calls.get() {
            Some(c) => c.clone(),
            None => Arc::new(NoUpstreamCalls),
        }
    }

    /// The value of type `T` under `key`, made by `init` the first time. The same
    /// value is returned for the life of the process, across reloads.
    pub fn state<T: Any + Send + Sync>(&self, key: &str, init: impl FnOnce() -> T) -> Arc<T> {
        let mut map = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let k = (std::any::TypeId::of::<T>(), key.to_string());
        if let Some(v) = map.get(&k) {
            if let Ok(t) = v.clone().downcast::<T>() {
                return t;
            }
        }
        let v = Arc::new(init());
        map.insert(k, v.clone());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_kept_by_type_and_key() {
        let s = Shared::dry();
        let a = s.state("x", || Mutex::new(1u32));
        *a.lock().unwrap() = 5;
        let b = s.state("x", || Mutex::new(0u32));
        assert_eq!(*b.lock().unwrap(), 5);
        let c = s.state("y", || Mutex::new(7u32));
        assert_eq!(*c.lock().unwrap(), 7);
        let d = s.state("x", || 3u64);
        assert_eq!(*d, 3);
    }

    #[test]
    fn watched_files_are_kept_by_live_builds_only() {
        let dry = Shared::dry();
        dry.watch_file(Path::new("/tmp/keys.yaml"));
        assert!(dry.watched_files().is_empty());
        let live = Shared::with_env(false, |_| None);
        live.watch_file(Path::new("/tmp/keys.yaml"));
        live.watch_file(Path::new("/tmp/keys.yaml"));
        assert_eq!(live.watched_files(), [PathBuf::from("/tmp/keys.yaml")]);
    }
}
