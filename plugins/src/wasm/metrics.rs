//! The wasm plugin's metrics: `gateway_wasm_failures_total{plugin,reason}`, and the
//! filters' own (`proxy_define_metric`) registered in the gateway's `/metrics` under the
//! filter's name (characters Prometheus refuses become `_`). One definition per name
//! for the process: every instance, and every reload, counts into the same series.

use super::abi::{HostResult, Status};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::collections::HashMap;
use std::sync::Mutex;

/// `proxy_define_metric`'s types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn of(v: i32) -> Option<Self> {
        match v {
            0 => Some(Self::Counter),
            1 => Some(Self::Gauge),
            2 => Some(Self::Histogram),
            _ => None,
        }
    }
}

/// A metric a filter defined.
#[derive(Clone)]
pub enum FilterMetric {
    Counter(IntCounter),
    Gauge(IntGauge),
    Histogram(Histogram),
}

impl FilterMetric {
    fn kind(&self) -> MetricKind {
        match self {
            Self::Counter(_) => MetricKind::Counter,
            Self::Gauge(_) => MetricKind::Gauge,
            Self::Histogram(_) => MetricKind::Histogram,
        }
    }

    /// `proxy_increment_metric`: counters take no negative offset.
    pub fn increment(&self, offset: i64) -> HostResult {
        match self {
            Self::Counter(c) if offset >= 0 => c.inc_by(offset as u64),
            Self::Gauge(g) => g.add(offset),
            _ => return Err(Status::BadArgument),
        }
        Ok(())
    }

    /// `proxy_record_metric`: a gauge's value, a histogram's sample.
    pub fn record(&self, value: u64) -> HostResult {
        match self {
            Self::Gauge(g) => g.set(value as i64),
            Self::Histogram(h) => h.observe(value as f64),
            Self::Counter(c) => {
                let cur = c.get();
                if value < cur {
                    return Err(Status::BadArgument);
                }
                c.inc_by(value - cur);
            }
        }
        Ok(())
    }

    /// `proxy_get_metric` (histograms: their count of samples).
    pub fn value(&self) -> Result<u64, Status> {
        Ok(match self {
            Self::Counter(c) => c.get(),
            Self::Gauge(g) => g.get() as u64,
            Self::Histogram(h) => h.get_sample_count(),
        })
    }
}

/// The metrics of every wasm filter of the process.
pub struct WasmMetrics {
    registry: Registry,
    /// `gateway_wasm_failures_total{plugin,reason}` (reason: trap, timeout, memory).
    pub failures: IntCounterVec,
    defined: Mutex<HashMap<String, FilterMetric>>,
}

/// A Prometheus name for a filter's metric name.
pub fn prometheus_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

impl WasmMetrics {
    /// Registers the failure counter in `registry` (the gateway's).
    pub fn new(registry: Registry) -> Self {
        let failures = IntCounterVec::new(
            Opts::new(
                "gateway_wasm_failures_total",
                "Calls into wasm filters that trapped, ran past max_time or past max_memory",
            ),
            &["plugin", "reason"],
        )
        .unwrap_or_else(|_| unreachable!("a valid metric"));
        if let Err(e) = registry.register(Box::new(failures.clone())) {
            tracing::warn!(error = %e, "wasm: gateway_wasm_failures_total not registered");
        }
        Self {
            registry,
            failures,
            defined: Mutex::new(HashMap::new()),
        }
    }

    /// The metric `name` of `kind`, registered the first time.
    pub fn define(&self, kind: MetricKind, name: &str) -> Result<FilterMetric, Status> {
        let name = prometheus_name(name);
        let mut d = self.defined.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = d.get(&name) {
            return if m.kind() == kind {
                Ok(m.clone())
            } else {
                Err(Status::BadArgument)
            };
        }
        let help = "A metric of a proxy-wasm filter";
        let bad = |_| Status::BadArgument;
        let (m, collector): (FilterMetric, Box<dyn prometheus::core::Collector>) = match kind {
            MetricKind::Counter => {
                let c = IntCounter::new(name.clone(), help).map_err(bad)?;
                (FilterMetric::Counter(c.clone()), Box::new(c))
            }
            MetricKind::Gauge => {
                let g = IntGauge::new(name.clone(), help).map_err(bad)?;
                (FilterMetric::Gauge(g.clone()), Box::new(g))
            }
            MetricKind::Histogram => {
                let buckets = prometheus::exponential_buckets(1.0, 4.0, 12).map_err(bad)?;
                let h =
                    Histogram::with_opts(HistogramOpts::new(name.clone(), help).buckets(buckets))
                        .map_err(bad)?;
                (FilterMetric::Histogram(h.clone()), Box::new(h))
            }
        };
        // a name the gateway itself uses is refused
        self.registry.register(collector).map_err(bad)?;
        d.insert(name, m.clone());
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert_eq!(prometheus_name("my.filter-hits"), "my_filter_hits");
        assert_eq!(prometheus_name("9x"), "_9x");
        let m = WasmMetrics::new(Registry::new());
        let a = m.define(MetricKind::Counter, "hits").unwrap();
        a.increment(2).unwrap();
        let b = m.define(MetricKind::Counter, "hits").unwrap();
        assert_eq!(b.value().unwrap(), 2);
        assert_eq!(
            m.define(MetricKind::Gauge, "hits").err(),
            Some(Status::BadArgument)
        );
        assert_eq!(a.increment(-1), Err(Status::BadArgument));
        let g = m.define(MetricKind::Gauge, "level").unwrap();
        g.increment(-3).unwrap();
        assert_eq!(g.value().unwrap() as i64, -3);
        assert_eq!(
            m.define(MetricKind::Counter, "gateway_wasm_failures_total")
                .err(),
            Some(Status::BadArgument)
        );
    }
}
