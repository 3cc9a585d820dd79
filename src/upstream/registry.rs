//! The long-lived registry: target state by address (shared by every pool of every
//! generation of the route table), weak references to the live pools (for the
//! background tasks and the metrics collector), and the last good DNS answer per
//! discovery name.

use super::metrics::UpstreamMetrics;
use super::pool::{Members, Pool, PoolShared, Target};
use super::target::TargetState;
use super::{discovery, resolve};
use crate::config::UpstreamConfig;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::Notify;

/// Why a pool cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    #[error(transparent)]
    Resolve(#[from] super::ResolveError),
    #[error(transparent)]
    Discovery(#[from] discovery::SetupError),
    #[error("upstream `{0}` has neither `targets` nor `discovery`")]
    NoTargets(String),
}

/// Identity of a DNS discovery source: `dns` and `nameserver`.
pub(crate) type DiscoveryKey = (String, Option<String>);

/// Long-lived registry of target state, shared by every pool of every generation of
/// the route table.
#[derive(Default)]
pub struct Registry {
    states: Mutex<HashMap<SocketAddr, Weak<TargetState>>>,
    /// Every pool built and still alive. Also the lock that orders membership changes
    /// with the health-check bookkeeping of the background task.
    pools: Mutex<Vec<Weak<PoolShared>>>,
    discovered: Mutex<HashMap<DiscoveryKey, Vec<SocketAddr>>>,
    /// Wakes the background task when pools or their members change.
    pub(crate) changed: Notify,
    metrics: Option<UpstreamMetrics>,
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A registry whose pools report to `metrics` (see [`super::metrics::register`]).
    pub fn with_metrics(metrics: UpstreamMetrics) -> Arc<Self> {
        let reg = Arc::new(Self {
            metrics: Some(metrics.clone()),
            ..Self::default()
        });
        metrics.attach(Arc::downgrade(&reg));
        reg
    }

    /// The state of `addr`, shared with every pool that has it.
    pub fn state(&self, addr: SocketAddr) -> Arc<TargetState> {
        self.state_entry(addr).0
    }

    /// The state of `addr` and whether it was just created.
    fn state_entry(&self, addr: SocketAddr) -> (Arc<TargetState>, bool) {
        let mut map = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(&addr).and_then(Weak::upgrade) {
            return (s, false);
        }
        map.retain(|_, w| w.strong_count() > 0);
        let s = Arc::new(TargetState::new(addr));
        map.insert(addr, Arc::downgrade(&s));
        (s, true)
    }

    /// Every target state still referenced somewhere.
    pub(crate) fn live_states(&self) -> Vec<Arc<TargetState>> {
        let map = self.states.lock().unwrap_or_else(|e| e.into_inner());
        map.values().filter_map(Weak::upgrade).collect()
    }

    pub(crate) fn lock_pools(&self) -> MutexGuard<'_, Vec<Weak<PoolShared>>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pools still alive.
    pub(crate) fn live_pools(&self) -> Vec<Arc<PoolShared>> {
        let mut pools = self.lock_pools();
        pools.retain(|w| w.strong_count() > 0);
        pools.iter().filter_map(Weak::upgrade).collect()
    }

    /// Targets for `list`, reusing known states; with a health check, states new to
    /// the registry start unhealthy until probed. Call with the pools lock held.
    fn make_targets(&self, config: &UpstreamConfig, list: &[(SocketAddr, u32)]) -> Vec<Target> {
        list.iter()
            .map(|&(addr, weight)| {
                let (state, new) = self.state_entry(addr);
                if config.health_check.is_some() {
                    state.monitor(new);
                }
                Target {
                    addr,
                    weight,
                    state,
                }
            })
            .collect()
    }

    /// Builds a pool from its configuration, reusing the state of known targets. Never
    /// blocks on DNS discovery: a discovery pool starts with the last set resolved for
    /// the same `dns`/`nameserver` (so a reload keeps serving), or empty (not ready)
    /// until the background task's first resolution, which it asks for at once. Static
    /// `host:port` targets are resolved here, once, with the system resolver.
    pub fn build_pool(&self, name: &str, config: &UpstreamConfig) -> Result<Arc<Pool>, PoolError> {
        let tls = match config.tls.settings() {
            Some(s) => super::tls::load(s)?.map(Arc::new),
            None => None,
        };
        let mut list = Vec::with_capacity(config.targets.len());
        for t in &config.targets {
            list.push((resolve(&t.addr)?, t.weight));
        }
        if let Some(d) = &config.discovery {
            // refuse a bad `dns`/`nameserver` now rather than in the background
            match discovery::for_config(d)? {
                discovery::Source::Static(addrs) => {
                    list.extend(addrs.into_iter().map(|a| (a, d.weight)))
                }
                discovery::Source::Dns { .. } => {
                    let known = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(addrs) = known.get(&(d.dns.clone(), d.nameserver.clone())) {
                        list.extend(addrs.iter().map(|&a| (a, d.weight)));
                    }
                }
            }
        }
        if config.targets.is_empty() && config.discovery.is_none() {
            return Err(PoolError::NoTargets(name.to_string()));
        }
        let mut pools = self.lock_pools();
        let targets = self.make_targets(config, &list);
        let shared = Arc::new(PoolShared::new(name, config, targets, self.metrics.clone()));
        pools.retain(|w| w.strong_count() > 0);
        pools.push(Arc::downgrade(&shared));
        drop(pools);
        if config.health_check.is_some() || config.discovery.is_some() {
            self.changed.notify_one();
        }
        let mut pool = Pool::new(shared);
        pool.tls = tls;
        Ok(Arc::new(pool))
    }

    /// Installs a freshly discovered address set in `pool` (rebuilding its selector)
    /// and remembers it as the last good set of its source. Returns whether the set
    /// changed.
    pub(crate) fn set_discovered(
        &self,
        pool: &PoolShared,
        key: DiscoveryKey,
        weight: u32,
        mut addrs: Vec<SocketAddr>,
    ) -> bool {
        addrs.sort_unstable();
        addrs.dedup();
        self.discovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, addrs.clone());
        let pools = self.lock_pools();
        let old = pool.members.load();
        let mut old_addrs: Vec<SocketAddr> = old.targets.iter().map(|t| t.addr).collect();
        old_addrs.sort_unstable();
        if old_addrs == addrs {
            return false;
        }
        let before: HashSet<SocketAddr> = old_addrs.into_iter().collect();
        let after: HashSet<SocketAddr> = addrs.iter().copied().collect();
        let added: Vec<String> = after.difference(&before).map(ToString::to_string).collect();
        let removed: Vec<String> = before.difference(&after).map(ToString::to_string).collect();
        let list: Vec<(SocketAddr, u32)> = addrs.iter().map(|&a| (a, weight)).collect();
        let targets = self.make_targets(&pool.config, &list);
        pool.members
            .store(Arc::new(Members::new(&pool.config, targets)));
        drop(pools);
        tracing::info!(upstream = %pool.name, added = ?added, removed = ?removed, "discovered targets changed");
        self.changed.notify_one();
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{
        Balance, Dur, HealthCheckConfig, HealthCheckKind, OutlierConfig, TargetConfig,
    };
    use crate::upstream::{NoTarget, Outcome};
    use std::time::Duration;

    pub(crate) fn cfg(addrs: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            targets: addrs
                .iter()
                .map(|a| TargetConfig {
                    addr: a.to_string(),
                    weight: 1,
                })
                .collect(),
            ..Default::default()
        }
    }

    pub(crate) fn hc(interval_ms: u64, healthy: u32, unhealthy: u32) -> HealthCheckConfig {
        HealthCheckConfig {
            kind: HealthCheckKind::Http,
            path: "/health".into(),
            expected_statuses: vec![],
            host: None,
            interval: Dur::millis(interval_ms),
            timeout: Dur::millis(500),
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
            jitter: Dur::millis(0),
        }
    }

    #[test]
    fn state_survives_rebuilds_and_weight_zero_drains() {
        let reg = Registry::new();
        let mut c = cfg(&["127.0.0.1:1", "127.0.0.1:2"]);
        let p1 = reg.build_pool("a", &c).expect("pool");
        let pick = p1.select(None, &[]).expect("pick");
        let addr = pick.addr;
        c.targets
            .iter_mut()
            .for_each(|t| t.weight = if t.addr == addr.to_string() { 0 } else { 1 });
        let p2 = reg.build_pool("a", &c).expect("pool");
        assert_eq!(reg.state(addr).in_flight(), 1, "in-flight carried over");
        for _ in 0..20 {
            let p = p2.select(None, &[]).expect("pick");
            assert_ne!(p.addr, addr, "draining target gets nothing new");
        }
        pick.finish(Outcome::Status(200));
        assert_eq!(reg.state(addr).in_flight(), 0);
        assert!(reg.build_pool("x", &UpstreamConfig::default()).is_err());
        assert!(reg.build_pool("x", &cfg(&["nonsense"])).is_err());
    }

    #[test]
    fn tried_targets_are_skipped_then_reused() {
        let reg = Registry::new();
        let p = reg
            .build_pool("a", &cfg(&["127.0.0.1:1", "127.0.0.1:2"]))
            .expect("pool");
        let a = p.select(None, &[]).expect("pick").addr;
        let b = p.select(None, &[a]).expect("pick").addr;
        assert_ne!(a, b);
        assert!(p.select(None, &[a, b]).is_ok());
    }

    #[test]
    fn breaker_makes_pool_all_down_with_retry_after() {
        let reg = Registry::new();
        let mut c = cfg(&["127.0.0.1:1"]);
        c.circuit_breaker = Some(crate::config::BreakerConfig {
            failure_threshold: 2,
            open_for: Dur::millis(1500),
            half_open_requests: 1,
            failure_statuses: vec![503],
        });
        let p = reg.build_pool("a", &c).expect("pool");
        p.select(None, &[])
            .expect("pick")
            .finish(Outcome::Status(500)); // not a failure here
        p.select(None, &[])
            .expect("pick")
            .finish(Outcome::Status(503));
        assert!(p.has_available_target());
        p.select(None, &[])
            .expect("pick")
            .finish(Outcome::ConnectFailure);
        assert!(!p.has_available_target());
        assert_eq!(
            p.select(None, &[]).err(),
            Some(NoTarget::AllDown {
                retry_after: Duration::from_secs(2)
            })
        );
        let snap = p.snapshot();
        assert_eq!(snap["targets"][0]["breaker"], "open");
    }

    #[test]
    fn outlier_ejection_respects_max_percent() {
        let reg = Registry::new();
        let mut c = cfg(&["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"]);
        c.balance = Balance::RoundRobin;
        c.outlier_detection = Some(OutlierConfig {
            consecutive_failures: 2,
            base_ejection: Dur::secs(30),
            max_ejection: Dur::secs(300),
            max_ejection_percent: 50,
        });
        let p = reg.build_pool("a", &c).expect("pool");
        for t in p.targets() {
            for _ in 0..3 {
                // drive each target to the threshold directly
                crate::upstream::pool::test_pick_in(&p, &t).finish(Outcome::Status(502));
            }
        }
        let ejected = p
            .targets()
            .iter()
            .filter(|t| t.state.ejected_for().is_some())
            .count();
        assert_eq!(ejected, 2);
        assert!(p.has_available_target());
        let snap = p.snapshot();
        let n = snap["targets"]
            .as_array()
            .expect("array")
            .iter()
            .filter(|t| !t["ejected_until_unix_ms"].is_null())
            .count();
        assert_eq!(n, 2);
    }

    #[test]
    fn health_checked_new_target_starts_unhealthy_known_keeps_state() {
        let reg = Registry::new();
        let plain = reg.build_pool("a", &cfg(&["127.0.0.1:1"])).expect("pool");
        let mut c = cfg(&["127.0.0.1:1", "127.0.0.1:2"]);
        c.health_check = Some(hc(1000, 2, 2));
        let p = reg.build_pool("a", &c).expect("pool");
        let t = p.targets();
        assert!(t[0].state.is_healthy(), "known target keeps its health");
        assert!(
            !t[1].state.is_healthy(),
            "new target waits for its first probe"
        );
        drop(plain);
    }
}
