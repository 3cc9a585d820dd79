//! The answers of the auth plugins: 401 with a challenge (`WWW-Authenticate`), 403, and
//! the `gateway_auth_failures_total{reason}` count, from a fixed set of reasons.

use crate::{PluginMetrics, Reply};
use http::header::WWW_AUTHENTICATE;
use http::HeaderValue;

/// Why an authentication or authorization failed: the `reason` label of
/// `gateway_auth_failures_total` (a fixed set, so label cardinality stays bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No credential was sent.
    Missing,
    /// The credential is not well formed (bad base64, bad JSON, too long, a claim of
    /// the wrong type, `exp` absent).
    Malformed,
    /// The signature does not verify.
    BadSignature,
    /// The token's algorithm is not one its key is pinned to (`none`, HS/RS confusion).
    WrongAlgorithm,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    /// Authenticated, but a required scope or role is missing (403).
    InsufficientScope,
    /// No key has the token's `kid`.
    UnknownKey,
    /// A refresh token already used or revoked.
    Revoked,
    /// Wrong API key, user or password.
    BadCredentials,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::BadSignature => "bad_signature",
            Reason::WrongAlgorithm => "wrong_algorithm",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::UnknownKey => "unknown_key",
            Reason::Revoked => "revoked",
            Reason::BadCredentials => "bad_credentials",
        }
    }

    /// The answer's status: 403 when the caller is known but lacks a right.
    pub fn status(self) -> u16 {
        match self {
            Reason::InsufficientScope => 403,
            _ => 401,
        }
    }
}

/// Counts the failure and builds the answer: 401 `unauthorized` or 403 `forbidden`,
/// with `challenge` as `WWW-Authenticate` when given, blocked as `auth`.
pub fn deny(
    metrics: &PluginMetrics,
    reason: Reason,
    challenge: Option<String>,
    message: impl Into<String>,
) -> Reply {
    metrics
        .auth_failures
        .with_label_values(&[reason.as_str()])
        .inc();
    let status = reason.status();
    let kind = if status == 403 {
        "forbidden"
    } else {
        "unauthorized"
    };
    let mut reply = Reply::error(status, kind, message).blocked_as("auth");
    if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        reply = reply.with_header(WWW_AUTHENTICATE, v);
    }
    reply
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn deny_counts_and_challenges() {
        let m = PluginMetrics::unregistered();
        let r = deny(
            &m,
            Reason::Expired,
            Some("Bearer error=\"invalid_token\"".into()),
            "x",
        );
        assert_eq!(r.status, 401);
        assert_eq!(r.blocked, Some("auth"));
        assert_eq!(r.headers[0].0, WWW_AUTHENTICATE);
        assert_eq!(m.auth_failures.with_label_values(&["expired"]).get(), 1);
        assert_eq!(deny(&m, Reason::InsufficientScope, None, "x").status, 403);
    }
}
