//! A monotonic process clock in nanoseconds, so deadlines fit in atomics. `now()` is
//! never 0 (0 means "no deadline" in the atomics that store these values).

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the first call in this process, plus one.
pub fn now() -> u64 {
    let e = EPOCH.get_or_init(Instant::now);
    u64::try_from(e.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

/// Whole seconds of [`now`].
pub fn now_secs() -> u64 {
    now() / 1_000_000_000
}
