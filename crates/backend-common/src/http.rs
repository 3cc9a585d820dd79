//! What every backend router gets: JSON 404/405, the body limit, the
//! observability middleware, the probe and metrics handlers, and serving with
//! graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Extension, Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use serde_json::json;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::json::BodyLimit;
use crate::telemetry::{self, HttpObserver};

/// Default request body limit: 1 MiB (`BODY_LIMIT_BYTES`).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Adds the JSON 404/405 fallbacks, the body limit (413 above `body_limit`
/// bytes) and the access-log/metrics middleware to a finished router.
pub fn finish(router: Router, observer: Arc<HttpObserver>, body_limit: usize) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(Extension(BodyLimit(body_limit)))
        .layer(middleware::from_fn_with_state(observer, telemetry::observe))
}

/// A backend's router: its own `routes` (state applied) and `GET /ready`, plus
/// `GET /health` for `service` and `GET /metrics` with every collector of `registry`,
/// finished as [`finish`] does.
pub fn finish_service(
    service: &'static str,
    routes: Router,
    registry: Registry,
    observer: HttpObserver,
    body_limit: usize,
) -> Router {
    let routes = routes
        .route("/health", get(move || async move { health(service) }))
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move { metrics(&registry) }
            }),
        );
    finish(routes, Arc::new(observer), body_limit)
}

/// Serves `router` on `listener` until `shutdown` completes, then drains
/// in-flight requests before returning.
pub async fn serve<F>(listener: TcpListener, router: Router, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// `GET /health`: liveness, 200 `{"status":"ok","service":...}` while the
/// process serves.
pub fn health(service: &'static str) -> Response {
    Json(json!({ "status": "ok", "service": service })).into_response()
}

/// `GET /metrics`: every collector of `registry` in the Prometheus text format.
pub fn metrics(registry: &Registry) -> Response {
    let encoder = TextEncoder::new();
    let mut buffer = Vec::new();
    match encoder.encode(&registry.gather(), &mut buffer) {
        Ok(()) => {
            let mut response = (StatusCode::OK, buffer).into_response();
            if let Ok(ct) = HeaderValue::from_str(encoder.format_type()) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response
        }
        Err(e) => ApiError::internal(format!("cannot encode metrics: {e}")).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("method not allowed on this endpoint")
}
