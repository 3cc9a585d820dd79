//! Keys fetched from a JWKS URL, kept in [`crate::Shared`] (by URL) so that they
//! survive reloads: fetched at start, refreshed in the background, refetched on an
//! unknown `kid` at most once per interval. A failed fetch keeps the keys already held
//! (fail-open on refresh); with no key ever fetched, a token is refused with 503.
//!
//! The background refresher is a thread of its own (with a small runtime), started
//! only by a live build: a dry build (`check`, validation) opens nothing.

use super::keys::{parse_jwks, JwksError, Key};
use crate::PluginMetrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Time allowed for one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The keys of one JWKS URL.
pub struct JwksCache {
    url: String,
    keys: RwLock<Arc<Vec<Key>>>,
    /// Whether one fetch has succeeded.
    loaded: AtomicBool,
    /// When the last fetch caused by an unknown `kid` started (rate limit).
    last_refetch: Mutex<Option<Instant>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    started: AtomicBool,
    client: Option<reqwest::Client>,
    metrics: PluginMetrics,
}

/// What a fetch did.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    Updated(usize),
    Failed,
}

impl JwksCache {
    pub fn new(url: &str, metrics: PluginMetrics) -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| tracing::error!(error = %e, "JWKS fetches disabled: cannot build an HTTP client"))
            .ok();
        Self {
            url: url.to_string(),
            keys: RwLock::new(Arc::new(Vec::new())),
            loaded: AtomicBool::new(false),
            last_refetch: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            started: AtomicBool::new(false),
            client,
            metrics,
        }
    }

    /// The keys held now.
    pub fn keys(&self) -> Arc<Vec<Key>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Starts the background refresher once per URL (live builds only).
    pub fn start(self: &Arc<Self>, every: Duration) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let spawned = crate::spawn_with_runtime("jwks-refresh", "JWKS refresh", move || {
            refresh_loop(weak, every)
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "JWKS refresh disabled: cannot start its thread");
        }
    }

    /// Fetches the document and replaces the keys; on failure the old keys stay.
    pub async fn fetch(&self) -> Fetched {
        let _one = self.fetching.lock().await;
        match self.download().await {
            Ok(keys) => {
                let n = keys.len();
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                self.loaded.store(true, Ordering::Release);
                tracing::debug!(url = %self.url, keys = n, "JWKS fetched");
                Fetched::Updated(n)
            }
            Err(e) => {
                self.metrics
                    .dependency_errors
                    .with_label_values(&["jwt", "jwks"])
                    .inc();
                tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed; keeping the keys held");
                Fetched::Failed
            }
        }
    }

    /// Fetches again because a token named an unknown `kid`, unless a fetch of that
    /// kind happened less than `min_interval` ago. `true`: a fetch was made.
    pub async fn refetch_for_unknown_kid(&self, min_interval: Duration) -> bool {
        {
            let mut last = self.last_refetch.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < min_interval) {
                return false;
            }
            *last = Some(Instant::now());
        }
        self.fetch().await;
        true
    }

    async fn download(&self) -> Result<Vec<Key>, JwksError> {
        let client = self.client.as_ref().ok_or(JwksError::NoClient)?;
        let mut resp = client
            .get(&self.url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(JwksError::Http)?;
        if !resp.status().is_success() {
            return Err(JwksError::Status(resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(JwksError::Http)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let (keys, skipped) = parse_jwks(&body)?;
        for s in skipped {
            tracing::warn!(url = %self.url, key = %s, "JWKS key skipped");
        }
        Ok(keys)
    }
}

async fn refresh_loop(weak: Weak<JwksCache>, every: Duration) {
    loop {
        let Some(cache) = weak.upgrade() else { return };
        // `Shared` and this loop hold it: more holders means a route still uses it
        if Arc::strong_count(&cache) > 2 || !cache.is_loaded() {
            cache.fetch().await;
        }
        let wait = if cache.is_loaded() {
            every
        } else {
            Duration::from_secs(1).min(every)
        };
        drop(cache);
        tokio::time::sleep(wait).await;
    }
}
