//! Token windows in this process: per key, tokens used since the window's start (its
//! first charge), the window lasting `period`. Kept in `Shared` across reloads; bounded
//! by `max_keys` (expired windows go first, then the oldest).

use crate::policy::rate_limit::local::now_us;
use dashmap::DashMap;
use std::time::Duration;

#[derive(Default)]
pub(super) struct LocalWindows {
    /// key → (window start, µs of the process clock; tokens used)
    map: DashMap<String, (u64, u64)>,
}

impl LocalWindows {
    /// Adds `n` tokens to `key` (0: reads); `(used, time left in the window)`.
    pub(super) fn apply(
        &self,
        key: &str,
        n: u64,
        window: Duration,
        max_keys: usize,
    ) -> (u64, Duration) {
        let now = now_us();
        let w = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
        if n == 0 {
            return match self.map.get(key) {
                Some(e) if now < e.0.saturating_add(w) => {
                    (e.1, Duration::from_micros(e.0 + w - now))
                }
                _ => (0, window),
            };
        }
        if self.map.len() >= max_keys && !self.map.contains_key(key) {
            self.evict(now, w, max_keys);
        }
        let mut e = self.map.entry(key.to_string()).or_insert((now, 0));
        if now >= e.0.saturating_add(w) {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(n);
        (
            e.1,
            Duration::from_micros(e.0.saturating_add(w).saturating_sub(now)),
        )
    }

    fn evict(&self, now: u64, w: u64, max_keys: usize) {
        self.map.retain(|_, e| now < e.0.saturating_add(w));
        while self.map.len() >= max_keys {
            let oldest = self
                .map
                .iter()
                .min_by_key(|e| e.value().0)
                .map(|e| e.key().clone());
            match oldest {
                Some(k) => {
                    self.map.remove(&k);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_read_and_expire() {
        let w = LocalWindows::default();
        let hour = Duration::from_secs(3600);
        assert_eq!(w.apply("a", 0, hour, 10).0, 0);
        assert_eq!(w.apply("a", 30, hour, 10).0, 30);
        assert_eq!(w.apply("a", 12, hour, 10).0, 42);
        let (used, left) = w.apply("a", 0, hour, 10);
        assert_eq!(used, 42);
        assert!(left <= hour && left > Duration::from_secs(3590));
        // a window that has passed starts again
        let tiny = Duration::from_micros(1);
        w.apply("b", 5, tiny, 10);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(w.apply("b", 0, tiny, 10).0, 0);
        assert_eq!(w.apply("b", 1, tiny, 10).0, 1);
        // bounded
        for i in 0..20 {
            w.apply(&format!("k{i}"), 1, hour, 10);
        }
        assert!(w.map.len() <= 10);
    }
}
