//! Prometheus metrics of the gateway, registered once at start-up. Label values are
//! bounded: routes by configured name (`none` when unrouted), statuses, methods from a
//! fixed list (`OTHER` otherwise).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::sync::{Arc, OnceLock};

/// Every gateway metric.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// `gateway_time_to_first_byte_seconds{route}`.
    pub ttfb: HistogramVec,
    pub route_requests: IntCounterVec,
    pub route_duration: HistogramVec,
    pub route_errors: IntCounterVec,
    pub blocked: IntCounterVec,
    pub reloads: IntCounterVec,
    pub last_reload_success: IntGauge,
    pub last_reload_timestamp: IntGauge,
    pub routes_loaded: IntGauge,
    pub reload_apply_seconds: Histogram,
    /// The handles of unrouted requests (route `none`), resolved on first use.
    unrouted: Arc<OnceLock<RouteMetrics>>,
}

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let histo =
            |name: &str, help: &str, labels: &[&str]| -> Result<HistogramVec, prometheus::Error> {
                let h = HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                    labels,
                )?;
                registry.register(Box::new(h.clone()))?;
                Ok(h)
            };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let reload_apply_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "gateway_config_reload_duration_seconds",
                "Time to validate, build and swap in a route table",
            )
            .buckets(BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(reload_apply_seconds.clone()))?;
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            http_requests: counter(
                "http_requests_total",
                "Requests answered, by method, status and route",
                &["method", "status", "route"],
            )?,
            http_duration: histo(
                "http_request_duration_seconds",
                "Time from request to the end of the response",
                &["route"],
            )?,
            ttfb: histo(
                "gateway_time_to_first_byte_seconds",
                "Time from request to the first byte of the answer's body (its head, for an answer without one): a stream's first event",
                &["route"],
            )?,
            route_requests: counter(
                "gateway_routes_total",
                "Requests sent to a backend, by route",
                &["route", "backend"],
            )?,
            route_duration: histo(
                "gateway_route_duration_seconds",
                "Upstream time of proxied requests",
                &["route", "backend"],
            )?,
            route_errors: counter(
                "gateway_route_errors_total",
                "Failed proxied requests by kind",
                &["route", "backend", "error_type"],
            )?,
            blocked: counter(
                "gateway_requests_blocked_total",
                "Requests refused by the gateway itself",
                &["reason"],
            )?,
            reloads: counter(
                "gateway_config_reloads_total",
                "Route table reloads by result",
                &["result"],
            )?,
            last_reload_success: gauge(
                "gateway_config_last_reload_success",
                "1 when the last reload attempt succeeded",
            )?,
            last_reload_timestamp: gauge(
                "gateway_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful load",
            )?,
            routes_loaded: gauge("gateway_config_routes", "Routes in the live table")?,
            reload_apply_seconds,
            registry,
            unrouted: Arc::new(OnceLock::new()),
        })
    }

    /// The handles of requests that matched no route (label `none`).
    pub fn unrouted(&self) -> &RouteMetrics {
        self.unrouted
            .get_or_init(|| RouteMetrics::new(self, "none", None))
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        buf
    }
}

/// The bounded method labels; [`method_index`] points into it.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "OTHER",
];

/// Statuses whose `http_requests_total` handle is kept per route; others are looked up.
const STATUSES: [u16; 24] = [
    0, 200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 408, 409, 413, 422, 429,
    431, 500, 502, 503, 504,
];

fn method_index(m: &http::Method) -> usize {
    match *m {
        http::Method::GET => 0,
        http::Method::POST => 1,
        http::Method::PUT => 2,
        http::Method::DELETE => 3,
        http::Method::PATCH => 4,
        http::Method::HEAD => 5,
        http::Method::OPTIONS => 6,
        _ => 7,
    }
}

/// A bounded method label.
pub fn method_label(m: &http::Method) -> &'static str {
    METHODS[method_index(m)]
}

/// The metric handles of one route, resolved with its route table, so that a request
/// increments them without a label lookup (`with_label_values` hashes the labels and
/// takes a lock). `http_requests_total` handles, one per method and status, are
/// resolved on their first use (so that no zero series appear for statuses never
/// answered) and then kept.
pub struct RouteMetrics {
    route: String,
    http_requests: IntCounterVec,
    by_status: Box<[OnceLock<IntCounter>]>,
    /// `http_request_duration_seconds{route}`.
    pub duration: Histogram,
    /// `gateway_time_to_first_byte_seconds{route}`.
    pub ttfb: Histogram,
    /// The route's upstream: `gateway_routes_total` and `gateway_route_duration_seconds`.
    pub upstream: Option<(IntCounter, Histogram)>,
    /// A split route's sides, in order: the same metrics with `backend` the side's pool.
    pub sides: Vec<(IntCounter, Histogram)>,
}

impl RouteMetrics {
    /// Resolves the handles of route `route` (and its upstream `backend`).
    pub fn new(m: &Metrics, route: &str, backend: Option<&str>) -> Self {
        Self {
            route: route.to_string(),
            http_requests: m.http_requests.clone(),
            by_status: (0..METHODS.len() * STATUSES.len())
                .map(|_| OnceLock::new())
                .collect(),
            duration: m.http_duration.with_label_values(&[route]),
            ttfb: m.ttfb.with_label_values(&[route]),
            upstream: backend.map(|b| {
                (
                    m.route_requests.with_label_values(&[route, b]),
                    m.route_duration.with_label_values(&[route, b]),
                )
            }),
            sides: Vec::new(),
        }
    }

    /// Adds the handles of a split route's sides (`backend` = each side's pool).
    pub fn with_sides<'a>(mut self, m: &Metrics, sides: impl Iterator<Item = &'a str>) -> Self {
        self.sides = sides
            .map(|b| {
                (
                    m.route_requests.with_label_values(&[&self.route, b]),
                    m.route_duration.with_label_values(&[&self.route, b]),
                )
            })
            .collect();
        self
    }

    /// The upstream handles of a request: its split side's, else the route's pool's.
    pub fn backend(&self, side: Option<usize>) -> Option<&(IntCounter, Histogram)> {
        match side {
            Some(i) => self.sides.get(i),
            None => self.upstream.as_ref(),
        }
    }

    /// Counts one answered request in `http_requests_total` (no method: `OTHER`).
    pub fn count(&self, method: Option<&http::Method>, status: u16) {
        let mi = method.map_or(METHODS.len() - 1, method_index);
        let mut buf = itoa::Buffer::new();
        match STATUSES.iter().position(|&s| s == status) {
            Some(si) => self.by_status[mi * STATUSES.len() + si]
                .get_or_init(|| {
                    self.http_requests.with_label_values(&[
                        METHODS[mi],
                        buf.format(status),
                        &self.route,
                    ])
                })
                .inc(),
            None => self
                .http_requests
                .with_label_values(&[METHODS[mi], buf.format(status), &self.route])
                .inc(),
        }
    }
}
