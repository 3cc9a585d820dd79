//! Answers a plugin gives instead of proxying, and the typed failure of a plugin whose
//! dependency (Redis, an HTTP endpoint) let it down.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

/// A response a plugin gives instead of proxying.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: ReplyBody,
    /// The `reason` label of `gateway_requests_blocked_total` (e.g. `auth`,
    /// `rate_limited`); `None` for answers that block nothing (a CORS preflight).
    pub blocked: Option<&'static str>,
}

/// The body of a [`Reply`].
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// The gateway's JSON error (`{"error": kind, "message", "request_id"}`), with
    /// extra members (e.g. the list of validation errors) when given.
    Error {
        kind: &'static str,
        message: String,
        details: Option<serde_json::Value>,
    },
    /// A JSON document as it is.
    Json(serde_json::Value),
    /// Bytes with their content type (`None`: no body, no Content-Type).
    Raw(Option<HeaderValue>, Bytes),
}

impl Reply {
    /// A JSON error that counts as a blocked request under `kind`.
    pub fn error(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Error {
                kind,
                message: message.into(),
                details: None,
            },
            blocked: Some(kind),
        }
    }

    /// An empty answer (e.g. `204` to a CORS preflight); blocks nothing.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Raw(None, Bytes::new()),
            blocked: None,
        }
    }

    /// A JSON answer; blocks nothing.
    pub fn json(status: u16, v: serde_json::Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(v),
            blocked: None,
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the `reason` label for `gateway_requests_blocked_total`.
    pub fn blocked_as(mut self, reason: &'static str) -> Self {
        self.blocked = Some(reason);
        self
    }

    /// Adds members to the JSON error body (ignored for other bodies).
    pub fn with_details(mut self, v: serde_json::Value) -> Self {
        if let ReplyBody::Error { details, .. } = &mut self.body {
            *details = Some(v);
        }
        self
    }
}

/// What went wrong in a plugin, beyond a decision about the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A dependency is unreachable or timed out (fail-closed plugins): 503.
    Unavailable,
    /// A bug or an impossible state: 500.
    Internal,
}

/// A plugin could not decide: the gateway answers 503 (`Unavailable`, with
/// `Retry-After`) or 500 (`Internal`) with the JSON error, and logs the cause.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}`: {message}")]
pub struct PluginFailure {
    pub plugin: &'static str,
    pub kind: FailureKind,
    pub message: String,
    /// Seconds for `Retry-After` (503 only).
    pub retry_after: Option<u64>,
}

impl PluginFailure {
    pub fn unavailable(plugin: &'static str, message: impl Into<String>) -> Self {
        Self {
            plugin,
            kind: FailureKind::Unavailable,
            message: message.into(),
            retry_after: Some(1),
        }
    }

    pub fn internal(plugin: &'static str, message: impl Into<String>) -> Self {
        Self {
            plugin,
            kind: FailureKind::Internal,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The status the gateway answers with.
    pub fn status(&self) -> u16 {
        match self.kind {
            FailureKind::Unavailable => 503,
            FailureKind::Internal => 500,
        }
    }
}
