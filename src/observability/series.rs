//! The dashboard's time series: the last 15 minutes of per-route and per-upstream rates,
//! error ratios and latency quantiles, cache hit ratio and refusals, kept in the gateway
//! (no Prometheus needed). A sampler thread reads the metrics registry every interval
//! (`SERIES_INTERVAL_MS`, default 5000), and each point is the difference between two
//! reads: what happened in that interval, not since start.

use prometheus::proto::{MetricFamily, MetricType};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far back the series reach.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Cumulative counts of one route or upstream at one read.
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    requests: u64,
    errors: u64,
    /// (upper bound, cumulative count) of the latency histogram
    buckets: Vec<(f64, u64)>,
}

impl Totals {
    fn add_buckets(&mut self, h: &prometheus::proto::Histogram) {
        let new: Vec<(f64, u64)> = h
            .bucket
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .collect();
        if self.buckets.len() == new.len() {
            for (a, b) in self.buckets.iter_mut().zip(new) {
                a.1 += b.1;
            }
        } else {
            self.buckets = new;
        }
    }
}

/// One read of the registry.
#[derive(Debug, Clone, Default)]
struct Read {
    at_ms: u64,
    routes: BTreeMap<String, Totals>,
    upstreams: BTreeMap<String, Totals>,
    cache_hits: u64,
    cache_lookups: u64,
    refused: BTreeMap<String, u64>,
}

/// What one interval saw for a route or an upstream.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rates {
    /// requests per second
    pub rps: f64,
    /// 5xx (routes) or failed proxied requests (upstreams), in percent of the requests
    pub error_pct: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One point of the series.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// end of the interval, Unix milliseconds
    pub t: u64,
    pub routes: BTreeMap<String, Rates>,
    pub upstreams: BTreeMap<String, Rates>,
    /// cache hits over cache lookups in the interval; none without lookups
    pub cache_hit_ratio: Option<f64>,
    /// refusals per second by reason (`rate_limited`, `auth`, `token_limit`, ...)
    pub refused: BTreeMap<String, f64>,
}

/// The ring buffer and the last read it is differenced against.
pub struct Series {
    interval: Duration,
    state: Mutex<(VecDeque<Point>, Option<Read>)>,
}

/// The `q` quantile of a cumulative histogram, interpolated inside its bucket.
pub fn quantile(buckets: &[(f64, u64)], count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let (mut lo, mut below) = (0.0, 0u64);
    for &(le, cum) in buckets {
        if cum as f64 >= rank {
            let inside = (cum - below) as f64;
            let frac = if inside > 0.0 {
                (rank - below as f64) / inside
            } else {
                1.0
            };
            // the +Inf bucket has no upper bound to interpolate to: its lower one
            return Some(if le.is_finite() {
                lo + (le - lo) * frac
            } else {
                lo
            });
        }
        lo = le;
        below = cum;
    }
    Some(lo)
}

/// The value of label `name` on `m` ("" when absent).
pub fn label<'a>(m: &'a prometheus::proto::Metric, name: &str) -> &'a str {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map_or("", |l| l.value())
}

/// A `status` label of `http_requests_total` that counts as a server error: 5xx, or 0
/// (the request ended before any answer was written).
pub fn is_server_error(status: &str) -> bool {
    matches!(status.parse::<u16>(), Ok(500..) | Ok(0))
}

fn read(families: &[MetricFamily], at_ms: u64) -> Read {
    let mut r = Read {
        at_ms,
        ..Read::default()
    };
    for f in families {
        let ty = f.get_field_type();
        for m in f.get_metric() {
            let count = || m.get_counter().value() as u64;
            match (f.name(), ty) {
                ("http_requests_total", MetricType::COUNTER) => {
                    let t = r.routes.entry(label(m, "route").to_string()).or_default();
                    t.requests += count();
                    if is_server_error(label(m, "status")) {
                        t.errors += count();
                    }
                }
                ("http_request_duration_seconds", MetricType::HISTOGRAM) => r
                    .routes
                    .entry(label(m, "route").to_string())
                    .or_default()
                    .add_buckets(m.get_histogram()),
                ("gateway_routes_total", MetricType::COUNTER) => {
                    let t = r.upstreams.entry(label(m, "backend").to_string());
                    t.or_default().requests += count();
                }
                ("gateway_route_errors_total", MetricType::COUNTER) => {
                    let t = r.upstreams.entry(label(m, "backend").to_string());
                    t.or_default().errors += count();
                }
                ("gateway_route_duration_seconds", MetricType::HISTOGRAM) => r
                    .upstreams
                    .entry(label(m, "backend").to_string())
                    .or_default()
                    .add_buckets(m.get_histogram()),
                ("gateway_cache_requests_total", MetricType::COUNTER) => {
                    r.cache_lookups += count();
                    if label(m, "status") == "hit" {
                        r.cache_hits += count();
                    }
                }
                ("gateway_requests_blocked_total", MetricType::COUNTER) => {
                    *r.refused.entry(label(m, "reason").to_string()).or_default() += count();
                }
                _ => {}
            }
        }
    }
    r
}

fn rates(now: &Totals, before: Option<&Totals>, secs: f64) -> Rates {
    let zero = Totals::default();
    let before = before.unwrap_or(&zero);
    let requests = now.requests.saturating_sub(before.requests);
    let errors = now.errors.saturating_sub(before.errors);
    let buckets: Vec<(f64, u64)> = now
        .buckets
        .iter()
        .enumerate()
        .map(|(i, &(le, c))| {
            let was = before.buckets.get(i).map_or(0, |b| b.1);
            (le, c.saturating_sub(was))
        })
        .collect();
    let observed = buckets.last().map_or(0, |b| b.1);
    let ms = |q| quantile(&buckets, observed, q).map(|v| (v * 1e6).round() / 1e3);
    Rates {
        rps: requests as f64 / secs,
        error_pct: if requests > 0 {
            100.0 * errors as f64 / requests as f64
        } else {
            0.0
        },
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
    }
}

fn point(now: &Read, before: &Read) -> Point {
    let secs = (now.at_ms.saturating_sub(before.at_ms) as f64 / 1000.0).max(0.001);
    let per = |a: &BTreeMap<String, Totals>, b: &BTreeMap<String, Totals>| {
        a.iter()
            .map(|(k, v)| (k.clone(), rates(v, b.get(k), secs)))
            .collect()
    };
    let lookups = now.cache_lookups.saturating_sub(before.cache_lookups);
    let hits = now.cache_hits.saturating_sub(before.cache_hits);
    Point {
        t: now.at_ms,
        routes: per(&now.routes, &before.routes),
        upstreams: per(&now.upstreams, &before.upstreams),
        cache_hit_ratio: (lookups > 0).then(|| hits as f64 / lookups as f64),
        refused: now
            .refused
            .iter()
            .map(|(k, v)| {
                let was = before.refused.get(k).copied().unwrap_or(0);
                (k.clone(), v.saturating_sub(was) as f64 / secs)
            })
            .collect(),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Series {
    /// An empty series sampled every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::from_millis(50)),
            state: Mutex::new((VecDeque::new(), None)),
        }
    }

    fn capacity(&self) -> usize {
        (WINDOW.as_millis() / self.interval.as_millis().max(1)).clamp(2, 20_000) as usize
    }

    /// Reads the registry once and appends the interval since the last read.
    pub fn sample(&self, families: &[MetricFamily]) {
        let now = read(families, unix_ms());
        let cap = self.capacity();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(before) = &st.1 {
            let p = point(&now, before);
            st.0.push_back(p);
            while st.0.len() > cap {
                st.0.pop_front();
            }
        }
        st.1 = Some(now);
    }

    /// The points, oldest first.
    pub fn points(&self) -> Vec<Point> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0.iter().cloned().collect()
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Starts the sampler thread over `registry`; it ends when the series is dropped.
    pub fn spawn(self: &Arc<Self>, registry: prometheus::Registry) -> std::io::Result<()> {
        let weak = Arc::downgrade(self);
        let interval = self.interval;
        std::thread::Builder::new()
            .name("series-sampler".into())
            .spawn(move || loop {
                let Some(series) = weak.upgrade() else { return };
                series.sample(&registry.gather());
                drop(series);
                std::thread::sleep(interval);
            })
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

    #[test]
    fn quantile_interpolates_inside_a_bucket() {
        let b = [(0.1, 50), (0.2, 100), (f64::INFINITY, 100)];
        assert_eq!(quantile(&b, 100, 0.5), Some(0.1));
        let q = quantile(&b, 100, 0.75).unwrap();
        assert!((q - 0.15).abs() < 1e-9, "{q}");
        assert_eq!(quantile(&b, 0, 0.5), None);
    }

    #[test]
    fn a_point_is_what_happened_in_its_interval() {
        let reg = Registry::new();
        let req = IntCounterVec::new(
            Opts::new("http_requests_total", "x"),
            &["method", "status", "route"],
        )
        .unwrap();
        let dur = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "x").buckets(vec![0.01, 0.1]),
            &["route"],
        )
        .unwrap();
        let blocked = IntCounterVec::new(
            Opts::new("gateway_requests_blocked_total", "x"),
            &["reason"],
        )
        .unwrap();
        reg.register(Box::new(req.clone())).unwrap();
        reg.register(Box::new(dur.clone())).unwrap();
        reg.register(Box::new(blocked.clone())).unwrap();
        req.with_label_values(&["GET", "200", "a"]).inc_by(1000);
        dur.with_label_values(&["a"]).observe(0.5);
        let s = Series::new(Duration::from_secs(5));
        s.sample(&reg.gather());
        assert!(s.points().is_empty(), "the first read is only a baseline");
        req.with_label_values(&["GET", "200", "a"]).inc_by(9);
        req.with_label_values(&["GET", "503", "a"]).inc();
        for _ in 0..10 {
            dur.with_label_values(&["a"]).observe(0.005);
        }
        blocked.with_label_values(&["auth"]).inc_by(2);
        s.sample(&reg.gather());
        let p = s.points().pop().unwrap();
        let a = &p.routes["a"];
        assert!(a.rps > 0.0);
        assert!((a.error_pct - 10.0).abs() < 1e-9, "{a:?}");
        // the old 0.5 s observation is outside this interval
        assert!(a.p99_ms.unwrap() <= 10.0, "{a:?}");
        assert!(p.refused["auth"] > 0.0);
        assert_eq!(p.cache_hit_ratio, None);
    }

    #[test]
    fn the_ring_keeps_fifteen_minutes() {
        let s = Series::new(Duration::from_secs(60));
        let reg = Registry::new();
        for _ in 0..40 {
            s.sample(&reg.gather());
        }
        assert_eq!(s.points().len(), 15);
    }
}
