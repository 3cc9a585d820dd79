//! Application state, router and server of api-enrichment.
//!
//! Endpoints (all on `PORT`):
//! - `POST /enrich`: see [`crate::document`] and [`crate::enrich`];
//! - `GET /health`: liveness, 200 while the process serves;
//! - `GET /ready`: readiness, always 200 once listening (the external source
//!   is optional and its failures only degrade results);
//! - `GET /metrics`: Prometheus text format.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus::Registry;
use serde_json::json;
use tokio::net::TcpListener;

use crate::cache::{CacheConfigError, RedisCache};
use crate::config::Config;
use crate::document::{DocumentIn, EnrichedDocument};
use crate::enrich::Enricher;
use crate::error::ApiError;
use crate::external::ExternalSource;
use crate::json::ValidJson;
use crate::metrics::EnrichmentMetrics;
use crate::telemetry::HttpObserver;
use crate::workers::{Workers, WorkersError};
use crate::SERVICE;

/// Why the service cannot start.
#[derive(Debug)]
pub enum StartupError {
    /// The external source's HTTP client cannot be built.
    Client(reqwest::Error),
    /// A metric cannot be registered.
    Metrics(prometheus::Error),
    /// The analysis threads cannot start.
    Workers(WorkersError),
    /// `REDIS_URL` is not a Redis URL, or a TLS file of a `rediss://` URL is unusable.
    Cache(CacheConfigError),
    /// The server failed.
    Io(std::io::Error),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(e) => write!(f, "cannot build the external source client: {e}"),
            Self::Metrics(e) => write!(f, "cannot register metrics: {e}"),
            Self::Workers(e) => write!(f, "{e}"),
            Self::Cache(e) => write!(f, "{e}"),
            Self::Io(e) => write!(f, "server error: {e}"),
        }
    }
}

impl std::error::Error for StartupError {}

/// Shared state of the handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    enricher: Enricher,
    metrics: EnrichmentMetrics,
}

impl AppState {
    /// Builds the state from the configuration.
    pub fn new(config: &Config, registry: &Registry) -> Result<Self, StartupError> {
        let external = config
            .external_url
            .clone()
            .map(|url| ExternalSource::new(url, config.external_timeout))
            .transpose()
            .map_err(StartupError::Client)?;
        let metrics = EnrichmentMetrics::new(registry).map_err(StartupError::Metrics)?;
        let workers = Workers::new(config.workers).map_err(StartupError::Workers)?;
        let cache = config
            .redis_url
            .as_deref()
            .filter(|_| !config.cache_ttl.is_zero())
            .map(|url| RedisCache::new(url, config.cache_ttl, metrics.cache.clone()))
            .transpose()
            .map_err(StartupError::Cache)?;
        Ok(Self {
            inner: Arc::new(Shared {
                enricher: Enricher {
                    strict: config.strict,
                    keyword_limit: config.keyword_limit,
                    external,
                    workers,
                    cache,
                },
                metrics,
            }),
        })
    }
}

/// The complete router, with metrics in a fresh registry.
pub fn router(config: &Config) -> Result<Router, StartupError> {
    let registry = Registry::new();
    let observer = HttpObserver::new(SERVICE, &registry).map_err(StartupError::Metrics)?;
    let state = AppState::new(config, &registry)?;
    tracing::info!(
        service = SERVICE,
        operation = "startup",
        strict = config.strict,
        external_source = config.external_url.as_deref().unwrap_or("disabled"),
        workers = state.inner.enricher.workers.threads(),
        cache = if state.inner.enricher.cache.is_some() {
            "redis"
        } else {
            "off"
        },
        sentiment_lexicon = crate::sentiment::lexicon_size(),
        gazetteer = crate::entities::gazetteer_size(),
        "enrichment configured"
    );
    let routes = Router::new()
        .route("/enrich", post(enrich))
        .route("/ready", get(ready))
        .with_state(state);
    Ok(crate::http::finish_service(
        SERVICE,
        routes,
        registry,
        observer,
        config.body_limit,
    ))
}

/// Builds the router and serves it on `listener` until `shutdown` completes,
/// then waits for in-flight requests.
pub async fn serve<F>(
    listener: TcpListener,
    config: Config,
    shutdown: F,
) -> Result<(), StartupError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let router = router(&config)?;
    crate::http::serve(listener, router, shutdown)
        .await
        .map_err(StartupError::Io)
}

async fn enrich(
    State(state): State<AppState>,
    ValidJson(doc): ValidJson<DocumentIn>,
) -> Result<Json<EnrichedDocument>, ApiError> {
    let enriched = state.inner.enricher.enrich(doc).await?;
    state.inner.metrics.record(&enriched);
    if enriched.degraded {
        tracing::warn!(
            service = SERVICE,
            operation = "enrich",
            id = enriched.id.as_deref().unwrap_or(""),
            "enrichment degraded: a source failed"
        );
    }
    Ok(Json(enriched))
}

async fn ready(State(state): State<AppState>) -> Json<serde_json::Value> {
    let enricher = &state.inner.enricher;
    Json(json!({
        "status": "ready",
        "service": SERVICE,
        "strict": enricher.strict,
        "external_source": enricher.external.as_ref().map(ExternalSource::url),
        "workers": enricher.workers.threads(),
        "cache": if enricher.cache.is_some() { "redis" } else { "off" },
    }))
}
