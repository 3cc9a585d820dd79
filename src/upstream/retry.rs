//! Retry budget (retries allowed over a sliding 10 s window =
//! `min_per_second` × 10 + `ratio` × requests in the window) and the backoff between
//! tries (exponential with full jitter).

use super::clock;
use crate::config::{RetryBudgetConfig, RetryConfig};
use rand::Rng;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Length of the sliding window, in one-second buckets.
pub const WINDOW_SECS: u64 = 10;

#[derive(Debug, Default)]
struct Bucket {
    /// Second (since the process clock started) this bucket counts, plus one.
    sec: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

/// Per-pool retry budget. Lock-free; at a bucket's turn-over concurrent updates may
/// lose a count, which a budget can afford.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_per_second: u32,
    buckets: [Bucket; WINDOW_SECS as usize],
}

impl Default for RetryBudget {
    /// The default budget: ratio 0.2, 10 retries per second.
    fn default() -> Self {
        Self::new(&RetryBudgetConfig::default())
    }
}

impl RetryBudget {
    pub fn new(cfg: &RetryBudgetConfig) -> Self {
        let ratio = if cfg.ratio.is_finite() {
            cfg.ratio.max(0.0)
        } else {
            0.0
        };
        Self {
            ratio,
            min_per_second: cfg.min_per_second,
            buckets: Default::default(),
        }
    }

    fn bucket(&self, sec: u64) -> &Bucket {
        let b = &self.buckets[(sec % WINDOW_SECS) as usize];
        let tag = sec + 1;
        let old = b.sec.load(Ordering::Acquire);
        if old != tag
            && b.sec
                .compare_exchange(old, tag, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            b.requests.store(0, Ordering::Release);
            b.retries.store(0, Ordering::Release);
        }
        b
    }

    fn totals(&self, sec: u64) -> (u64, u64) {
        let oldest = (sec + 1).saturating_sub(WINDOW_SECS - 1);
        self.buckets
            .iter()
            .filter(|b| b.sec.load(Ordering::Acquire) >= oldest)
            .fold((0, 0), |(q, r), b| {
                (
                    q + b.requests.load(Ordering::Relaxed),
                    r + b.retries.load(Ordering::Relaxed),
                )
            })
    }

    /// Counts one first try.
    pub fn note_request(&self) {
        self.bucket(clock::now_secs())
            .requests
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Retries allowed in the current window.
    pub fn allowed(&self) -> u64 {
        let (requests, _) = self.totals(clock::now_secs());
        u64::from(self.min_per_second) * WINDOW_SECS + (self.ratio * requests as f64) as u64
    }

    /// Takes one retry when the window has room for it.
    pub fn try_retry(&self) -> bool {
        let sec = clock::now_secs();
        let b = self.bucket(sec);
        let (requests, retries) = self.totals(sec);
        let allowed =
            u64::from(self.min_per_second) * WINDOW_SECS + (self.ratio * requests as f64) as u64;
        if retries >= allowed {
            return false;
        }
        b.retries.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Requests, retries and allowed retries in the current window.
    pub fn snapshot(&self) -> Value {
        let (requests, retries) = self.totals(clock::now_secs());
        json!({ "window_requests": requests, "window_retries": retries, "allowed": self.allowed() })
    }
}

/// Wait before retry number `retry_no` (1 = the first retry; 0 counts as 1): a random
/// duration in `[0, min(max_backoff, backoff × 2^(retry_no-1))]` ("full jitter").
pub fn backoff(cfg: &RetryConfig, retry_no: u32) -> Duration {
    let exp = retry_no.saturating_sub(1).min(30);
    let cap = cfg
        .backoff
        .get()
        .saturating_mul(1u32 << exp)
        .min(cfg.max_backoff.get());
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dur;

    #[test]
    fn budget_holds() {
        let b = RetryBudget::new(&RetryBudgetConfig {
            ratio: 0.2,
            min_per_second: 1,
        });
        // 10 free retries in the window
        for _ in 0..10 {
            assert!(b.try_retry());
        }
        assert!(!b.try_retry());
        for _ in 0..100 {
            b.note_request();
        }
        // + 20% of 100 requests
        for _ in 0..20 {
            assert!(b.try_retry());
        }
        assert!(!b.try_retry());
        assert_eq!(b.allowed(), 30);
    }

    #[test]
    fn zero_budget_refuses_and_bad_ratio_is_safe() {
        let b = RetryBudget::new(&RetryBudgetConfig {
            ratio: f64::NAN,
            min_per_second: 0,
        });
        b.note_request();
        assert!(!b.try_retry());
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let cfg = RetryConfig {
            attempts: 5,
            backoff: Dur::millis(100),
            max_backoff: Dur::millis(300),
            on: vec![],
            budget: RetryBudgetConfig::default(),
        };
        for n in 0..40 {
            let d = backoff(&cfg, n);
            let cap = match n {
                0 | 1 => 100,
                2 => 200,
                _ => 300,
            };
            assert!(d <= Duration::from_millis(cap), "{n}: {d:?}");
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| backoff(&cfg, 3)).collect();
        assert!(distinct.len() > 1);
    }
}
