//! GCRA (the generic cell rate algorithm): a token bucket of `burst` refilled with
//! `average` tokens per `period`, kept as one number per key, the *theoretical arrival
//! time* (TAT): the instant at which the bucket would be full again.

use super::Decision;
use std::time::Duration;

/// The limit, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Time for one token to come back (`period / average`).
    pub interval_us: u64,
    /// Time for the whole bucket to come back (`interval × burst`).
    pub capacity_us: u64,
}

impl Gcra {
    pub fn new(average: u64, burst: u64, period: Duration) -> Self {
        let period_us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        let interval_us = (period_us / average.max(1)).max(1);
        Self {
            interval_us,
            capacity_us: interval_us.saturating_mul(burst.max(1)),
        }
    }

    /// Decides one request for a key whose TAT is `tat` (`0` for a new key) at `now`;
    /// returns the decision and, when admitted, the new TAT to store.
    pub fn decide(&self, tat: u64, now: u64) -> (Decision, Option<u64>) {
        let base = tat.max(now);
        let ahead = base + self.interval_us - now;
        if ahead <= self.capacity_us {
            (self.outcome(true, ahead), Some(base + self.interval_us))
        } else {
            (self.outcome(false, base - now), None)
        }
    }

    /// The decision from how far ahead of `now` the TAT is after it: the stored TAT
    /// when admitted, the unchanged one when refused (also what the Redis script
    /// returns).
    pub fn outcome(&self, allowed: bool, ahead_us: u64) -> Decision {
        let remaining = self.capacity_us.saturating_sub(ahead_us) / self.interval_us;
        let retry_after = if allowed {
            Duration::ZERO
        } else {
            Duration::from_micros((ahead_us + self.interval_us).saturating_sub(self.capacity_us))
        };
        Decision {
            allowed,
            remaining,
            reset: Duration::from_micros(ahead_us),
            retry_after,
        }
    }

    /// A key whose TAT is in the past has a full bucket: forgetting it changes nothing.
    pub fn idle(tat: u64, now: u64) -> bool {
        tat <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_key_gets_burst_then_average_per_period() {
        // 10 per second, burst 5: interval 100ms
        let g = Gcra::new(10, 5, Duration::from_secs(1));
        let mut tat = 0;
        let now = 1_000_000;
        for i in 0..5 {
            let (d, t) = g.decide(tat, now);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 4 - i);
            tat = t.unwrap();
        }
        let (d, t) = g.decide(tat, now);
        assert!(!d.allowed);
        assert!(t.is_none());
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Duration::from_millis(100));
        assert_eq!(d.reset, Duration::from_millis(500));
        // one token back after 100ms, not two
        let (d, t) = g.decide(tat, now + 100_000);
        assert!(d.allowed);
        tat = t.unwrap();
        assert!(!g.decide(tat, now + 100_000).0.allowed);
        // a full period later the whole burst is back
        let later = now + 2_000_000;
        assert!(Gcra::idle(tat, later));
        assert_eq!(g.decide(tat, later).0.remaining, 4);
    }

    #[test]
    fn a_changed_limit_applies_to_the_stored_tat() {
        let small = Gcra::new(1, 1, Duration::from_secs(1));
        let (_, tat) = small.decide(0, 10_000_000);
        let tat = tat.unwrap();
        assert!(!small.decide(tat, 10_000_000).0.allowed);
        // the stored TAT is a debt in time: under a faster refill it is paid sooner
        assert!(!small.decide(tat, 10_200_000).0.allowed);
        let big = Gcra::new(10, 10, Duration::from_secs(1));
        assert!(big.decide(tat, 10_200_000).0.allowed);
    }
}
