//! Application state, router and server of api-generation.
//!
//! Endpoints (all on `PORT`):
//! - `POST /generate`: see [`crate::api`];
//! - `GET /health`: liveness, 200 while the process serves;
//! - `GET /ready`: readiness, 200 `{"status":"ready","model",...}` once the
//!   model is trained (the server only listens after that);
//! - `GET /metrics`: Prometheus text format.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus::Registry;
use serde_json::json;
use tokio::net::TcpListener;

use crate::api::{self, CacheKey};
use crate::cache::TtlCache;
use crate::config::Config;
use crate::metrics::GenerationMetrics;
use crate::model::{Generation, NgramModel, TrainError};
use crate::queue::PriorityGate;
use crate::telemetry::HttpObserver;
use crate::SERVICE;

/// The corpus trained on when `GENERATION_MODEL_PATH` is unset: Aesop's
/// fables in George Fyler Townsend's translation (1867, public domain).
pub const EMBEDDED_CORPUS: &str = include_str!("../corpus/aesop.txt");
/// Name of the model trained from [`EMBEDDED_CORPUS`].
pub const EMBEDDED_MODEL_NAME: &str = "trigram-aesop";

/// Why the service cannot start.
#[derive(Debug)]
pub enum StartupError {
    /// The corpus file cannot be read.
    Corpus(String, std::io::Error),
    /// The corpus cannot be trained on.
    Train(TrainError),
    /// A metric cannot be registered.
    Metrics(prometheus::Error),
    /// The server failed.
    Io(std::io::Error),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Corpus(path, e) => write!(f, "cannot read GENERATION_MODEL_PATH={path}: {e}"),
            Self::Train(e) => write!(f, "cannot train the model: {e}"),
            Self::Metrics(e) => write!(f, "cannot register metrics: {e}"),
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
    model: NgramModel,
    cache: TtlCache<CacheKey, Generation>,
    gate: PriorityGate,
    metrics: GenerationMetrics,
    registry: Registry,
}

impl AppState {
    /// Builds the state around a trained model.
    pub fn new(
        config: &Config,
        model: NgramModel,
        registry: Registry,
    ) -> Result<Self, StartupError> {
        let metrics = GenerationMetrics::new(&registry).map_err(StartupError::Metrics)?;
        let gate = PriorityGate::new(
            config.max_concurrent,
            config.max_queue,
            metrics.queue.clone(),
        );
        Ok(Self {
            inner: Arc::new(Shared {
                model,
                cache: TtlCache::new(config.cache_ttl, config.cache_capacity),
                gate,
                metrics,
                registry,
            }),
        })
    }

    /// The trained model.
    pub fn model(&self) -> &NgramModel {
        &self.inner.model
    }

    /// The result cache.
    pub fn cache(&self) -> &TtlCache<CacheKey, Generation> {
        &self.inner.cache
    }

    /// The admission gate.
    pub fn gate(&self) -> &PriorityGate {
        &self.inner.gate
    }

    /// The service's collectors.
    pub fn metrics(&self) -> &GenerationMetrics {
        &self.inner.metrics
    }
}

/// Trains the model from `config.model_path`, or from the embedded corpus.
/// The model is named `trigram-<file stem>` (`trigram-aesop` when embedded).
pub fn load_model(config: &Config) -> Result<NgramModel, StartupError> {
    match &config.model_path {
        None => {
            NgramModel::train(EMBEDDED_MODEL_NAME, EMBEDDED_CORPUS).map_err(StartupError::Train)
        }
        Some(path) => {
            let corpus = std::fs::read_to_string(path)
                .map_err(|e| StartupError::Corpus(path.display().to_string(), e))?;
            let stem = Path::new(path)
                .file_stem()
                .map_or_else(|| "custom".into(), |s| s.to_string_lossy());
            NgramModel::train(format!("trigram-{stem}"), &corpus).map_err(StartupError::Train)
        }
    }
}

/// The complete router (model trained, metrics registered in a fresh registry).
pub fn router(config: &Config) -> Result<Router, StartupError> {
    let registry = Registry::new();
    let observer = HttpObserver::new(SERVICE, &registry).map_err(StartupError::Metrics)?;
    let state = AppState::new(config, load_model(config)?, registry)?;
    tracing::info!(
        service = SERVICE,
        operation = "load_model",
        model = state.model().name(),
        vocabulary = state.model().vocabulary_size(),
        corpus_tokens = state.model().corpus_tokens(),
        "model trained"
    );
    let routes = Router::new()
        .route("/generate", post(api::generate))
        .route("/health", get(|| async { crate::http::health(SERVICE) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state);
    Ok(crate::http::finish(
        routes,
        Arc::new(observer),
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
    }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    crate::http::metrics(&state.inner.registry).into_response()
}
