//! The local store: buckets in this process, sharded (`DashMap`) so that concurrent
//! requests rarely meet on a lock, bounded to `max_keys` with idle keys (a full
//! bucket, an empty window: forgetting them changes nothing) swept out.

use super::gcra::Gcra;
use super::sliding::{Sliding, Window};
use super::Decision;
use dashmap::DashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Microseconds on this process's monotonic clock (never 0).
pub fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX) + 1_000_000
}

/// The buckets of one scope (a route, or a `policy` shared by routes). Kept in
/// `Shared`, so they outlive reloads; the limits come from the plugin instance at each
/// decision, so a changed limit applies to existing buckets.
#[derive(Default)]
pub struct LocalStore {
    tats: DashMap<Box<str>, AtomicU64>,
    windows: DashMap<Box<str>, Window>,
    last_sweep: AtomicU64,
    full_logged: AtomicBool,
}

/// Keys are swept at least this often (µs) when new ones arrive.
const SWEEP_EVERY_US: u64 = 10_000_000;

impl LocalStore {
    /// How many keys this store holds (both algorithms).
    fn len(&self) -> usize {
        self.tats.len() + self.windows.len()
    }

    pub fn gcra(&self, g: &Gcra, key: &str, max_keys: usize) -> Decision {
        let now = now_us();
        if let Some(cell) = self.tats.get(key) {
            let mut tat = cell.load(Ordering::Acquire);
            loop {
                let (d, next) = g.decide(tat, now);
                let Some(next) = next else { return d };
                match cell.compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return d,
                    Err(seen) => tat = seen,
                }
            }
        }
        if !self.room_for_one(max_keys, now, |s| {
            s.tats
                .retain(|_, t| !Gcra::idle(t.load(Ordering::Relaxed), now))
        }) {
            return g.decide(0, now).0;
        }
        let entry = self.tats.entry(key.into()).or_insert(AtomicU64::new(0));
        let tat = entry.load(Ordering::Acquire);
        let (d, next) = g.decide(tat, now);
        if let Some(next) = next {
            entry.store(next, Ordering::Release);
        }
        d
    }

    pub fn sliding(&self, s: &Sliding, key: &str, max_keys: usize) -> Decision {
        let now = now_us();
        if let Some(mut w) = self.windows.get_mut(key) {
            return s.decide(&mut w, now);
        }
        if !self.room_for_one(max_keys, now, |st| {
            st.windows.retain(|_, w| !s.idle(w, now))
        }) {
            return s.decide(&mut Window::default(), now);
        }
        let mut w = self.windows.entry(key.into()).or_default();
        s.decide(&mut w, now)
    }

    /// Before a new key: sweeps idle keys now and then, and when the store is full.
    /// `false`: still full of active keys; the request is decided as a fresh key's
    /// without being stored (memory stays bounded; logged once).
    fn room_for_one(&self, max_keys: usize, now: u64, sweep: impl Fn(&Self)) -> bool {
        let last = self.last_sweep.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) > SWEEP_EVERY_US;
        if (due || self.len() >= max_keys)
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            sweep(self);
        }
        if self.len() < max_keys {
            return true;
        }
        if !self.full_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max_keys,
                "rate_limit: local store is full of active keys; new keys are not tracked"
            );
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_are_per_key_and_bounded() {
        let st = LocalStore::default();
        let g = Gcra::new(1, 2, Duration::from_secs(3600));
        assert!(st.gcra(&g, "a", 10).allowed);
        assert!(st.gcra(&g, "a", 10).allowed);
        assert!(!st.gcra(&g, "a", 10).allowed);
        assert!(st.gcra(&g, "b", 10).allowed);
        assert_eq!(st.len(), 2);
        // full of active keys: new keys are decided but not kept
        let st = LocalStore::default();
        for i in 0..5 {
            st.gcra(&g, &format!("k{i}"), 3);
        }
        assert_eq!(st.len(), 3);
        // idle keys are swept to make room
        let quick = Gcra::new(1000, 1, Duration::from_millis(1));
        let st = LocalStore::default();
        for i in 0..3 {
            st.gcra(&quick, &format!("k{i}"), 3);
        }
        std::thread::sleep(Duration::from_millis(5));
        assert!(st.gcra(&quick, "new", 3).allowed);
        assert_eq!(st.len(), 1);
    }

    #[test]
    fn sliding_windows_are_kept_too() {
        let st = LocalStore::default();
        let s = Sliding::new(2, Duration::from_secs(3600));
        assert!(st.sliding(&s, "a", 10).allowed);
        assert!(st.sliding(&s, "a", 10).allowed);
        assert!(!st.sliding(&s, "a", 10).allowed);
    }
}
