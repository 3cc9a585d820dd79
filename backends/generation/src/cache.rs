//! In-memory result cache with a time-to-live and a size bound.
//!
//! Entries expire `ttl` after insertion (expired entries are never returned
//! and are dropped lazily). When the cache holds `capacity` entries, an insert
//! first drops every expired entry, then the oldest one. A zero `ttl` or
//! `capacity` disables the cache (`get` always misses, `insert` does nothing).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A TTL cache safe to share between tasks.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// A cache keeping entries for `ttl`, at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// False when the cache was configured off (zero TTL or capacity).
    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// The value stored under `key`, if not expired.
    pub fn get(&self, key: &K) -> Option<V> {
        self.get_at(key, Instant::now())
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn insert(&self, key: K, value: V) {
        self.insert_at(key, value, Instant::now());
    }

    /// Number of entries held, expired ones included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_at(&self, key: &K, now: Instant) -> Option<V> {
        if !self.is_enabled() {
            return None;
        }
        let mut entries = self.lock();
        match entries.get(key) {
            Some((stored, value)) if now.duration_since(*stored) < self.ttl => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert_at(&self, key: K, value: V, now: Instant) {
        if !self.is_enabled() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| now.duration_since(*stored) < ttl);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (stored, _))| *stored)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, (now, value));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_until_expiry() {
        let cache = TtlCache::new(Duration::from_secs(10), 10);
        let t0 = Instant::now();
        cache.insert_at("k", 1, t0);
        assert_eq!(cache.get_at(&"k", t0 + Duration::from_secs(9)), Some(1));
        assert_eq!(cache.get_at(&"k", t0 + Duration::from_secs(10)), None);
        assert!(cache.is_empty(), "expired entry is dropped on read");
    }

    #[test]
    fn evicts_oldest_when_full() {
        let cache = TtlCache::new(Duration::from_secs(100), 2);
        let t0 = Instant::now();
        cache.insert_at("a", 1, t0);
        cache.insert_at("b", 2, t0 + Duration::from_secs(1));
        cache.insert_at("c", 3, t0 + Duration::from_secs(2));
        let now = t0 + Duration::from_secs(3);
        assert_eq!(cache.get_at(&"a", now), None);
        assert_eq!(cache.get_at(&"b", now), Some(2));
        assert_eq!(cache.get_at(&"c", now), Some(3));
    }

    #[test]
    fn zero_ttl_disables() {
        let cache = TtlCache::new(Duration::ZERO, 10);
        cache.insert("k", 1);
        assert!(!cache.is_enabled());
        assert_eq!(cache.get(&"k"), None);
        assert!(cache.is_empty());
    }
}
