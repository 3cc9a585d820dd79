//! One retry policy for every caller of a pool (the proxy and the flows' steps): which
//! failures of a try may be tried again, given the pool's `retry` settings. Tries left,
//! the retry budget and whether the request can be replayed are the caller's to check.

use crate::config::{RetryConfig, RetryKind, RetryOn};

/// How one try failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Nothing reached the target.
    Connect,
    /// No answer in time.
    Timeout,
    /// The connection broke (a reset, a closed stream).
    Reset,
    /// The target answered this status.
    Status(u16),
}

/// Whether `m` may be sent twice without asking (RFC 9110 §9.2.2): GET, HEAD, OPTIONS,
/// PUT, DELETE, TRACE. Other methods are replayable only when the route sets
/// `retry_non_idempotent`.
pub fn idempotent(m: &http::Method) -> bool {
    matches!(
        *m,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::OPTIONS
            | http::Method::PUT
            | http::Method::DELETE
            | http::Method::TRACE
    )
}

/// A pool's retry policy (`upstreams.<name>.retry`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy<'a> {
    cfg: Option<&'a RetryConfig>,
}

impl<'a> RetryPolicy<'a> {
    pub fn new(cfg: Option<&'a RetryConfig>) -> Self {
        Self { cfg }
    }

    /// Tries in all, the first included (1 without a policy).
    pub fn attempts(&self) -> u32 {
        self.cfg.map_or(1, |r| r.attempts.max(1))
    }

    /// Whether `retry.on` lists this failure.
    pub fn lists(&self, failed: Failed) -> bool {
        let on = match failed {
            Failed::Connect => return true,
            Failed::Timeout => RetryOn::Kind(RetryKind::Timeout),
            Failed::Reset => RetryOn::Kind(RetryKind::Reset),
            Failed::Status(s) => RetryOn::Status(s),
        };
        self.cfg.is_some_and(|r| r.on.contains(&on))
    }

    /// Whether a try that failed so may be tried again: a connect failure always (the
    /// target got nothing); anything else when `retry.on` lists it and the request may
    /// be sent twice (`replayable`: idempotent, or `retry_non_idempotent`).
    pub fn retries(&self, failed: Failed, replayable: bool) -> bool {
        failed == Failed::Connect || (replayable && self.lists(failed))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn what_is_tried_again() {
        let cfg: RetryConfig = serde_yaml::from_str("{ attempts: 3, on: [timeout, 503] }").unwrap();
        let p = RetryPolicy::new(Some(&cfg));
        assert_eq!(p.attempts(), 3);
        assert!(p.retries(Failed::Connect, false));
        assert!(p.retries(Failed::Timeout, true));
        assert!(!p.retries(Failed::Timeout, false));
        assert!(p.retries(Failed::Status(503), true));
        assert!(!p.retries(Failed::Status(502), true));
        assert!(!p.retries(Failed::Reset, true));
        let none = RetryPolicy::new(None);
        assert_eq!(none.attempts(), 1);
        assert!(!none.lists(Failed::Status(503)));
    }
}
