//! A named pool: its current members (swapped whole when discovery changes them), the
//! selection with breaker admission, outlier ejection with the pool-wide cap, the retry
//! budget and the admin snapshot.

use super::balance::{self, BackendSelection, Candidates};
use super::clock;
use super::conns;
use super::metrics::UpstreamMetrics;
use super::retry::RetryBudget;
use super::target::{Pick, TargetState};
use crate::config::{BreakerConfig, OutlierConfig, UpstreamConfig};
use arc_swap::ArcSwap;
use serde_json::{json, Value};
use smallvec::SmallVec;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One target of a pool as the pool sees it.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// Relative share; 0 = draining (no new requests, in-flight ones finish).
    pub weight: u32,
    pub state: Arc<TargetState>,
}

impl Target {
    /// Whether a new request may go here (weight > 0 and the state admits it).
    pub fn is_available(&self) -> bool {
        self.weight > 0 && self.state.is_available()
    }
}

/// The current target set of a pool and the selector built for it.
pub struct Members {
    pub targets: Vec<Target>,
    pub selector: Box<dyn BackendSelection>,
}

impl Members {
    pub(crate) fn new(config: &UpstreamConfig, targets: Vec<Target>) -> Self {
        let selector = balance::for_config(config, &targets);
        Self { targets, selector }
    }
}

/// What a [`Pick`] needs of its pool after selection; also what the background tasks
/// (health checks, discovery) and the metrics collector see, through weak references.
pub(crate) struct PoolShared {
    pub name: String,
    pub config: UpstreamConfig,
    pub breaker: Option<BreakerConfig>,
    pub outlier: Option<OutlierConfig>,
    pub members: ArcSwap<Members>,
    pub metrics: Option<UpstreamMetrics>,
    eject_lock: Mutex<()>,
}

impl PoolShared {
    pub(crate) fn new(
        name: &str,
        config: &UpstreamConfig,
        targets: Vec<Target>,
        metrics: Option<UpstreamMetrics>,
    ) -> Self {
        Self {
            name: name.to_string(),
            breaker: config.circuit_breaker.clone(),
            outlier: config.outlier_detection.clone(),
            members: ArcSwap::from_pointee(Members::new(config, targets)),
            config: config.clone(),
            metrics,
            eject_lock: Mutex::new(()),
        }
    }

    /// Ejects `state` unless that would put more than `max_ejection_percent` of the
    /// pool out at once (at least one target may always be ejected when the percentage
    /// is above 0, as in Envoy).
    pub(crate) fn try_eject(&self, state: &TargetState, cfg: &OutlierConfig) {
        let _g = self.eject_lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = clock::now();
        if state.is_ejected_at(now) {
            return;
        }
        let m = self.members.load();
        let n = m.targets.len();
        let pct = cfg.max_ejection_percent.min(100) as usize;
        let max = if pct == 0 { 0 } else { (n * pct / 100).max(1) };
        let ejected = m
            .targets
            .iter()
            .filter(|t| t.state.is_ejected_at(now))
            .count();
        if ejected >= max {
            tracing::info!(upstream = %self.name, target = %state.addr, ejected, max,
                "outlier not ejected: max_ejection_percent reached");
            return;
        }
        let d = state.eject(cfg, now);
        tracing::warn!(upstream = %self.name, target = %state.addr, duration = ?d, "outlier ejected");
        if let Some(m) = &self.metrics {
            m.ejection(&self.name, state.addr);
        }
    }
}

/// A named pool.
pub struct Pool {
    pub name: String,
    pub config: UpstreamConfig,
    pub(crate) shared: Arc<PoolShared>,
    budget: RetryBudget,
    /// Client certificate and CA towards the targets (`tls:` settings), if any.
    pub tls: Option<Arc<super::tls::PeerTls>>,
}

/// Why no target was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoTarget {
    /// Every target is down, draining, ejected or has an open breaker; `retry_after`
    /// is the time until the first breaker half-opens or ejection ends, rounded up to
    /// whole seconds, at least 1 s (1 s when only health checks keep targets out).
    AllDown { retry_after: Duration },
}

impl Pool {
    pub(crate) fn new(shared: Arc<PoolShared>) -> Self {
        let budget = shared
            .config
            .retry
            .as_ref()
            .map(|r| RetryBudget::new(&r.budget))
            .unwrap_or_default();
        Self {
            name: shared.name.clone(),
            config: shared.config.clone(),
            shared,
            budget,
            tls: None,
        }
    }

    /// Chooses a target for a request, skipping the addresses in `tried` (when every
    /// untried target is out, a retry may go back to one already tried). `hash` is the
    /// consistent-hashing key (see [`super::hash_key`]); other algorithms ignore it.
    /// A half-open breaker admits only `half_open_requests` probes; a target whose
    /// probe slots are taken is skipped. A call with an empty `tried` (a first try)
    /// counts one request in the retry budget.
    pub fn select(&self, hash: Option<u64>, tried: &[SocketAddr]) -> Result<Pick, NoTarget> {
        if tried.is_empty() {
            self.budget.note_request();
        }
        let m = self.shared.members.load();
        let mut refused: SmallVec<[usize; 4]> = SmallVec::new();
        for allow_tried in [false, true] {
            if allow_tried && tried.is_empty() {
                break;
            }
            for _ in 0..8 {
                let eligible = |i: usize| {
                    m.targets.get(i).is_some_and(|t| {
                        t.is_available()
                            && (allow_tried || !tried.contains(&t.addr))
                            && !refused.contains(&i)
                    })
                };
                let Some(i) = m
                    .selector
                    .select(&Candidates::new(&m.targets, hash, &eligible))
                else {
                    break;
                };
                let Some(t) = m.targets.get(i) else { break };
                match t
                    .state
                    .breaker
                    .acquire(self.shared.breaker.as_ref(), t.addr, &self.name)
                {
                    Some(probe) => {
                        return Ok(Pick::new(t.state.clone(), self.shared.clone(), probe))
                    }
                    None => refused.push(i),
                }
            }
        }
        Err(NoTarget::AllDown {
            retry_after: self.retry_after(),
        })
    }

    fn retry_after(&self) -> Duration {
        let m = self.shared.members.load();
        let soonest = m
            .targets
            .iter()
            .filter(|t| t.weight > 0)
            .filter_map(|t| t.state.available_in())
            .min()
            .unwrap_or(Duration::ZERO);
        let secs = soonest.as_secs() + u64::from(soonest.subsec_nanos() > 0);
        Duration::from_secs(secs.max(1))
    }

    /// Whether at least one target could take a request now (readiness). False for a
    /// discovery pool until its first successful resolution.
    pub fn has_available_target(&self) -> bool {
        self.shared
            .members
            .load()
            .targets
            .iter()
            .any(Target::is_available)
    }

    /// The current targets.
    pub fn targets(&self) -> Vec<Target> {
        self.shared.members.load().targets.clone()
    }

    /// Counts one request towards the retry budget. [`Pool::select`] already does for
    /// first tries; call this only for requests that never select.
    pub fn note_request(&self) {
        self.budget.note_request();
    }

    /// Takes one retry from the budget: true when the retry may happen (and counts it
    /// in `gateway_upstream_retries_total`), false when the budget is spent.
    pub fn try_retry(&self) -> bool {
        let ok = self.budget.try_retry();
        if ok {
            if let Some(m) = &self.shared.metrics {
                m.retry(&self.name);
            }
        }
        ok
    }

    /// The retry budget (defaults when the pool has no `retry`).
    pub fn retry_budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// JSON view for `GET /admin/upstreams`: every target with its address, weight,
    /// health, breaker state, in-flight count, connections, ejection end, latency
    /// estimate and last health-check result; the pool's in-flight and connection
    /// totals.
    pub fn snapshot(&self) -> Value {
        let m = self.shared.members.load();
        let open = conns::open_by_remote();
        let targets: Vec<Value> = m.targets.iter().map(|t| target_json(t, &open)).collect();
        let sum = |f: &dyn Fn(&Value) -> Option<u64>| -> Option<u64> {
            targets.iter().map(f).sum::<Option<u64>>()
        };
        json!({
            "name": self.name,
            "balance": self.config.balance,
            "discovery": self.config.discovery.as_ref().map(|d| &d.dns),
            "available": self.has_available_target(),
            "retry_budget": self.budget.snapshot(),
            "in_flight": sum(&|t| t["in_flight"].as_u64()),
            "connections": {
                "in_use": sum(&|t| t["connections"]["in_use"].as_u64()),
                "idle": sum(&|t| t["connections"]["idle"].as_u64()),
                "opened": sum(&|t| t["connections"]["opened"].as_u64()),
                "reused": sum(&|t| t["connections"]["reused"].as_u64()),
            },
            "targets": targets,
        })
    }
}

fn target_json(t: &Target, open: &conns::OpenConns) -> Value {
    let s = &t.state;
    let h = s.health_record();
    let (in_use, idle) = conns::split(&s.conns, t.addr, open);
    let ejected_until = s.ejected_for().map(|d| unix_ms(SystemTime::now() + d));
    json!({
        "addr": t.addr.to_string(),
        "weight": t.weight,
        "available": t.is_available(),
        "healthy": s.is_healthy(),
        "health_checked": h.monitored,
        "breaker": s.breaker_state(),
        "breaker_failures": s.breaker.consecutive_failures(),
        "in_flight": s.in_flight(),
        "connections": {
            "in_use": in_use,
            "idle": idle,
            "opened": s.conns.opened(),
            "reused": s.conns.reused(),
        },
        "ejected_until_unix_ms": ejected_until,
        "latency_ewma_ms": s.latency_ewma_ns() / 1e6,
        "last_check": h.last_check.map(|at| json!({
            "at_unix_ms": unix_ms(at),
            "result": h.last_result,
            "consecutive_ok": h.consecutive_ok,
            "consecutive_failures": h.consecutive_failures,
        })),
    })
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A pick of `t` outside any pool (selector tests).
#[cfg(test)]
pub(crate) fn test_pick(t: &Target) -> Pick {
    let shared = Arc::new(PoolShared::new(
        "test",
        &UpstreamConfig::default(),
        vec![],
        None,
    ));
    Pick::new(t.state.clone(), shared, false)
}

/// A pick of `t` in `p`, bypassing selection.
#[cfg(test)]
pub(crate) fn test_pick_in(p: &Pool, t: &Target) -> Pick {
    Pick::new(t.state.clone(), p.shared.clone(), false)
}
