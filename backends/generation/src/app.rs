//! Application state, router and server of api-generation.
//!
//! Endpoints (all on `PORT`):
//! - `POST /generate`: see [`crate::api`];
//! - `GET /health`: liveness, 200 while the process serves;
//! - `GET /ready`: readiness, 200 `{"status":"ready","model",...}` once the
//!   model is loaded or trained (the server only listens after that);
//! - `GET /metrics`: Prometheus text format.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus::Registry;
use serde_json::json;
use tokio::net::TcpListener;

use crate::api::{self, CacheKey};
use crate::cache::ResultCache;
use crate::config::Config;
use crate::metrics::GenerationMetrics;
use crate::model::{Generation, ModelFileError, NgramModel, TrainError};
use crate::pool::{GenerationPool, PoolError};
use crate::queue::PriorityGate;
use crate::telemetry::HttpObserver;
use crate::SERVICE;

/// The corpus trained on when `GENERATION_MODEL_PATH` is unset: Aesop's
/// fables in George Fyler Townsend's translation (1867, public domain).
pub const EMBEDDED_CORPUS: &str = include_str!("../corpus/aesop.txt");
/// Name of the model trained from [`EMBEDDED_CORPUS`].
pub const EMBEDDED_MODEL_NAME: &str = "trigram-aesop";

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The model file (`GENERATION_MODEL_PATH`) cannot be loaded.
    #[error("cannot load GENERATION_MODEL_PATH={0}")]
    Model(ModelFileError),
    /// The corpus cannot be trained on.
    #[error("cannot train the model: {0}")]
    Train(TrainError),
    /// The generation threads cannot start.
    #[error(transparent)]
    Pool(PoolError),
    /// A metric cannot be registered.
    #[error("cannot register metrics: {0}")]
    Metrics(prometheus::Error),
    /// The server failed.
    #[error("server error: {0}")]
    Io(std::io::Error),
}

/// Shared state of the handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    model: Arc<NgramModel>,
    cache: ResultCache<CacheKey, Generation>,
    gate: PriorityGate,
    pool: GenerationPool,
    metrics: GenerationMetrics,
    token_delay: std::time::Duration,
}

impl AppState {
    /// Builds the state around a trained model.
    pub fn new(
        config: &Config,
        model: NgramModel,
        registry: &Registry,
    ) -> Result<Self, StartupError> {
        let metrics = GenerationMetrics::new(registry).map_err(StartupError::Metrics)?;
        let gate = PriorityGate::new(
            config.max_concurrent,
            config.max_queue,
            metrics.queue.clone(),
        );
        let pool = GenerationPool::new(config.workers).map_err(StartupError::Pool)?;
        Ok(Self {
            inner: Arc::new(Shared {
                model: Arc::new(model),
                cache: ResultCache::new(config.cache_ttl, config.cache_capacity),
                gate,
                pool,
                metrics,
                token_delay: config.token_delay,
            }),
        })
    }

    /// The trained model.
    pub fn model(&self) -> &NgramModel {
        &self.inner.model
    }

    /// The trained model, shared (for the generation threads).
    pub fn shared_model(&self) -> Arc<NgramModel> {
        Arc::clone(&self.inner.model)
    }

    /// The result cache.
    pub fn cache(&self) -> &ResultCache<CacheKey, Generation> {
        &self.inner.cache
    }

    /// The generation threads.
    pub fn pool(&self) -> &GenerationPool {
        &self.inner.pool
    }

    /// The admission gate.
    pub fn gate(&self) -> &PriorityGate {
        &self.inner.gate
    }

    /// The service's collectors.
    pub fn metrics(&self) -> &GenerationMetrics {
        &self.inner.metrics
    }

    /// The pause between the events of a token stream.
    pub fn token_delay(&self) -> std::time::Duration {
        self.inner.token_delay
    }
}

/// Loads the model file `config.model_path` (written by `api-generation
/// train`), or trains `trigram-aesop` from the embedded corpus when unset.
pub fn load_model(config: &Config) -> Result<NgramModel, StartupError> {
    match &config.model_path {
        None => {
            NgramModel::train(EMBEDDED_MODEL_NAME, EMBEDDED_CORPUS).map_err(StartupError::Train)
        }
        Some(path) => NgramModel::load(path).map_err(StartupError::Model),
    }
}

/// The complete router (model trained, metrics registered in a fresh registry).
pub fn router(config: &Config) -> Result<Router, StartupError> {
    let registry = Registry::new();
    let observer = HttpObserver::new(SERVICE, &registry).map_err(StartupError::Metrics)?;
    let state = AppState::new(config, load_model(config)?, &registry)?;
    tracing::info!(
        service = SERVICE,
        operation = "load_model",
        model = state.model().name(),
        vocabulary = state.model().vocabulary_size(),
        corpus_tokens = state.model().corpus_tokens(),
        source = config
            .model_path
            .as_deref()
            .map_or_else(|| "embedded corpus".into(), |p| p.display().to_string()),
        workers = state.pool().threads(),
        "model ready"
    );
    let routes = Router::new()
        .route("/generate", post(api::generate))
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

async fn ready(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ready",
        "service": SERVICE,
        "model": state.model().name(),
        "available_slots": state.gate().available(),
        "workers": state.pool().threads(),
    }))
}
