//! Rate-limit response headers: `RateLimit-Policy` and `RateLimit` in the syntax of
//! draft-ietf-httpapi-ratelimit-headers-11, and the common `X-RateLimit-*` trio.

use super::Decision;
use http::{HeaderName, HeaderValue};
use std::time::Duration;

pub const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Whole seconds, rounded up.
pub fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A structured-field string (`"name"`), quotes and backslashes escaped; characters
/// outside printable ASCII become `_`.
pub(crate) fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    out
}

/// The values that do not change between requests.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// `"name"` as a structured-field string.
    name: String,
    policy: HeaderValue,
    limit: HeaderValue,
}

impl Fixed {
    /// `quota` requests per `window`, under `name`.
    pub fn new(name: &str, quota: u64, window: Duration) -> Self {
        let name = sf_string(name);
        let w = secs_ceil(window).max(1);
        let policy = HeaderValue::from_str(&format!("{name};q={quota};w={w}"))
            .unwrap_or_else(|_| HeaderValue::from_static("\"default\""));
        Self {
            name,
            policy,
            limit: HeaderValue::from(quota),
        }
    }

    /// The five headers for one decision.
    pub fn for_decision(&self, d: &Decision) -> [(HeaderName, HeaderValue); 5] {
        let reset = secs_ceil(d.reset);
        let rl = HeaderValue::from_str(&format!("{};r={};t={}", self.name, d.remaining, reset))
            .unwrap_or_else(|_| HeaderValue::from_static("\"default\""));
        [
            (POLICY, self.policy.clone()),
            (RATELIMIT, rl),
            (X_LIMIT, self.limit.clone()),
            (X_REMAINING, HeaderValue::from(d.remaining)),
            (X_RESET, HeaderValue::from(reset)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_11_syntax() {
        let f = Fixed::new("default", 100, Duration::from_secs(60));
        let d = Decision {
            allowed: true,
            remaining: 57,
            reset: Duration::from_millis(11_200),
            retry_after: Duration::ZERO,
        };
        let h = f.for_decision(&d);
        assert_eq!(h[0].1, "\"default\";q=100;w=60");
        assert_eq!(h[1].1, "\"default\";r=57;t=12");
        assert_eq!(h[2].1, "100");
        assert_eq!(h[3].1, "57");
        assert_eq!(h[4].1, "12");
        assert_eq!(sf_string("a\"b"), "\"a\\\"b\"");
    }
}
