//! Peak-EWMA latency (Finagle/Linkerd): a sample above the average replaces it at once
//! (the peak), samples below decay into it with time constant `TAU` (10 s).

use super::clock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Decay time constant.
pub const TAU: Duration = Duration::from_secs(10);

/// Latency estimate of one target, in nanoseconds; 0 until the first sample.
#[derive(Debug, Default)]
pub struct PeakEwma {
    value: AtomicU64,
    stamp: AtomicU64,
}

impl PeakEwma {
    /// Current estimate in nanoseconds (0 = no sample yet).
    pub fn get(&self) -> f64 {
        f64::from_bits(self.value.load(Ordering::Relaxed))
    }

    /// Feeds one latency sample. Concurrent updates may lose one another's sample,
    /// which an estimate can afford.
    pub fn record(&self, sample: Duration) {
        let now = clock::now();
        let s = sample.as_nanos() as f64;
        let prev = self.get();
        let last = self.stamp.swap(now, Ordering::Relaxed);
        let next = if prev == 0.0 || s > prev {
            s
        } else {
            let dt = now.saturating_sub(last) as f64;
            let w = (-dt / TAU.as_nanos() as f64).exp();
            prev * w + s * (1.0 - w)
        };
        self.value.store(next.to_bits(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_at_once_and_decays_slowly() {
        let e = PeakEwma::default();
        assert_eq!(e.get(), 0.0);
        e.record(Duration::from_millis(10));
        assert_eq!(e.get(), 10_000_000.0);
        e.record(Duration::from_millis(100));
        assert_eq!(e.get(), 100_000_000.0);
        std::thread::sleep(Duration::from_millis(20));
        e.record(Duration::from_millis(1));
        let v = e.get();
        assert!(v < 100_000_000.0 && v > 90_000_000.0, "{v}");
    }
}
