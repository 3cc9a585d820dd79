//! The Redis result cache, on when `REDIS_URL` is set.
//!
//! Key: `enrichment:v1:<sha256 hex>` of the request's content (the document as
//! received: `text`, `id`, `title`, `metadata` and any unknown field) and of
//! the settings that shape the answer (`DATA_VALIDATION_STRICT`,
//! `ENRICHMENT_KEYWORDS`, `EXTERNAL_API_URL`). Value: the enriched document as
//! JSON, kept `CACHE_TTL_SECONDS` (default 3600; `0` turns the cache off).
//! Degraded results (the external source failed) are not stored.
//!
//! Fail-open: Redis unreachable, slow (each call is bounded by
//! [`CALL_TIMEOUT`]) or answering garbage never fails a request: the document
//! is computed as without a cache. After a failure Redis is left alone for a
//! second, then tried again by the next request. An outage is logged once
//! (warning) when it starts and once (info) when it ends; every lookup is
//! counted in `enrichment_cache_lookups_total{result="hit"|"miss"|"error"}`
//! and every failed write in `enrichment_cache_store_errors_total`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};

use crate::document::{DocumentIn, EnrichedDocument};
use crate::metrics::CacheMetrics;
use crate::SERVICE;

/// Longest wait for one Redis call before computing without the cache.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis is left alone after a failure.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Prefix of every key.
pub const KEY_PREFIX: &str = "enrichment:v1:";

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The stored document.
    Hit(Box<EnrichedDocument>),
    /// Nothing stored under the key.
    Miss,
    /// Redis failed or was skipped after a recent failure.
    Error,
}

/// Why the cache cannot be configured.
#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL: {0}")]
pub struct CacheConfigError(#[from] redis_connect::ConnectError);

/// The Redis cache; cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct RedisCache {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: OnceLock<ConnectionManager>,
    ttl: Duration,
    metrics: CacheMetrics,
    started: Instant,
    /// Milliseconds since `started` before which Redis is not tried.
    skip_until_ms: AtomicU64,
    outage: AtomicBool,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the URL may hold a password: never printed
        f.debug_struct("RedisCache")
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Parses the URL; connects on first use.
    pub fn new(url: &str, ttl: Duration, metrics: CacheMetrics) -> Result<Self, CacheConfigError> {
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                client: redis_connect::client_from_env(url)?,
                conn: OnceLock::new(),
                ttl,
                metrics,
                started: Instant::now(),
                skip_until_ms: AtomicU64::new(0),
                outage: AtomicBool::new(false),
            }),
        })
    }

    /// The key of a request under the given settings.
    pub fn key(doc: &DocumentIn, settings: &serde_json::Value) -> String {
        let mut hash = Sha256::new();
        // serde_json writes a given value the same way every time
        hash.update(serde_json::to_vec(&(settings, doc)).unwrap_or_default());
        format!("{KEY_PREFIX}{}", hex::encode(hash.finalize()))
    }

    /// Looks `key` up (and counts the result).
    pub async fn get(&self, key: &str) -> Lookup {
        let lookup = self.lookup(key).await;
        let result = match lookup {
            Lookup::Hit(_) => "hit",
            Lookup::Miss => "miss",
            Lookup::Error => "error",
        };
        self.inner
            .metrics
            .lookups
            .with_label_values(&[result])
            .inc();
        lookup
    }

    async fn lookup(&self, key: &str) -> Lookup {
        if !self.inner.should_try() {
            return Lookup::Error;
        }
        let mut conn = match self.inner.manager() {
            Ok(c) => c,
            Err(e) => {
                self.inner.failed(&e.to_string());
                return Lookup::Error;
            }
        };
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let call = cmd.query_async::<Option<Vec<u8>>>(&mut conn);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(None)) => {
                self.inner.succeeded();
                Lookup::Miss
            }
            Ok(Ok(Some(bytes))) => {
                self.inner.succeeded();
                match serde_json::from_slice::<EnrichedDocument>(&bytes) {
                    Ok(doc) => Lookup::Hit(Box::new(doc)),
                    // another version's or a damaged entry: recompute (and overwrite)
                    Err(_) => Lookup::Miss,
                }
            }
            Ok(Err(e)) => {
                self.inner.failed(&e.to_string());
                Lookup::Error
            }
            Err(_) => {
                self.inner.failed("timed out");
                Lookup::Error
            }
        }
    }

    /// Stores `doc` under `key` for the TTL; false (and counted) when Redis
    /// failed.
    pub async fn put(&self, key: &str, doc: &EnrichedDocument) -> bool {
        let stored = self.store(key, doc).await;
        if !stored {
            self.inner.metrics.store_errors.inc();
        }
        stored
    }

    async fn store(&self, key: &str, doc: &EnrichedDocument) -> bool {
        if !self.inner.should_try() {
            return false;
        }
        let Ok(body) = serde_json::to_vec(doc) else {
            return false;
        };
        let mut conn = match self.inner.manager() {
            Ok(c) => c,
            Err(e) => {
                self.inner.failed(&e.to_string());
                return false;
            }
        };
        let ttl = self.inner.ttl.as_secs().max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(body).arg("EX").arg(ttl);
        let call = cmd.query_async::<()>(&mut conn);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(())) => {
                self.inner.succeeded();
                true
            }
            Ok(Err(e)) => {
                self.inner.failed(&e.to_string());
                false
            }
            Err(_) => {
                self.inner.failed("timed out");
                false
            }
        }
    }
}

impl Inner {
    fn manager(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(c) = self.conn.get() {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let m = ConnectionManager::new_lazy_with_config(self.client.clone(), cfg)?;
        Ok(self.conn.get_or_init(|| m).clone())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Not during [`RETRY_AFTER`] after a failure.
    fn should_try(&self) -> bool {
        let skip = self.skip_until_ms.load(Ordering::Acquire);
        skip == 0 || self.now_ms() >= skip
    }

    fn failed(&self, error: &str) {
        let retry = u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(1000);
        self.skip_until_ms
            .store(self.now_ms() + retry, Ordering::Release);
        if !self.outage.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                service = SERVICE,
                operation = "cache",
                error,
                "Redis cache unavailable: documents are computed without it until it answers again"
            );
        }
    }

    fn succeeded(&self) {
        if self.skip_until_ms.load(Ordering::Relaxed) != 0 {
            self.skip_until_ms.store(0, Ordering::Release);
        }
        if self.outage.load(Ordering::Relaxed) && self.outage.swap(false, Ordering::AcqRel) {
            tracing::info!(
                service = SERVICE,
                operation = "cache",
                "Redis cache available again"
            );
        }
    }
}
