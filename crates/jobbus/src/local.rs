//! A backend stage runs a job through the service's own HTTP router, in process
//! (no socket): the same validation, cache, queue, metrics and access log as
//! `POST /generate` or `POST /enrich` from a client.

use crate::stage::StageError;
use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use serde_json::Value;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// What the router answered.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub took: Duration,
}

/// POSTs `body` to `path` on `router`. 2xx → the answer; 4xx (except 408 and 429) →
/// [`StageError::Rejected`] with the service's message; anything else →
/// [`StageError::Failed`] (tried again).
pub async fn post(
    router: &Router,
    path: &str,
    request_id: &str,
    body: &Value,
) -> Result<Answer, StageError> {
    let started = Instant::now();
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if !request_id.is_empty() {
        req = req.header("x-request-id", request_id);
    }
    let req = req
        .body(Body::from(body.to_string()))
        .map_err(|e| StageError::Failed(e.to_string()))?;
    let resp = router
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| StageError::Failed(e.to_string()))?;
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .map_err(|e| StageError::Failed(format!("cannot read the answer: {e}")))?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(Answer {
            status,
            body,
            took: started.elapsed(),
        });
    }
    let msg = body["message"].as_str().map_or_else(
        || format!("answered {status}"),
        |m| format!("answered {status}: {m}"),
    );
    if (400..500).contains(&status) && status != 408 && status != 429 {
        Err(StageError::Rejected(msg))
    } else {
        Err(StageError::Failed(msg))
    }
}

/// The step report of a stage's answer.
pub fn step(name: &str, service: &str, a: &Answer) -> crate::StepReport {
    crate::StepReport {
        name: name.to_owned(),
        upstream: service.to_owned(),
        status: Some(a.status),
        duration_ms: (a.took.as_secs_f64() * 1_000_000.0).round() / 1000.0,
    }
}
