//! One call of a flow step through an upstream pool, like a proxied request: a POST of
//! JSON through [`crate::upstream::call`] (balancing, health, breakers, the pool's
//! timeouts, retry policy and TLS); a non-2xx answer is the step's failure.

use crate::upstream::call::{self, CallError};
use crate::upstream::Pool;
use bytes::Bytes;
use std::time::Duration;

pub use crate::upstream::call::Clients;

/// A step's call.
pub struct Call<'a> {
    pub pool: &'a Pool,
    pub path: &'a str,
    pub body: Bytes,
    pub request_id: &'a str,
    /// W3C `traceparent` sent to the target.
    pub traceparent: Option<&'a str>,
    /// Statuses and timeouts may be retried (the step is idempotent, or the route
    /// allows retrying non-idempotent requests); connect failures always may.
    pub retry_unsafe: bool,
}

/// A step's successful answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// No target could take the request (all down, breakers open).
    NoTarget(Duration),
    /// The target could not be reached.
    Connect(String),
    /// The target did not answer within the pool's timeouts.
    Timeout,
    /// The target answered this non-2xx status (with the start of its body).
    Status(u16, String),
    /// Another transport error.
    Other(String),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::NoTarget(_) => write!(f, "no healthy target"),
            StepError::Connect(e) => write!(f, "cannot connect: {e}"),
            StepError::Timeout => write!(f, "no answer in time"),
            StepError::Status(s, _) => write!(f, "answered {s}"),
            StepError::Other(e) => write!(f, "{e}"),
        }
    }
}

impl StepError {
    /// The label of `gateway_route_errors_total{error_type}`.
    pub fn error_type(&self) -> &'static str {
        match self {
            StepError::NoTarget(_) => "no_healthy_target",
            StepError::Connect(_) => "connect_failure",
            StepError::Timeout => "timeout",
            StepError::Status(..) => "upstream_status",
            StepError::Other(_) => "upstream_error",
        }
    }
}

/// Largest step answer read.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The pool call of a step: a POST of JSON with the request's id and trace.
fn request(c: Call<'_>) -> call::Request<'_> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(c.request_id) {
        headers.insert("x-request-id", v);
    }
    if let Some(tp) = c
        .traceparent
        .and_then(|t| http::HeaderValue::from_str(t).ok())
    {
        headers.insert("traceparent", tp);
    }
    call::Request {
        pool: c.pool,
        method: http::Method::POST,
        path: c.path,
        headers,
        body: c.body,
        retry_unsafe: c.retry_unsafe,
        max_answer_body: MAX_ANSWER,
        http2: false,
    }
}

fn step_error(e: CallError) -> StepError {
    match e {
        CallError::NoTarget(after) => StepError::NoTarget(after),
        CallError::Connect(e) => StepError::Connect(e),
        CallError::Timeout => StepError::Timeout,
        e @ (CallError::TooLarge(_) | CallError::Invalid(_) | CallError::Other(_)) => {
            StepError::Other(e.to_string())
        }
    }
}

/// A whole answer: 2xx is the step's answer, anything else its failure.
fn whole(answer: call::Answer) -> Result<Answer, StepError> {
    if (200..300).contains(&answer.status) {
        return Ok(Answer {
            status: answer.status,
            body: answer.body,
        });
    }
    let text = String::from_utf8_lossy(&answer.body[..answer.body.len().min(512)]).into_owned();
    Err(StepError::Status(answer.status, text))
}

/// Calls the step, retrying as the pool's policy allows.
pub async fn call(clients: &Clients, c: Call<'_>) -> Result<Answer, StepError> {
    let answer = call::call(clients, request(c)).await.map_err(step_error)?;
    whole(answer)
}

/// What [`open`] got: a 2xx `text/event-stream` answer to read as it comes, or a
/// whole 2xx answer.
pub enum Opened {
    Stream(reqwest::Response),
    Whole(Answer),
}

/// Calls the step as [`call`] does, but a 2xx `text/event-stream` answer is handed
/// back once its head arrived (see [`call::open`]).
pub async fn open(clients: &Clients, c: Call<'_>) -> Result<Opened, StepError> {
    match call::open(clients, request(c)).await.map_err(step_error)? {
        call::Opened::Stream(resp) => Ok(Opened::Stream(resp)),
        call::Opened::Whole(a) => whole(a).map(Opened::Whole),
    }
}
