//! The result cache: a [`moka`] cache with a time-to-live and a size bound.
//!
//! Entries expire `ttl` after insertion (`CACHE_TTL_SECONDS`); at most
//! `capacity` entries are kept (`GENERATION_CACHE_CAPACITY`), moka evicting
//! the least useful ones (TinyLFU) beyond. A zero `ttl` or `capacity`
//! disables the cache: `get` always misses and `insert` does nothing.

use std::hash::Hash;
use std::time::Duration;

/// Longest accepted time-to-live (moka refuses more than 1000 years; ten
/// years is far beyond any useful cache lifetime).
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A TTL cache safe to share between tasks; clones share the entries.
#[derive(Clone)]
pub struct ResultCache<K, V> {
    inner: Option<moka::future::Cache<K, V>>,
}

impl<K, V> ResultCache<K, V>
where
    K: Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache keeping entries for `ttl` (at most [`MAX_TTL`]), at most
    /// `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let enabled = !ttl.is_zero() && capacity > 0;
        Self {
            inner: enabled.then(|| {
                moka::future::Cache::builder()
                    .max_capacity(u64::try_from(capacity).unwrap_or(u64::MAX))
                    .time_to_live(ttl.min(MAX_TTL))
                    .build()
            }),
        }
    }

    /// False when the cache was configured off (zero TTL or capacity).
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The value stored under `key`, if not expired.
    pub async fn get(&self, key: &K) -> Option<V> {
        self.inner.as_ref()?.get(key).await
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub async fn insert(&self, key: K, value: V) {
        if let Some(cache) = &self.inner {
            cache.insert(key, value).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hit_until_expiry() {
        let cache = ResultCache::new(Duration::from_millis(300), 10);
        cache.insert("k", 1).await;
        assert_eq!(cache.get(&"k").await, Some(1));
        assert_eq!(cache.get(&"other").await, None);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(cache.get(&"k").await, None, "expired");
    }

    #[tokio::test]
    async fn zero_ttl_or_capacity_disables() {
        for cache in [
            ResultCache::new(Duration::ZERO, 10),
            ResultCache::new(Duration::from_secs(10), 0),
        ] {
            cache.insert("k", 1).await;
            assert!(!cache.is_enabled());
            assert_eq!(cache.get(&"k").await, None);
        }
    }

    #[tokio::test]
    async fn huge_ttl_is_capped_not_a_panic() {
        let cache = ResultCache::new(Duration::from_secs(u64::MAX), 10);
        cache.insert("k", 1).await;
        assert_eq!(cache.get(&"k").await, Some(1));
    }
}
