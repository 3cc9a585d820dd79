//! Sliding window (a weighted pair of fixed windows, as Cloudflare and nginx-style
//! limiters do): at most `average` requests in any window of `period`, estimated as
//! the current window's count plus the previous window's count weighted by how much of
//! it the sliding window still covers.

use super::Decision;
use std::time::Duration;

/// The limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sliding {
    pub limit: u64,
    pub period_us: u64,
}

/// One key's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Index of the current fixed window (`now / period`).
    pub index: u64,
    pub previous: u64,
    pub current: u64,
}

impl Sliding {
    pub fn new(average: u64, period: Duration) -> Self {
        Self {
            limit: average.max(1),
            period_us: u64::try_from(period.as_micros()).unwrap_or(u64::MAX).max(1),
        }
    }

    /// Decides one request at `now`, updating `w`.
    pub fn decide(&self, w: &mut Window, now: u64) -> Decision {
        let index = now / self.period_us;
        let elapsed = now % self.period_us;
        if w.index != index {
            w.previous = if w.index + 1 == index { w.current } else { 0 };
            w.current = 0;
            w.index = index;
        }
        let allowed = self.estimate(w.previous, w.current, elapsed) + 1.0 <= self.limit as f64;
        if allowed {
            w.current += 1;
        }
        self.outcome(allowed, w.previous, w.current, elapsed)
    }

    fn estimate(&self, previous: u64, current: u64, elapsed: u64) -> f64 {
        let weight = (self.period_us - elapsed) as f64 / self.period_us as f64;
        previous as f64 * weight + current as f64
    }

    /// The decision from the counts after it (also what the Redis script returns).
    pub fn outcome(&self, allowed: bool, previous: u64, current: u64, elapsed: u64) -> Decision {
        let elapsed = elapsed.min(self.period_us);
        let est = self.estimate(previous, current, elapsed);
        let remaining = (self.limit as f64 - est).floor().max(0.0) as u64;
        let left = self.period_us - elapsed;
        let retry_after = if allowed {
            0
        } else {
            self.wait(previous, current, elapsed)
        };
        Decision {
            allowed,
            remaining,
            reset: Duration::from_micros(left),
            retry_after: Duration::from_micros(retry_after),
        }
    }

    /// How long until one more request fits.
    fn wait(&self, previous: u64, current: u64, elapsed: u64) -> u64 {
        let p = self.period_us as f64;
        let room = self.limit as f64 - 1.0;
        let left = (self.period_us - elapsed) as f64;
        if (current as f64) <= room && previous > 0 {
            // within this window, once the previous one's weight has dropped enough
            let need = left - (room - current as f64) * p / previous as f64;
            return need.ceil().max(1.0) as u64;
        }
        // in the next window, the current count becomes the weighted previous one
        let into_next = if current == 0 {
            0.0
        } else {
            (p - room * p / current as f64).max(0.0)
        };
        (left + into_next).ceil() as u64
    }

    /// Both windows are over: the key counts nothing.
    pub fn idle(&self, w: &Window, now: u64) -> bool {
        now / self.period_us > w.index + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_limit_per_window_then_slides() {
        let s = Sliding::new(4, Duration::from_secs(1));
        let mut w = Window::default();
        let t0 = 10_000_000; // start of a window
        for i in 0..4 {
            let d = s.decide(&mut w, t0 + i);
            assert!(d.allowed);
            assert_eq!(d.remaining, 3 - i);
        }
        let d = s.decide(&mut w, t0 + 10);
        assert!(!d.allowed);
        assert!(d.retry_after > Duration::from_millis(900), "{d:?}");
        // half-way into the next window the previous 4 weigh 2: two more fit
        let mid = t0 + 1_500_000;
        assert!(s.decide(&mut w, mid).allowed);
        assert!(s.decide(&mut w, mid).allowed);
        let d = s.decide(&mut w, mid);
        assert!(!d.allowed);
        assert!(d.retry_after <= Duration::from_millis(250), "{d:?}");
        assert!(s.idle(&w, t0 + 3_000_000));
    }
}
