//! The synchronous pipeline (`pipeline:` routes): the client's body goes to the first
//! step; each later step gets `{"text": <the previous answer's "text">}`. The answer is
//! `{"result": <last answer>, "<step name>": <its answer>..., "steps": [{"name",
//! "upstream", "status", "duration_ms"}]}`, so the seed's generation → enrichment
//! flow answers `{"result", "generation", "steps"}`.

use super::step::{self, Call, Clients, StepError};
use super::FlowAnswer;
use crate::upstream::Pool;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A compiled step.
pub struct Step {
    pub name: String,
    pub upstream: String,
    pub pool: Arc<Pool>,
    pub path: String,
}

/// A compiled pipeline route.
pub struct Pipeline {
    pub steps: Vec<Step>,
    /// The route's total time (`timeout`) → 504.
    pub timeout: Option<Duration>,
    /// Steps may be retried on statuses and timeouts (`retry_non_idempotent`).
    pub retry_unsafe: bool,
    /// A streamed first step silent this long fails the stream (`stream_idle_timeout`;
    /// default: the pool's `timeouts.read`).
    pub stream_idle_timeout: Option<Duration>,
}

/// What one step did: an entry of the answer's `steps`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// The upstream pool it called.
    pub upstream: String,
    /// The status it answered; null when it gave none (not reached, timed out).
    pub status: Option<u16>,
    /// Time the step took, in milliseconds.
    pub duration_ms: f64,
}

pub(super) fn report(s: &Step, status: Option<u16>, took: Duration) -> Value {
    let r = StepReport {
        name: s.name.clone(),
        upstream: s.upstream.clone(),
        status,
        duration_ms: (took.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
    };
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// The outcome of a whole run, also used by async jobs.
pub enum RunError {
    /// Step `name` (index `i`) failed.
    Step {
        index: usize,
        name: String,
        upstream: String,
        error: StepError,
        steps: Vec<Value>,
    },
    /// A step answered something the next step cannot take.
    BadAnswer {
        name: String,
        message: String,
        steps: Vec<Value>,
    },
}

/// Told before each step starts (async jobs record their stage).
#[async_trait::async_trait]
pub trait StepHook: Send + Sync {
    async fn starting(&self, index: usize);
}

/// Remembers the step running, for the timeout message.
#[derive(Default)]
struct Current(AtomicUsize);

#[async_trait::async_trait]
impl StepHook for Current {
    async fn starting(&self, index: usize) {
        self.0.store(index, Ordering::Relaxed);
    }
}

/// Where a run's calls say they come from.
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    /// `X-Request-ID` sent to every step.
    pub request_id: &'a str,
    /// W3C `traceparent` sent to every step.
    pub traceparent: Option<&'a str>,
}

/// The client's body without `"stream"` (a value that is not `true`), for runs whose
/// steps answer JSON; other bodies as they are. A streamed pipeline is
/// [`Pipeline::stream`].
pub fn without_stream(body: Bytes) -> Bytes {
    let Ok(Value::Object(mut o)) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    if o.remove("stream").is_none() {
        return body;
    }
    serde_json::to_vec(&o).map_or(body, Bytes::from)
}

/// Runs the steps in order.
pub async fn run_steps(
    clients: &Clients,
    steps: &[Step],
    body: Bytes,
    origin: Origin<'_>,
    retry_unsafe: bool,
    hook: &dyn StepHook,
) -> Result<Value, RunError> {
    let mut reports = Vec::with_capacity(steps.len());
    let mut answers: Vec<Value> = Vec::with_capacity(steps.len());
    let mut input = body;
    for (i, s) in steps.iter().enumerate() {
        hook.starting(i).await;
        let started = Instant::now();
        let res = step::call(
            clients,
            Call {
                pool: &s.pool,
                path: &s.path,
                body: input.clone(),
                request_id: origin.request_id,
                traceparent: origin.traceparent,
                retry_unsafe,
            },
        )
        .await;
        let ans = match res {
            Ok(a) => a,
            Err(error) => {
                let status = match &error {
                    StepError::Status(st, _) => Some(*st),
                    _ => None,
                };
                reports.push(report(s, status, started.elapsed()));
                return Err(RunError::Step {
                    index: i,
                    name: s.name.clone(),
                    upstream: s.upstream.clone(),
                    error,
                    steps: reports,
                });
            }
        };
        reports.push(report(s, Some(ans.status), started.elapsed()));
        let value: Value = match serde_json::from_slice(&ans.body) {
            Ok(v) => v,
            Err(e) => {
                return Err(RunError::BadAnswer {
                    name: s.name.clone(),
                    message: format!("step `{}` answered something that is not JSON: {e}", s.name),
                    steps: reports,
                })
            }
        };
        if i + 1 < steps.len() {
            let Some(text) = value.get("text").and_then(Value::as_str) else {
                return Err(RunError::BadAnswer {
                    name: s.name.clone(),
                    message: format!("step `{}` answered no `text` for the next step", s.name),
                    steps: reports,
                });
            };
            input = Bytes::from(json!({ "text": text }).to_string());
        }
        answers.push(value);
    }
    let mut out = Map::new();
    let last = answers.pop().unwrap_or(Value::Null);
    for (s, a) in steps.iter().zip(answers) {
        out.insert(s.name.clone(), a);
    }
    out.insert("result".into(), last);
    out.insert("steps".into(), Value::Array(reports));
    Ok(Value::Object(out))
}

impl RunError {
    /// A failure of the steps after the first (run on their own by a streamed
    /// pipeline), numbered and reported as in the whole pipeline.
    pub(super) fn after_first(mut self, first: Value) -> Self {
        match &mut self {
            RunError::Step { index, steps, .. } => {
                *index += 1;
                steps.insert(0, first);
            }
            RunError::BadAnswer { steps, .. } => steps.insert(0, first),
        }
        self
    }

    /// The client's answer for a failed run: a step's 4xx on the first step is the
    /// client's request refused (its status passed on); any other failure is 502
    /// (503 when no target could take it).
    pub fn answer(self) -> FlowAnswer {
        match self {
            RunError::Step {
                index,
                name,
                upstream,
                error,
                steps,
            } => {
                let mut details = json!({ "step": name, "upstream": upstream, "steps": steps });
                let (status, kind) = match &error {
                    StepError::Status(s, body) if index == 0 && (400..500).contains(s) => {
                        details["upstream_error"] =
                            serde_json::from_str(body).unwrap_or(Value::String(body.clone()));
                        (*s, "step_rejected")
                    }
                    StepError::Status(s, _) => {
                        details["upstream_status"] = json!(s);
                        (502, "step_failed")
                    }
                    StepError::NoTarget(_) => (503, "step_unavailable"),
                    _ => (502, "step_failed"),
                };
                let message = format!("step `{name}` (upstream `{upstream}`): {error}");
                FlowAnswer::error(status, kind, message, Some(details))
                    .with_error_type(error.error_type())
                    .with_backend(&upstream)
            }
            RunError::BadAnswer {
                name,
                message,
                steps,
            } => FlowAnswer::error(
                502,
                "step_failed",
                message,
                Some(json!({ "step": name, "steps": steps })),
            )
            .with_error_type("upstream_error"),
        }
    }

    /// When no target of a step's pool could take it: the time until one may.
    pub fn unavailable_for(&self) -> Option<Duration> {
        match self {
            RunError::Step {
                error: StepError::NoTarget(d),
                ..
            } => Some(*d),
            _ => None,
        }
    }

    /// A one-line description for a job's `error`.
    pub fn message(&self) -> String {
        match self {
            RunError::Step {
                name,
                upstream,
                error,
                ..
            } => format!("step `{name}` (upstream `{upstream}`): {error}"),
            RunError::BadAnswer { message, .. } => message.clone(),
        }
    }
}

impl Pipeline {
    /// Runs the pipeline for one request, within the route's total time.
    pub async fn handle(&self, clients: &Clients, body: Bytes, origin: Origin<'_>) -> FlowAnswer {
        let body = without_stream(body);
        let current = Current::default();
        let run = run_steps(
            clients,
            &self.steps,
            body,
            origin,
            self.retry_unsafe,
            &current,
        );
        let res = match self.timeout {
            Some(t) => match tokio::time::timeout(t, run).await {
                Ok(r) => r,
                Err(_) => {
                    let i = current.0.load(Ordering::Relaxed);
                    let name = self.steps.get(i).map_or("", |s| s.name.as_str());
                    let upstream = self.steps.get(i).map_or("", |s| s.upstream.as_str());
                    return FlowAnswer::error(
                        504,
                        "gateway_timeout",
                        format!(
                            "the pipeline did not finish within the route's timeout ({}): step `{name}` was running",
                            humantime::format_duration(t)
                        ),
                        Some(json!({ "step": name })),
                    )
                    .with_error_type("timeout")
                    .with_backend(upstream);
                }
            },
            None => run.await,
        };
        match res {
            Ok(v) => FlowAnswer::json(200, v),
            Err(e) => e.answer(),
        }
    }
}
