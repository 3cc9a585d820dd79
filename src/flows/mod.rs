//! The seed's two flows through both backends, each answering by itself rather than
//! proxying: the synchronous pipeline ([`pipeline`]) and async jobs ([`jobs`]: submit,
//! status, workers, store, webhooks). The proxy phases only dispatch a flow route here
//! after the route's plugins ran (see `proxy/flow.rs`); a flow gets the whole body and
//! returns a [`FlowAnswer`], which the gateway writes through its answer path (so the
//! response phase and logging run as for any answer).

pub mod jobs;
pub mod pipeline;
pub mod sse;
pub mod step;
pub mod stream;

use http::{HeaderName, HeaderValue};
use serde_json::Value;
use std::sync::Arc;

/// What a compiled route does.
pub enum RouteKind {
    /// Proxy to the route's pool (or answer its fallback).
    Proxy,
    /// Call the steps in order and answer the combined result.
    Pipeline(Arc<pipeline::Pipeline>),
    /// Accept a job (202) and run it later.
    AsyncJob(Arc<jobs::SubmitRoute>),
    /// Answer a job's state.
    JobStatus,
    /// Stream a job's state changes (`jobs:` on a path ending in `/{job_id}/events`).
    JobEvents,
}

impl RouteKind {
    /// The pools this route calls, for readiness.
    pub fn pools(&self) -> Vec<&Arc<crate::upstream::Pool>> {
        match self {
            RouteKind::Pipeline(p) => p.steps.iter().map(|s| &s.pool).collect(),
            RouteKind::AsyncJob(a) => vec![&a.generation.pool, &a.enrichment.pool],
            RouteKind::Proxy | RouteKind::JobStatus | RouteKind::JobEvents => Vec::new(),
        }
    }
}

/// A flow's answer.
pub struct FlowAnswer {
    pub status: u16,
    pub body: AnswerBody,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `gateway_route_errors_total{error_type}` label for failures.
    pub error_type: Option<&'static str>,
    /// The upstream a failure came from (`backend` label).
    pub backend: Option<String>,
}

/// The body of a flow's answer.
pub enum AnswerBody {
    Json(Value),
    /// The gateway's JSON error (the request id is added when written).
    Error {
        kind: &'static str,
        message: String,
        details: Option<Value>,
    },
}

impl FlowAnswer {
    pub fn json(status: u16, v: Value) -> Self {
        Self {
            status,
            body: AnswerBody::Json(v),
            headers: Vec::new(),
            error_type: None,
            backend: None,
        }
    }

    pub fn error(
        status: u16,
        kind: &'static str,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> Self {
        Self {
            status,
            body: AnswerBody::Error {
                kind,
                message: message.into(),
                details,
            },
            headers: Vec::new(),
            error_type: None,
            backend: None,
        }
    }

    pub fn with_error_type(mut self, t: &'static str) -> Self {
        self.error_type = Some(t);
        self
    }

    pub fn with_backend(mut self, b: &str) -> Self {
        self.backend = Some(b.to_string());
        self
    }

    pub fn with_header(mut self, k: HeaderName, v: HeaderValue) -> Self {
        self.headers.push((k, v));
        self
    }
}
