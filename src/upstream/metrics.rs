//! Upstream metrics, registered in the registry the caller owns:
//!
//! - `gateway_upstream_target_healthy{upstream,target}`: 1 when the active health
//!   checks pass and the target is not ejected, else 0;
//! - `gateway_circuit_breaker_state{upstream,target}`: 0 closed, 1 open, 2 half-open;
//! - `gateway_upstream_retries_total{upstream}`: retries granted by the budget;
//! - `gateway_upstream_ejections_total{upstream,target}`: outlier ejections.
//!
//! The two gauges are computed at scrape time from the live pools of every attached
//! [`Registry`], so targets that left a pool leave the output too. Labels are pool
//! names and target addresses from the configuration or DNS: bounded.

use super::clock;
use super::Registry;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

/// Handles on the upstream metrics; cheap to clone.
#[derive(Clone)]
pub struct UpstreamMetrics {
    retries: IntCounterVec,
    ejections: IntCounterVec,
    sources: Arc<Mutex<Vec<Weak<Registry>>>>,
}

impl std::fmt::Debug for UpstreamMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamMetrics")
    }
}

/// Registers the upstream metrics in `reg`. Attach them to the target registry with
/// [`Registry::with_metrics`].
pub fn register(reg: &prometheus::Registry) -> Result<UpstreamMetrics, prometheus::Error> {
    let retries = IntCounterVec::new(
        Opts::new(
            "gateway_upstream_retries_total",
            "Retries granted by the retry budget",
        ),
        &["upstream"],
    )?;
    let ejections = IntCounterVec::new(
        Opts::new(
            "gateway_upstream_ejections_total",
            "Outlier ejections of a target",
        ),
        &["upstream", "target"],
    )?;
    let sources = Arc::new(Mutex::new(Vec::new()));
    reg.register(Box::new(retries.clone()))?;
    reg.register(Box::new(ejections.clone()))?;
    reg.register(Box::new(StateCollector::new(sources.clone())?))?;
    Ok(UpstreamMetrics {
        retries,
        ejections,
        sources,
    })
}

impl UpstreamMetrics {
    pub(crate) fn retry(&self, upstream: &str) {
        self.retries.with_label_values(&[upstream]).inc();
    }

    pub(crate) fn ejection(&self, upstream: &str, target: SocketAddr) {
        self.ejections
            .with_label_values(&[upstream, &target.to_string()])
            .inc();
    }

    pub(crate) fn attach(&self, reg: Weak<Registry>) {
        let mut s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        s.retain(|w| w.strong_count() > 0);
        s.push(reg);
    }
}

fn gauges() -> Result<(IntGaugeVec, IntGaugeVec), prometheus::Error> {
    Ok((
        IntGaugeVec::new(
            Opts::new(
                "gateway_upstream_target_healthy",
                "1 when the target passes its health checks and is not ejected",
            ),
            &["upstream", "target"],
        )?,
        IntGaugeVec::new(
            Opts::new(
                "gateway_circuit_breaker_state",
                "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            ),
            &["upstream", "target"],
        )?,
    ))
}

struct StateCollector {
    templates: (IntGaugeVec, IntGaugeVec),
    sources: Arc<Mutex<Vec<Weak<Registry>>>>,
}

impl StateCollector {
    fn new(sources: Arc<Mutex<Vec<Weak<Registry>>>>) -> Result<Self, prometheus::Error> {
        Ok(Self {
            templates: gauges()?,
            sources,
        })
    }
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.templates.0.desc();
        d.extend(self.templates.1.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok((healthy, breaker)) = gauges() else {
            return Vec::new();
        };
        let regs: Vec<Arc<Registry>> = {
            let s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            s.iter().filter_map(Weak::upgrade).collect()
        };
        let now = clock::now();
        for reg in regs {
            for pool in reg.live_pools() {
                for t in &pool.members.load().targets {
                    let target = t.addr.to_string();
                    let labels = [pool.name.as_str(), target.as_str()];
                    let ok = t.state.is_healthy() && !t.state.is_ejected_at(now);
                    healthy.with_label_values(&labels).set(i64::from(ok));
                    breaker
                        .with_label_values(&labels)
                        .set(t.state.breaker_state().metric());
                }
            }
        }
        let mut out = healthy.collect();
        out.extend(breaker.collect());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TargetConfig, UpstreamConfig};

    #[test]
    fn gauges_follow_live_pools_and_counters_count() {
        let prom = prometheus::Registry::new();
        let m = register(&prom).expect("register");
        let reg = Registry::with_metrics(m.clone());
        let cfg = UpstreamConfig {
            targets: vec![TargetConfig {
                addr: "127.0.0.1:9".into(),
                weight: 1,
            }],
            ..Default::default()
        };
        let pool = reg.build_pool("gen", &cfg).expect("pool");
        assert!(pool.try_retry());
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&prom.gather())
            .expect("encode");
        assert!(
            text.contains(
                r#"gateway_upstream_target_healthy{target="127.0.0.1:9",upstream="gen"} 1"#
            ),
            "{text}"
        );
        assert!(text
            .contains(r#"gateway_circuit_breaker_state{target="127.0.0.1:9",upstream="gen"} 0"#));
        assert!(text.contains(r#"gateway_upstream_retries_total{upstream="gen"} 1"#));
        drop(pool);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&prom.gather())
            .expect("encode");
        assert!(!text.contains("gateway_upstream_target_healthy{"), "{text}");
    }
}
