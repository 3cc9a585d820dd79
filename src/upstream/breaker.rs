//! Per-target circuit breaker: `closed` → `open` after `failure_threshold` consecutive
//! failures → `half_open` once `open_for` has passed, letting at most
//! `half_open_requests` probe requests through → `closed` when a probe succeeds, `open`
//! again when one fails. The closed path is lock-free (two atomics); transitions take a
//! small mutex.

use super::clock;
use crate::config::BreakerConfig;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The three breaker states (metric value in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows (0).
    Closed,
    /// No traffic until `open_for` has passed (1).
    Open,
    /// A few probe requests are let through (2).
    HalfOpen,
}

impl BreakerState {
    /// Value of the `gateway_circuit_breaker_state` gauge.
    pub fn metric(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
    fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

/// Breaker of one target address (shared by every pool that has the address).
#[derive(Debug, Default)]
pub struct Breaker {
    state: AtomicU8,
    /// Consecutive failures while closed.
    failures: AtomicU32,
    /// Clock time (see `clock::now`) at which an open breaker half-opens.
    open_until: AtomicU64,
    /// Probes in flight while half-open, and how many are allowed.
    probes: AtomicU32,
    probe_limit: AtomicU32,
    transition: Mutex<()>,
}

impl Breaker {
    /// Current state, without side effects.
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Consecutive failures counted while closed.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Whether a new request could be admitted now (no state change).
    pub fn admits(&self, now: u64) -> bool {
        match self.state() {
            BreakerState::Closed => true,
            BreakerState::Open => now >= self.open_until.load(Ordering::Acquire),
            BreakerState::HalfOpen => {
                self.probes.load(Ordering::Acquire) < self.probe_limit.load(Ordering::Acquire)
            }
        }
    }

    /// Time until an open breaker half-opens (`None` when not open).
    pub fn opens_in(&self, now: u64) -> Option<Duration> {
        (self.state() == BreakerState::Open).then(|| {
            Duration::from_nanos(self.open_until.load(Ordering::Acquire).saturating_sub(now))
        })
    }

    /// Admits one request: `Some(false)` when closed, `Some(true)` when it is a
    /// half-open probe (which must be reported back through [`Breaker::record`] or
    /// [`Breaker::release_probe`]), `None` when refused.
    pub fn acquire(
        &self,
        cfg: Option<&BreakerConfig>,
        addr: SocketAddr,
        pool: &str,
    ) -> Option<bool> {
        if self.state() == BreakerState::Closed {
            return Some(false);
        }
        let _g = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        match self.state() {
            BreakerState::Closed => Some(false),
            BreakerState::Open => {
                if clock::now() < self.open_until.load(Ordering::Acquire) {
                    return None;
                }
                let limit = cfg.map_or(1, |c| c.half_open_requests.max(1));
                self.probe_limit.store(limit, Ordering::Release);
                self.probes.store(1, Ordering::Release);
                self.state
                    .store(BreakerState::HalfOpen as u8, Ordering::Release);
                tracing::info!(upstream = pool, target = %addr, "circuit breaker half-open");
                Some(true)
            }
            BreakerState::HalfOpen => {
                let n = self.probes.load(Ordering::Acquire);
                if n < self.probe_limit.load(Ordering::Acquire) {
                    self.probes.store(n + 1, Ordering::Release);
                    Some(true)
                } else {
                    None
                }
            }
        }
    }

    /// Gives back a probe slot whose request ended without an outcome (cancelled).
    pub fn release_probe(&self) {
        let _g = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.probes.load(Ordering::Acquire);
        self.probes.store(n.saturating_sub(1), Ordering::Release);
    }

    /// Records the outcome of a request. `probe` is what [`Breaker::acquire`] returned.
    /// Without a configuration the breaker never opens (a breaker left open by an
    /// earlier configuration still half-opens and closes normally).
    pub fn record(
        &self,
        failure: bool,
        probe: bool,
        cfg: Option<&BreakerConfig>,
        addr: SocketAddr,
        pool: &str,
    ) {
        if probe {
            let _g = self.transition.lock().unwrap_or_else(|e| e.into_inner());
            let n = self.probes.load(Ordering::Acquire);
            self.probes.store(n.saturating_sub(1), Ordering::Release);
            if self.state() != BreakerState::HalfOpen {
                return;
            }
            if failure {
                let open_for = cfg.map_or(Duration::from_secs(60), |c| c.open_for.get());
                self.open_locked(open_for);
                tracing::warn!(upstream = pool, target = %addr, open_for = ?open_for,
                    "circuit breaker re-opened: half-open probe failed");
            } else {
                self.failures.store(0, Ordering::Release);
                self.state
                    .store(BreakerState::Closed as u8, Ordering::Release);
                tracing::info!(upstream = pool, target = %addr, "circuit breaker closed: probe succeeded");
            }
            return;
        }
        if self.state() != BreakerState::Closed {
            return; // a late answer to a request sent before the breaker opened
        }
        if !failure {
            if self.failures.load(Ordering::Relaxed) != 0 {
                self.failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        let Some(cfg) = cfg else { return };
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= cfg.failure_threshold.max(1) {
            let _g = self.transition.lock().unwrap_or_else(|e| e.into_inner());
            if self.state() == BreakerState::Closed {
                self.open_locked(cfg.open_for.get());
                tracing::warn!(upstream = pool, target = %addr, failures = n, open_for = ?cfg.open_for.get(),
                    "circuit breaker opened");
            }
        }
    }

    fn open_locked(&self, open_for: Duration) {
        let until =
            clock::now().saturating_add(u64::try_from(open_for.as_nanos()).unwrap_or(u64::MAX));
        self.open_until.store(until, Ordering::Release);
        self.failures.store(0, Ordering::Release);
        self.state
            .store(BreakerState::Open as u8, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dur;

    fn cfg(n: u32, open_ms: u64) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: n,
            open_for: Dur::millis(open_ms),
            half_open_requests: 1,
            failure_statuses: vec![500, 502, 503, 504],
        }
    }

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1))
    }

    #[test]
    fn opens_after_exactly_n_failures_then_half_opens_and_closes() {
        let b = Breaker::default();
        let c = cfg(3, 50);
        for _ in 0..2 {
            assert_eq!(b.acquire(Some(&c), addr(), "p"), Some(false));
            b.record(true, false, Some(&c), addr(), "p");
            assert_eq!(b.state(), BreakerState::Closed);
        }
        b.record(true, false, Some(&c), addr(), "p");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.admits(clock::now()));
        assert_eq!(b.acquire(Some(&c), addr(), "p"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admits(clock::now()));
        assert_eq!(b.acquire(Some(&c), addr(), "p"), Some(true));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // only one probe at a time
        assert_eq!(b.acquire(Some(&c), addr(), "p"), None);
        assert!(!b.admits(clock::now()));
        b.record(false, true, Some(&c), addr(), "p");
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn success_resets_the_count_and_failed_probe_reopens() {
        let b = Breaker::default();
        let c = cfg(2, 30);
        b.record(true, false, Some(&c), addr(), "p");
        b.record(false, false, Some(&c), addr(), "p");
        b.record(true, false, Some(&c), addr(), "p");
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(true, false, Some(&c), addr(), "p");
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.acquire(Some(&c), addr(), "p"), Some(true));
        b.record(true, true, Some(&c), addr(), "p");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.opens_in(clock::now()).is_some());
        // a cancelled probe frees its slot
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.acquire(Some(&c), addr(), "p"), Some(true));
        b.release_probe();
        assert_eq!(b.acquire(Some(&c), addr(), "p"), Some(true));
    }

    #[test]
    fn zero_threshold_does_not_panic_and_no_config_never_opens() {
        let b = Breaker::default();
        b.record(true, false, Some(&cfg(0, 10)), addr(), "p");
        assert_eq!(b.state(), BreakerState::Open);
        let b = Breaker::default();
        for _ in 0..100 {
            b.record(true, false, None, addr(), "p");
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
