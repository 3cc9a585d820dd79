//! Logs and per-request observability.
//!
//! Logs: one JSON object per line on stdout (tracing-subscriber's JSON format
//! with the event's fields flattened to the top level), level from `LOG_LEVEL`
//! (`error`, `warn`, `info`, `debug`, `trace` or any `EnvFilter` directive;
//! default `info`). Every access-log line carries `timestamp, level, service,
//! operation, method, path, status_code, duration_ms, correlation_id, trace_id,
//! span_id, message`.
//!
//! Metrics recorded per request: `http_requests_total{method,status,route}`,
//! `http_request_duration_seconds{method,route}` and, for error answers,
//! `api_errors_total{service,error_type}`. `route` is the matched route
//! template (`/generate`) or `unmatched`, never the raw path.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tracing_subscriber::EnvFilter;

use crate::error::ErrorKind;

/// Header carrying the request id; kept from the client when well-formed
/// (1 to 128 characters of `[A-Za-z0-9._:-]`), else generated; always echoed.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request, in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Installs the global JSON log subscriber. `LOG_LEVEL` defaults to `info`;
/// an unparsable value falls back to `info` and is reported in the returned
/// warning (logged by the caller once logging works).
pub fn init_logging() -> Option<String> {
    let wanted = crate::env::string("LOG_LEVEL").unwrap_or_else(|| "info".to_owned());
    let (filter, warning) = match EnvFilter::try_new(wanted.trim().to_ascii_lowercase()) {
        Ok(filter) => (filter, None),
        Err(e) => (
            EnvFilter::new("info"),
            Some(format!("invalid LOG_LEVEL={wanted:?} ({e}); using info")),
        ),
    };
    let installed = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
    match installed {
        Ok(()) => warning,
        // A subscriber already exists (tests): keep it.
        Err(_) => None,
    }
}

/// Prometheus collectors for the HTTP layer plus the service name used in logs.
#[derive(Clone)]
pub struct HttpObserver {
    service: &'static str,
    requests: IntCounterVec,
    duration: HistogramVec,
    errors: IntCounterVec,
}

impl HttpObserver {
    /// Creates the collectors and registers them in `registry`.
    pub fn new(service: &'static str, registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "status", "route"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request received to response headers ready",
            ),
            &["method", "route"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new("api_errors_total", "Error answers by kind"),
            &["service", "error_type"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        Ok(Self {
            service,
            requests,
            duration,
            errors,
        })
    }

    /// The service name written in every log line.
    pub fn service(&self) -> &'static str {
        self.service
    }
}

/// Middleware: request id, trace context, access log line, HTTP metrics.
pub async fn observe(
    State(observer): State<Arc<HttpObserver>>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_request_id(v))
        .map_or_else(|| hex_id(2), str::to_owned);
    let trace_id = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id_from_traceparent)
        .unwrap_or_else(|| hex_id(2));
    let span_id = hex_id(1);
    req.extensions_mut().insert(RequestId(request_id.clone()));

    let mut response = next.run(req).await;

    let elapsed = started.elapsed();
    let status = response.status();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    observer
        .requests
        .with_label_values(&[method.as_str(), status.as_str(), route.as_str()])
        .inc();
    observer
        .duration
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(elapsed.as_secs_f64());
    let error_type = response.extensions().get::<ErrorKind>().map(|k| k.0);
    if let Some(kind) = error_type {
        observer
            .errors
            .with_label_values(&[observer.service, kind])
            .inc();
    }

    let duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let is_probe = matches!(path.as_str(), "/health" | "/ready" | "/metrics");
    macro_rules! access_log {
        ($level:ident) => {
            tracing::$level!(
                service = observer.service,
                operation = "http_request",
                method = %method,
                path = %path,
                status_code = status.as_u16(),
                duration_ms,
                error_type,
                correlation_id = %request_id,
                trace_id = %trace_id,
                span_id = %span_id,
                "request completed"
            )
        };
    }
    if status.is_server_error() {
        access_log!(error);
    } else if status.is_client_error() {
        access_log!(warn);
    } else if is_probe {
        access_log!(debug);
    } else {
        access_log!(info);
    }
    response
}

/// True for 1 to 128 characters of `[A-Za-z0-9._:-]`.
pub fn is_valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if
/// well-formed and not all zeros.
pub fn trace_id_from_traceparent(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let well_formed = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0');
    well_formed.then(|| trace.to_ascii_lowercase())
}

/// `words` random 64-bit words as lowercase hex (16 characters each).
fn hex_id(words: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    (0..words)
        .map(|_| {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            format!("{:016x}", RandomState::new().hash_one(n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parsing() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_id_from_traceparent(tp).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id_from_traceparent("00-0000-00f067aa0ba902b7-01"),
            None
        );
        let zeros = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        assert_eq!(trace_id_from_traceparent(zeros), None);
    }

    #[test]
    fn request_ids() {
        assert!(is_valid_request_id("req-123.abc:x_y"));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("has space"));
        assert_eq!(hex_id(2).len(), 32);
        assert_ne!(hex_id(1), hex_id(1));
    }
}
