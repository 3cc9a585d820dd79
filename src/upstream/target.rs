//! Per-target state that outlives reloads (keyed by address in the [`Registry`]), and
//! the guard of one request to a target ([`Pick`]).
//!
//! [`Registry`]: super::Registry

use super::breaker::{Breaker, BreakerState};
use super::clock;
use super::conns::ConnStats;
use super::ewma::PeakEwma;
use super::pool::PoolShared;
use crate::config::{HealthCheckConfig, OutlierConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What the gateway knows about one target address.
#[derive(Debug)]
pub struct TargetState {
    pub addr: SocketAddr,
    /// `addr` as a `Host` value (the default upstream `Host`), made once, not per request.
    pub host: http::HeaderValue,
    in_flight: AtomicU64,
    /// Active health; `true` unless a health check says otherwise.
    healthy: AtomicBool,
    health: Mutex<HealthRecord>,
    /// Clock time (`clock::now`) the current ejection ends; 0 = not ejected.
    ejected_until: AtomicU64,
    /// Consecutive 5xx / connect failures / timeouts seen by outlier detection.
    outlier_failures: AtomicU32,
    outlier: Mutex<OutlierRecord>,
    pub(crate) breaker: Breaker,
    pub(crate) ewma: PeakEwma,
    /// Connections of proxied requests (opened, reused, in use).
    pub conns: ConnStats,
}

/// Active health-check bookkeeping of one target.
#[derive(Debug, Clone, Default)]
pub struct HealthRecord {
    /// Whether any probe has completed since the target got a health check.
    pub checked: bool,
    /// Whether a health check covers the target (else it counts as healthy).
    pub monitored: bool,
    pub consecutive_ok: u32,
    pub consecutive_failures: u32,
    /// `ok: ...` or the reason of the last failure.
    pub last_result: Option<String>,
    pub last_check: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct OutlierRecord {
    ejections: u32,
    last_end: u64,
}

impl TargetState {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: http::HeaderValue::try_from(addr.to_string())
                .unwrap_or_else(|_| http::HeaderValue::from_static("localhost")),
            in_flight: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            health: Mutex::new(HealthRecord::default()),
            ejected_until: AtomicU64::new(0),
            outlier_failures: AtomicU32::new(0),
            outlier: Mutex::new(OutlierRecord::default()),
            breaker: Breaker::default(),
            ewma: PeakEwma::default(),
            conns: ConnStats::default(),
        }
    }

    /// Requests sent to this target and not finished yet.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether new requests may go here: healthy (active checks), not ejected (outlier
    /// detection), and a breaker that admits requests (closed, open past `open_for`, or
    /// half-open with a free probe slot). Lock-free; reads the clock only when ejected
    /// or when the breaker is not closed.
    pub fn is_available(&self) -> bool {
        if !self.healthy.load(Ordering::Relaxed) {
            return false;
        }
        let ejected = self.ejected_until.load(Ordering::Relaxed);
        let closed = self.breaker.state() == BreakerState::Closed;
        if ejected == 0 && closed {
            return true;
        }
        let now = clock::now();
        now >= ejected && (closed || self.breaker.admits(now))
    }

    /// Active health as last decided by the health checks (`true` when unchecked).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Forces the active-health flag (tests, admin).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Circuit breaker state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Peak-EWMA latency in nanoseconds (0 before the first response).
    pub fn latency_ewma_ns(&self) -> f64 {
        self.ewma.get()
    }

    /// When the current ejection ends, if ejected.
    pub fn ejected_for(&self) -> Option<Duration> {
        let until = self.ejected_until.load(Ordering::Relaxed);
        let now = clock::now();
        (until > now).then(|| Duration::from_nanos(until - now))
    }

    pub(crate) fn is_ejected_at(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }

    /// A copy of the health-check bookkeeping.
    pub fn health_record(&self) -> HealthRecord {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Time until this target may take traffic again when it is ejected or its breaker
    /// is open; `None` when neither (or when only active health keeps it out).
    pub fn available_in(&self) -> Option<Duration> {
        let now = clock::now();
        let ej = self.ejected_for();
        let br = self.breaker.opens_in(now);
        match (ej, br) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// A health check now covers this target. A target that was never checked starts
    /// unhealthy when `new` (fresh in the registry), so it gets no traffic before its
    /// first probe; a known target keeps its current health.
    pub(crate) fn monitor(&self, new: bool) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if !h.monitored {
            h.monitored = true;
            if new && !h.checked {
                self.healthy.store(false, Ordering::Relaxed);
            }
        }
    }

    /// No health check covers this target any more: it counts as healthy again.
    pub(crate) fn unmonitor(&self) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if h.monitored {
            *h = HealthRecord::default();
            self.healthy.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn is_monitored(&self) -> bool {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .monitored
    }

    /// Records one probe result and applies the thresholds: unhealthy after
    /// `unhealthy_threshold` failures in a row, healthy after `healthy_threshold`
    /// successes in a row, or after the first success of a never-checked target (which
    /// starts unhealthy, see [`TargetState::monitor`]).
    /// Returns the new health when it changed.
    pub(crate) fn record_probe(
        &self,
        result: Result<String, super::health::ProbeError>,
        cfg: &HealthCheckConfig,
    ) -> Option<bool> {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let first = !h.checked;
        h.checked = true;
        h.last_check = Some(SystemTime::now());
        let healthy = self.healthy.load(Ordering::Relaxed);
        let next = match result {
            Ok(detail) => {
                h.consecutive_ok = h.consecutive_ok.saturating_add(1);
                h.consecutive_failures = 0;
                h.last_result = Some(format!("ok: {detail}"));
                healthy || first || h.consecutive_ok >= cfg.healthy_threshold.max(1)
            }
            Err(reason) => {
                h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                h.consecutive_ok = 0;
                h.last_result = Some(reason.to_string());
                healthy && h.consecutive_failures < cfg.unhealthy_threshold.max(1)
            }
        };
        (next != healthy).then(|| {
            self.healthy.store(next, Ordering::Relaxed);
            next
        })
    }

    /// Counts one outlier-detection result; returns true when the target reached
    /// `consecutive_failures` and should be ejected (the pool decides).
    pub(crate) fn outlier_result(&self, failure: bool, cfg: &OutlierConfig) -> bool {
        if !failure {
            if self.outlier_failures.load(Ordering::Relaxed) != 0 {
                self.outlier_failures.store(0, Ordering::Relaxed);
            }
            return false;
        }
        let n = self.outlier_failures.fetch_add(1, Ordering::AcqRel) + 1;
        n >= cfg.consecutive_failures.max(1) && !self.is_ejected_at(clock::now())
    }

    /// Ejects the target: the n-th ejection lasts n × `base_ejection`, at most
    /// `max_ejection`. The count starts over after a `max_ejection` without ejection.
    pub(crate) fn eject(&self, cfg: &OutlierConfig, now: u64) -> Duration {
        let mut o = self.outlier.lock().unwrap_or_else(|e| e.into_inner());
        let max = cfg.max_ejection.get();
        if o.last_end != 0 && now.saturating_sub(o.last_end) > nanos(max) {
            o.ejections = 0;
        }
        o.ejections = o.ejections.saturating_add(1);
        let d = cfg.base_ejection.get().saturating_mul(o.ejections).min(max);
        let until = now.saturating_add(nanos(d)).max(1);
        o.last_end = until;
        self.ejected_until.store(until, Ordering::Relaxed);
        self.outlier_failures.store(0, Ordering::Relaxed);
        d
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How a request to a target ended, for breakers, outlier detection and latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived with this status.
    Status(u16),
    /// The connection could not be made.
    ConnectFailure,
    /// The target did not answer in time.
    Timeout,
    /// Another error after the request was sent (reset, malformed response); counts
    /// as a failure for the breaker and outlier detection.
    Error,
}

/// One request in flight to a target: counted from [`Pool::select`] until
/// [`Pick::finish`] or drop (a drop without `finish` releases the slot and records
/// nothing).
///
/// [`Pool::select`]: super::Pool::select
pub struct Pick {
    pub addr: SocketAddr,
    pub state: Arc<TargetState>,
    pool: Arc<PoolShared>,
    started: Instant,
    probe: bool,
    done: bool,
    /// Holds a connection (counted in the target's `conns.in_use`).
    connected: bool,
}

impl std::fmt::Debug for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pick")
            .field("addr", &self.addr)
            .field("pool", &self.pool.name)
            .field("probe", &self.probe)
            .finish()
    }
}

impl Pick {
    pub(crate) fn new(state: Arc<TargetState>, pool: Arc<PoolShared>, probe: bool) -> Self {
        state.in_flight.fetch_add(1, Ordering::Relaxed);
        Self {
            addr: state.addr,
            state,
            pool,
            started: Instant::now(),
            probe,
            done: false,
            connected: false,
        }
    }

    /// The request got its connection to the target (`reused`: from the keep-alive
    /// pool); counted once per pick, released with it.
    pub fn connected(&mut self, reused: bool) {
        if !self.connected && !self.done {
            self.connected = true;
            self.state.conns.acquire(reused);
        }
    }

    /// Whether this request is a half-open breaker probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records how the request ended (breaker, outlier detection, peak-EWMA latency for
    /// responses and timeouts) and releases the in-flight slot.
    pub fn finish(mut self, outcome: Outcome) {
        let p = &self.pool;
        if matches!(outcome, Outcome::Status(_) | Outcome::Timeout) {
            self.state.ewma.record(self.started.elapsed());
        }
        let breaker_failure = match outcome {
            Outcome::Status(s) => p
                .breaker
                .as_ref()
                .map_or(matches!(s, 500 | 502 | 503 | 504), |c| {
                    c.failure_statuses.contains(&s)
                }),
            _ => true,
        };
        self.state.breaker.record(
            breaker_failure,
            self.probe,
            p.breaker.as_ref(),
            self.addr,
            &p.name,
        );
        if let Some(cfg) = &p.outlier {
            let failure = !matches!(outcome, Outcome::Status(s) if s < 500);
            if self.state.outlier_result(failure, cfg) {
                p.try_eject(&self.state, cfg);
            }
        }
        self.probe = false;
        self.release();
    }

    /// Time since the target was chosen.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn release(&mut self) {
        if !self.done {
            self.done = true;
            self.state.in_flight.fetch_sub(1, Ordering::Relaxed);
            if self.connected {
                self.state.conns.release();
            }
            if self.probe {
                self.state.breaker.release_probe();
            }
        }
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dur, HealthCheckKind};

    fn hc(healthy: u32, unhealthy: u32) -> HealthCheckConfig {
        HealthCheckConfig {
            kind: HealthCheckKind::Tcp,
            path: "/health".into(),
            expected_statuses: vec![],
            host: None,
            interval: Dur::millis(10),
            timeout: Dur::millis(10),
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
            jitter: Dur::millis(0),
        }
    }

    fn fail() -> crate::upstream::health::ProbeError {
        crate::upstream::health::ProbeError::UnexpectedStatus(500)
    }

    #[test]
    fn health_thresholds_and_first_success() {
        let s = TargetState::new(SocketAddr::from(([127, 0, 0, 1], 9)));
        s.monitor(true);
        assert!(!s.is_available());
        let c = hc(2, 3);
        assert_eq!(s.record_probe(Ok("200".into()), &c), Some(true));
        assert_eq!(s.record_probe(Err(fail()), &c), None);
        assert_eq!(s.record_probe(Err(fail()), &c), None);
        assert_eq!(s.record_probe(Err(fail()), &c), Some(false));
        assert_eq!(s.record_probe(Ok("200".into()), &c), None);
        assert_eq!(s.record_probe(Ok("200".into()), &c), Some(true));
        assert!(s.is_available());
        s.set_healthy(false);
        s.unmonitor();
        assert!(s.is_available());
    }

    #[test]
    fn ejection_grows_and_is_capped() {
        let s = TargetState::new(SocketAddr::from(([127, 0, 0, 1], 9)));
        let c = OutlierConfig {
            consecutive_failures: 2,
            base_ejection: Dur::secs(30),
            max_ejection: Dur::secs(70),
            max_ejection_percent: 100,
        };
        assert!(!s.outlier_result(true, &c));
        assert!(s.outlier_result(true, &c));
        let now = clock::now();
        assert_eq!(s.eject(&c, now), Duration::from_secs(30));
        assert!(!s.is_available());
        assert!(s
            .available_in()
            .is_some_and(|d| d > Duration::from_secs(29)));
        assert_eq!(s.eject(&c, now), Duration::from_secs(60));
        assert_eq!(s.eject(&c, now), Duration::from_secs(70));
    }
}
