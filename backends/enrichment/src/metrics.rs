//! Prometheus collectors of the enrichment service.
//!
//! - `enrichment_requests_total{outcome}`: documents enriched; `outcome` is
//!   `ok` or `degraded` (a source failed). Refused documents are counted by
//!   `api_errors_total{service,error_type}`.
//! - `enrichment_duration_seconds`: time to enrich a document.
//! - `enrichment_sources_total{source,status}`: analyses by source and
//!   status (`ok`, `skipped`, `failed`).
//! - `enrichment_cache_lookups_total{result}`: Redis cache lookups (only with
//!   `REDIS_URL`); `result` is `hit`, `miss` or `error` (Redis unreachable,
//!   slow or skipped after a failure: the document was computed).
//! - `enrichment_cache_store_errors_total`: results that could not be stored.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use crate::document::{EnrichedDocument, SourceStatus};

/// All collectors of the service.
#[derive(Clone)]
pub struct EnrichmentMetrics {
    requests: IntCounterVec,
    duration: Histogram,
    sources: IntCounterVec,
    /// The cache's collectors, handed to the cache.
    pub cache: CacheMetrics,
}

/// Collectors of the Redis cache.
#[derive(Clone)]
pub struct CacheMetrics {
    /// `enrichment_cache_lookups_total{result}`.
    pub lookups: IntCounterVec,
    /// `enrichment_cache_store_errors_total`.
    pub store_errors: IntCounter,
}

impl EnrichmentMetrics {
    /// Creates every collector and registers it in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new("enrichment_requests_total", "Documents enriched"),
            &["outcome"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new("enrichment_duration_seconds", "Time to enrich a document").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ],
            ),
        )?;
        let sources = IntCounterVec::new(
            Opts::new(
                "enrichment_sources_total",
                "Analyses run, by source and status",
            ),
            &["source", "status"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(sources.clone()))?;
        let lookups = IntCounterVec::new(
            Opts::new(
                "enrichment_cache_lookups_total",
                "Redis cache lookups, by result (hit, miss, error)",
            ),
            &["result"],
        )?;
        let store_errors = IntCounter::new(
            "enrichment_cache_store_errors_total",
            "Enriched documents that could not be stored in the Redis cache",
        )?;
        registry.register(Box::new(lookups.clone()))?;
        registry.register(Box::new(store_errors.clone()))?;
        Ok(Self {
            requests,
            duration,
            sources,
            cache: CacheMetrics {
                lookups,
                store_errors,
            },
        })
    }

    /// Records one enriched document.
    pub fn record(&self, doc: &EnrichedDocument) {
        let outcome = if doc.degraded { "degraded" } else { "ok" };
        self.requests.with_label_values(&[outcome]).inc();
        self.duration.observe(doc.duration_ms / 1000.0);
        for source in &doc.sources {
            let status = match source.status {
                SourceStatus::Ok => "ok",
                SourceStatus::Skipped => "skipped",
                SourceStatus::Failed => "failed",
            };
            self.sources
                .with_label_values(&[source.name.as_str(), status])
                .inc();
        }
    }
}
