//! Upstream metrics, registered in the registry the caller owns:
//!
//! - `gateway_upstream_target_healthy{upstream,target}`: 1 when the active health
//!   checks pass and the target is not ejected, else 0;
//! - `gateway_circuit_breaker_state{upstream,target}`: 0 closed, 1 open, 2 half-open;
//! - `gateway_upstream_retries_total{upstream}`: retries granted by the budget;
//! - `gateway_upstream_ejections_total{upstream,target}`: outlier ejections;
//! - `gateway_upstream_requests_in_flight{upstream,target}`: requests not finished;
//! - `gateway_upstream_connections{upstream,target,state}`: `in_use` (carrying a
//!   proxied request) and `idle` (open without one: the keep-alive pool), see
//!   [`super::conns`];
//! - `gateway_upstream_connections_opened_total{upstream,target}` and
//!   `gateway_upstream_connections_reused_total{upstream,target}`: new and pooled
//!   connections of proxied requests.
//!
//! All but the retry and ejection counters are computed at scrape time from the live pools of every attached
//! [`Registry`], so targets that left a pool leave the output too. Labels are pool
//! names and target addresses from the configuration or DNS: bounded.

use super::clock;
use super::conns;
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

/// The series computed at scrape time from the live pools.
struct StateFamilies {
    healthy: IntGaugeVec,
    breaker: IntGaugeVec,
    in_flight: IntGaugeVec,
    connections: IntGaugeVec,
    opened: IntCounterVec,
    reused: IntCounterVec,
}

impl StateFamilies {
    fn new() -> Result<Self, prometheus::Error> {
        let labels = &["upstream", "target"];
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), labels);
        let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), labels);
        Ok(Self {
            healthy: gauge(
                "gateway_upstream_target_healthy",
                "1 when the target passes its health checks and is not ejected",
            )?,
            breaker: gauge(
                "gateway_circuit_breaker_state",
                "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            )?,
            in_flight: gauge(
                "gateway_upstream_requests_in_flight",
                "Requests sent to the target and not finished (proxied requests and flow steps)",
            )?,
            connections: IntGaugeVec::new(
                Opts::new(
                    "gateway_upstream_connections",
                    "Connections to the target: in_use carries a proxied request, idle is open without one (keep-alive pool)",
                ),
                &["upstream", "target", "state"],
            )?,
            opened: counter(
                "gateway_upstream_connections_opened_total",
                "New connections made to the target for proxied requests",
            )?,
            reused: counter(
                "gateway_upstream_connections_reused_total",
                "Proxied requests sent on a pooled keep-alive connection",
            )?,
        })
    }

    /// Every family, in exposition order.
    fn families(&self) -> [&dyn Collector; 6] {
        [
            &self.healthy,
            &self.breaker,
            &self.in_flight,
            &self.connections,
            &self.opened,
            &self.reused,
        ]
    }

    fn descs(&self) -> Vec<&Desc> {
        self.families().into_iter().flat_map(|f| f.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families()
            .into_iter()
            .flat_map(|f| f.collect())
            .collect()
    }
}

struct StateCollector {
    templates: StateFamilies,
    sources: Arc<Mutex<Vec<Weak<Registry>>>>,
}

impl StateCollector {
    fn new(sources: Arc<Mutex<Vec<Weak<Registry>>>>) -> Result<Self, prometheus::Error> {
        Ok(Self {
            templates: StateFamilies::new()?,
            sources,
        })
    }
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.templates.descs()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(f) = StateFamilies::new() else {
            return Vec::new();
        };
        let regs: Vec<Arc<Registry>> = {
            let s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            s.iter().filter_map(Weak::upgrade).collect()
        };
        let now = clock::now();
        let open = conns::open_by_remote();
        // a pool of the previous table may still be alive during a reload: each
        // (upstream, target) once
        let mut seen = std::collections::HashSet::new();
        for reg in regs {
            for pool in reg.live_pools() {
                for t in &pool.members.load().targets {
                    if !seen.insert((pool.name.clone(), t.addr)) {
                        continue;
                    }
                    let target = t.addr.to_string();
                    let labels = [pool.name.as_str(), target.as_str()];
                    let s = &t.state;
                    let ok = s.is_healthy() && !s.is_ejected_at(now);
                    f.healthy.with_label_values(&labels).set(i64::from(ok));
                    f.breaker
                        .with_label_values(&labels)
                        .set(s.breaker_state().metric());
                    f.in_flight
                        .with_label_values(&labels)
                        .set(gauge(s.in_flight()));
                    let (in_use, idle) = conns::split(&s.conns, t.addr, &open);
                    let conn = |state: &str, v: u64| {
                        f.connections
                            .with_label_values(&[labels[0], labels[1], state])
                            .set(gauge(v));
                    };
                    conn("in_use", in_use);
                    if let Some(idle) = idle {
                        conn("idle", idle);
                    }
                    f.opened.with_label_values(&labels).inc_by(s.conns.opened());
                    f.reused.with_label_values(&labels).inc_by(s.conns.reused());
                }
            }
        }
        f.collect()
    }
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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
