//! The store: stored answers in a bounded moka cache (weighed in bytes, LRU eviction,
//! each entry expiring when its freshness and stale window are over), the `Vary`
//! names of each URI, and the fill locks that make concurrent misses of one key wait
//! for a single upstream request.
//!
//! A URI without `Vary` keeps its answer under its primary key (method, scheme, host,
//! path, query). A URI whose answer varies keeps a [`Slot::Variants`] there (the
//! header names and a generation) and each answer under the primary key plus the
//! generation and the values of those headers; invalidating the primary key thus makes
//! every variant unreachable at once.

use super::control::Lifetime;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use moka::Expiry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Where an entry came from, for purges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub route: String,
    pub host: String,
    pub path: String,
}

/// A stored answer.
#[derive(Debug)]
pub struct Entry {
    pub status: u16,
    /// End-to-end headers as the upstream sent them, less `Content-Type` (below),
    /// `Content-Length`, `Age` and hop-by-hop fields.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
    pub stored_at: Instant,
    pub lifetime: Lifetime,
    pub origin: Origin,
}

impl Entry {
    /// Its age now (RFC 9111 4.2.3: the age at arrival plus the time since).
    pub fn age(&self) -> Duration {
        self.lifetime.initial_age + self.stored_at.elapsed()
    }

    /// Whole seconds of freshness left, rounded down: negative once stale.
    pub fn ttl(&self) -> i64 {
        let left = self.lifetime.fresh.as_millis() as i64 - self.age().as_millis() as i64;
        left.div_euclid(1000)
    }

    pub fn is_fresh(&self) -> bool {
        self.age() < self.lifetime.fresh
    }

    /// Stale, but within its `stale-while-revalidate` window.
    pub fn may_serve_stale(&self) -> bool {
        self.age() < self.lifetime.fresh + self.lifetime.stale_while_revalidate
    }

    fn weight(&self, key: &str) -> u32 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        let total = key.len() + self.body.len() + headers + 128;
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

/// What a key holds.
#[derive(Debug, Clone)]
pub enum Slot {
    Answer(Arc<Entry>),
    Variants(Arc<Variants>),
}

/// The `Vary` names of a URI's answers, and the generation their keys carry.
#[derive(Debug)]
pub struct Variants {
    pub names: Vec<HeaderName>,
    pub generation: u64,
    pub keep_for: Duration,
    pub origin: Origin,
}

impl Slot {
    fn origin(&self) -> &Origin {
        match self {
            Slot::Answer(e) => &e.origin,
            Slot::Variants(v) => &v.origin,
        }
    }
}

/// Each entry lives for its freshness plus stale window.
struct Lifetimes;

impl Expiry<Arc<str>, Slot> for Lifetimes {
    fn expire_after_create(&self, _k: &Arc<str>, v: &Slot, _at: Instant) -> Option<Duration> {
        Some(match v {
            Slot::Answer(e) => e.lifetime.keep_for(),
            Slot::Variants(v) => v.keep_for,
        })
    }

    fn expire_after_update(
        &self,
        k: &Arc<str>,
        v: &Slot,
        at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(k, v, at)
    }
}

/// Which entries a purge removes (every field given must match).
#[derive(Debug, Default, Clone)]
pub struct Purge {
    pub route: Option<String>,
    pub host: Option<String>,
    pub path_prefix: Option<String>,
}

impl Purge {
    fn matches(&self, o: &Origin) -> bool {
        self.route.as_ref().is_none_or(|r| *r == o.route)
            && self
                .host
                .as_ref()
                .is_none_or(|h| h.eq_ignore_ascii_case(&o.host))
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|p| o.path.starts_with(p.as_str()))
    }
}

/// One cache: the entries of one configuration of the plugin (route and settings).
pub struct Store {
    entries: Cache<Arc<str>, Slot>,
    max_size: u64,
    locks: Mutex<HashMap<Arc<str>, watch::Receiver<()>>>,
    generations: AtomicU64,
}

/// The outcome of claiming a key's fill lock.
pub enum Claim {
    /// This request fills the key; waiters are released when the guard drops.
    Filler(FillGuard),
    /// Another request fills it: wait for this to change (or close).
    Wait(watch::Receiver<()>),
}

/// Held by the request that fills a key; dropping it (stored, refused or the request
/// gone) releases the waiters.
pub struct FillGuard {
    store: Arc<Store>,
    key: Arc<str>,
    _done: watch::Sender<()>,
}

impl Drop for FillGuard {
    fn drop(&mut self) {
        // removed before the sender drops, so a waiter that found it is woken
        let mut locks = self.store.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.remove(&self.key);
    }
}

impl Store {
    pub fn new(max_size: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(max_size)
            .weigher(|k: &Arc<str>, v: &Slot| match v {
                Slot::Answer(e) => e.weight(k),
                Slot::Variants(_) => u32::try_from(k.len() + 160).unwrap_or(u32::MAX),
            })
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(Lifetimes)
            .build();
        Self {
            entries,
            max_size,
            locks: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(1),
        }
    }

    pub fn get(&self, key: &str) -> Option<Slot> {
        self.entries.get(key)
    }

    pub fn insert(&self, key: Arc<str>, slot: Slot) {
        self.entries.insert(key, slot);
    }

    /// The variants slot for a URI whose answers vary on `names`, stored again so
    /// that it lives as long as its newest variant; a change of names starts a new
    /// generation (the old variants are unreachable from then on).
    pub fn variants(
        &self,
        primary: &str,
        names: Vec<HeaderName>,
        keep_for: Duration,
        origin: Origin,
    ) -> Arc<Variants> {
        // the same names keep their generation (and so the other variants)
        let (generation, keep_for) = match self.entries.get(primary) {
            Some(Slot::Variants(v)) if v.names == names => (v.generation, v.keep_for.max(keep_for)),
            _ => (self.generations.fetch_add(1, Ordering::Relaxed), keep_for),
        };
        let v = Arc::new(Variants {
            names,
            generation,
            keep_for,
            origin,
        });
        self.entries
            .insert(Arc::from(primary), Slot::Variants(v.clone()));
        v
    }

    /// Removes a URI's answer and variants (an unsafe method succeeded on it).
    pub fn invalidate(&self, primary: &str) {
        self.entries.invalidate(primary);
    }

    /// Claims the fill lock of `key`.
    pub fn claim(self: &Arc<Self>, key: &str) -> Claim {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = locks.get(key) {
            return Claim::Wait(rx.clone());
        }
        let (tx, rx) = watch::channel(());
        let key: Arc<str> = Arc::from(key);
        locks.insert(key.clone(), rx);
        Claim::Filler(FillGuard {
            store: self.clone(),
            key,
            _done: tx,
        })
    }

    /// Removes the entries `p` selects; returns how many.
    pub fn purge(&self, p: &Purge) -> u64 {
        let mut n = 0;
        for (k, slot) in self.entries.iter() {
            if p.matches(slot.origin()) {
                self.entries.invalidate(&*k);
                if matches!(slot, Slot::Answer(_)) {
                    n += 1;
                }
            }
        }
        self.entries.run_pending_tasks();
        n
    }

    /// Entries and bytes now (pending evictions done first), and the bound.
    pub fn stats(&self) -> serde_json::Value {
        self.entries.run_pending_tasks();
        serde_json::json!({
            "entries": self.entries.entry_count(),
            "bytes": self.entries.weighted_size(),
            "max_size": self.max_size,
        })
    }
}

/// Every store of the process by configuration, for the admin actions.
#[derive(Default)]
pub struct Stores {
    by_config: Mutex<HashMap<String, Arc<Store>>>,
}

impl Stores {
    /// The store of a configuration, made the first time (kept across reloads).
    pub fn get_or_make(&self, config: &str, max_size: u64) -> Arc<Store> {
        let mut m = self.by_config.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(config.to_string())
            .or_insert_with(|| Arc::new(Store::new(max_size)))
            .clone()
    }

    pub fn purge(&self, p: &Purge) -> u64 {
        self.all().iter().map(|s| s.purge(p)).sum()
    }

    pub fn stats(&self) -> serde_json::Value {
        let m = self.by_config.lock().unwrap_or_else(|e| e.into_inner());
        let mut caches: Vec<_> = m.iter().collect();
        caches.sort_by(|a, b| a.0.cmp(b.0));
        let caches: Vec<_> = caches
            .into_iter()
            .map(|(config, s)| {
                let mut v = s.stats();
                v["config"] = serde_json::Value::String(config.clone());
                v
            })
            .collect();
        serde_json::json!({ "caches": caches })
    }

    fn all(&self) -> Vec<Arc<Store>> {
        let m = self.by_config.lock().unwrap_or_else(|e| e.into_inner());
        m.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(route: &str, path: &str, body: usize) -> Slot {
        Slot::Answer(Arc::new(Entry {
            status: 200,
            headers: vec![],
            content_type: None,
            body: Bytes::from(vec![b'x'; body]),
            stored_at: Instant::now(),
            lifetime: Lifetime {
                fresh: Duration::from_secs(60),
                initial_age: Duration::ZERO,
                stale_while_revalidate: Duration::ZERO,
                shared_with_auth: false,
            },
            origin: Origin {
                route: route.into(),
                host: "h".into(),
                path: path.into(),
            },
        }))
    }

    #[test]
    fn size_stays_bounded() {
        let s = Store::new(100_000);
        for i in 0..2000 {
            s.insert(Arc::from(format!("k{i}")), entry("r", "/", 1000));
        }
        s.entries.run_pending_tasks();
        assert!(s.entries.weighted_size() <= 100_000);
        assert!(s.entries.entry_count() > 10);
    }

    #[test]
    fn purge_by_route_and_prefix() {
        let s = Store::new(1 << 20);
        s.insert(Arc::from("a"), entry("r1", "/items/1", 10));
        s.insert(Arc::from("b"), entry("r1", "/other", 10));
        s.insert(Arc::from("c"), entry("r2", "/items/2", 10));
        let p = Purge {
            route: Some("r1".into()),
            path_prefix: Some("/items/".into()),
            ..Default::default()
        };
        assert_eq!(s.purge(&p), 1);
        assert!(s.get("a").is_none() && s.get("b").is_some() && s.get("c").is_some());
        assert_eq!(s.purge(&Purge::default()), 2);
    }

    #[tokio::test]
    async fn one_filler_per_key() {
        let s = Arc::new(Store::new(1 << 20));
        let Claim::Filler(g) = s.claim("k") else {
            panic!("first claim fills")
        };
        let Claim::Wait(mut rx) = s.claim("k") else {
            panic!("second waits")
        };
        assert!(matches!(s.claim("other"), Claim::Filler(_)));
        drop(g);
        assert!(
            rx.changed().await.is_err(),
            "released when the filler is done"
        );
        assert!(matches!(s.claim("k"), Claim::Filler(_)));
    }
}
