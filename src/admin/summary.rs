//! `GET /admin/summary`: one JSON view for the dashboard: per-route request counts,
//! errors and latency quantiles (from the metrics), upstream targets with health and
//! breaker state, blocked requests by reason, and the last reload's result.

use crate::gateway::Gateway;
use crate::observability::series::{is_server_error, label, quantile};
use prometheus::proto::{MetricFamily, MetricType};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Default)]
struct RouteStats {
    requests: u64,
    errors_5xx: u64,
    client_errors: u64,
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum: f64,
}

fn routes(families: &[MetricFamily], names: &[String]) -> Vec<Value> {
    let mut stats: BTreeMap<String, RouteStats> = names
        .iter()
        .map(|n| (n.clone(), RouteStats::default()))
        .collect();
    for f in families {
        match (f.name(), f.get_field_type()) {
            ("http_requests_total", MetricType::COUNTER) => {
                for m in f.get_metric() {
                    let s = stats.entry(label(m, "route").to_string()).or_default();
                    let n = m.get_counter().value() as u64;
                    s.requests += n;
                    let status = label(m, "status");
                    if is_server_error(status) {
                        s.errors_5xx += n;
                    } else if matches!(status.parse::<u16>(), Ok(400..=499)) {
                        s.client_errors += n;
                    }
                }
            }
            ("http_request_duration_seconds", MetricType::HISTOGRAM) => {
                for m in f.get_metric() {
                    let s = stats.entry(label(m, "route").to_string()).or_default();
                    let h = m.get_histogram();
                    s.count = h.sample_count();
                    s.sum = h.sample_sum();
                    s.buckets = h
                        .bucket
                        .iter()
                        .map(|b| (b.upper_bound(), b.cumulative_count()))
                        .collect();
                }
            }
            _ => {}
        }
    }
    stats
        .into_iter()
        .map(|(name, s)| {
            let ms = |q| quantile(&s.buckets, s.count, q).map(|v| v * 1000.0);
            json!({
                "route": name,
                "configured": names.contains(&name),
                "requests": s.requests,
                "errors_5xx": s.errors_5xx,
                "errors_4xx": s.client_errors,
                "latency_ms": {
                    "p50": ms(0.5),
                    "p95": ms(0.95),
                    "p99": ms(0.99),
                    "mean": (s.count > 0).then(|| s.sum / s.count as f64 * 1000.0),
                },
            })
        })
        .collect()
}

fn counter_by(families: &[MetricFamily], metric: &str, label_name: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for f in families.iter().filter(|f| f.name() == metric) {
        for m in f.get_metric() {
            out.insert(
                label(m, label_name).to_string(),
                json!(m.get_counter().value() as u64),
            );
        }
    }
    out
}

/// The summary document.
pub fn summary(gw: &Gateway) -> Value {
    let families = gw.metrics.registry.gather();
    let rt = gw.live.load();
    let names: Vec<String> = rt.routes.iter().map(|r| r.name.clone()).collect();
    let upstreams: Vec<Value> = rt.pools.values().map(|p| p.snapshot()).collect();
    json!({
        "now_unix_ms": unix_ms(),
        "routes": routes(&families, &names),
        "upstreams": upstreams,
        "blocked": counter_by(&families, "gateway_requests_blocked_total", "reason"),
        "rate_limited": counter_by(&families, "gateway_rate_limit_hits_total", "client_id"),
        "auth_failures": counter_by(&families, "gateway_auth_failures_total", "reason"),
        "reload": gw.reload_status(),
        "table": {
            "routes": rt.routes.len(),
            "upstreams": rt.pools.len(),
            "loaded_at_unix_ms": rt.loaded_at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
        },
    })
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
