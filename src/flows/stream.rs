//! The pipeline with `"stream": true`: the first step (generation) is asked for its
//! token stream, whose events are passed to the client as they come (byte for byte),
//! then the later steps run on the joined text as in the unstreamed pipeline, and one
//! `event: result` carries the pipeline's whole answer (`{"result", "<first step>",
//! "steps"}`, the unstreamed answer's shape). Before the first event the client gets
//! the unstreamed pipeline's JSON errors; after it, an `event: error` whose data is the
//! same JSON error, and the stream ends. A client that goes away ends the run: the
//! first step's connection is closed, which stops the generation.

use super::pipeline::{report, run_steps, Origin, Pipeline, RunError, StepHook};
use super::sse::{self, EventSink, Gone, Splitter};
use super::step::{self, Call, Clients, Opened, StepError};
use super::FlowAnswer;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// How a streamed run ended.
pub enum Ended {
    /// Nothing was written: answer this (an error before the stream started).
    Answer(FlowAnswer),
    /// The stream was written to its end (`error_type`: it ended with an error event).
    Streamed { error_type: Option<&'static str> },
    /// The client went away mid-stream.
    Gone,
}

/// Whether a body asks for a stream (`"stream": true`).
pub fn wants_stream(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("stream").and_then(Value::as_bool))
        .unwrap_or(false)
}

struct NoHook;

#[async_trait::async_trait]
impl StepHook for NoHook {
    async fn starting(&self, _index: usize) {}
}

/// The first step's answer rebuilt from its stream: the last event's fields (without
/// `done`) and `text`, the pieces joined.
fn answer_of(pieces: &str, last: Map<String, Value>) -> Value {
    let mut out = last;
    out.remove("done");
    out.insert("text".into(), Value::String(pieces.to_string()));
    Value::Object(out)
}

fn stream_failed(p: &Pipeline, message: String, error_type: &'static str) -> FlowAnswer {
    let (name, upstream) = p
        .steps
        .first()
        .map_or(("", ""), |s| (s.name.as_str(), s.upstream.as_str()));
    FlowAnswer::error(
        502,
        "step_failed",
        format!("step `{name}` (upstream `{upstream}`): {message}"),
        Some(json!({ "step": name, "upstream": upstream })),
    )
    .with_error_type(error_type)
    .with_backend(upstream)
}

/// Runs `work` within `limit` (none: no limit; `Ok(None)`: it ran out), writing
/// keep-alives to `sink` meanwhile when the route asks for them.
async fn keeping_alive<F: std::future::Future>(
    sink: &mut dyn EventSink,
    limit: Option<Duration>,
    work: F,
) -> Result<Option<F::Output>, Gone> {
    let Some(every) = sink.keepalive() else {
        return Ok(match limit {
            Some(t) => tokio::time::timeout(t, work).await.ok(),
            None => Some(work.await),
        });
    };
    tokio::pin!(work);
    let deadline = limit.map(|t| tokio::time::Instant::now() + t);
    let ran_out = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(ran_out);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut work => return Ok(Some(out)),
            () = &mut ran_out => return Ok(None),
            _ = tick.tick() => sink.event(Bytes::from_static(sse::KEEP_ALIVE)).await?,
        }
    }
}

/// What reading the first step's stream gave.
enum Read {
    Answer(Value),
    Failed(FlowAnswer),
    /// The upstream sent `event: error` (passed on as it was).
    UpstreamError,
    Gone,
}

impl Pipeline {
    /// Runs the pipeline for a `"stream": true` request, writing to `sink`.
    pub async fn stream(
        &self,
        clients: &Clients,
        body: Bytes,
        origin: Origin<'_>,
        sink: &mut dyn EventSink,
    ) -> Ended {
        let Some(first) = self.steps.first() else {
            return Ended::Answer(FlowAnswer::error(500, "internal_error", "no steps", None));
        };
        let started = Instant::now();
        let call = step::open(
            clients,
            Call {
                pool: &first.pool,
                path: &first.path,
                body,
                request_id: origin.request_id,
                traceparent: origin.traceparent,
                retry_unsafe: self.retry_unsafe,
            },
        );
        let opened = match self.timeout {
            Some(t) => match tokio::time::timeout(t, call).await {
                Ok(r) => r,
                Err(_) => Err(StepError::Timeout),
            },
            None => call.await,
        };
        let opened = match opened {
            Ok(o) => o,
            Err(error) => {
                let status = match &error {
                    StepError::Status(s, _) => Some(*s),
                    _ => None,
                };
                return Ended::Answer(
                    RunError::Step {
                        index: 0,
                        name: first.name.clone(),
                        upstream: first.upstream.clone(),
                        error,
                        steps: vec![report(first, status, started.elapsed())],
                    }
                    .answer(),
                );
            }
        };
        if sink.open().await.is_err() {
            return Ended::Gone;
        }
        let generation = match opened {
            Opened::Whole(a) => match serde_json::from_slice::<Value>(&a.body) {
                Ok(v) => Read::Answer(v),
                Err(e) => Read::Failed(stream_failed(
                    self,
                    format!("answered something that is not JSON: {e}"),
                    "upstream_error",
                )),
            },
            Opened::Stream(resp) => self.pass_on(resp, sink).await,
        };
        let generation = match generation {
            Read::Answer(v) => v,
            Read::Gone => return Ended::Gone,
            Read::UpstreamError => {
                return Ended::Streamed {
                    error_type: Some("upstream_error"),
                }
            }
            Read::Failed(a) => return self.fail(sink, a).await,
        };
        let first_report = report(first, Some(200), started.elapsed());
        self.rest(clients, origin, generation, first_report, sink)
            .await
    }

    /// Passes the first step's events on as they come; its answer once it sent its
    /// last (`done`) event.
    async fn pass_on(&self, mut resp: reqwest::Response, sink: &mut dyn EventSink) -> Read {
        let idle = self
            .stream_idle_timeout
            .unwrap_or_else(|| self.steps[0].pool.config.timeouts.read.get());
        let keepalive = sink.keepalive();
        let mut splitter = Splitter::default();
        let mut pieces = String::new();
        // the upstream's last bytes (its silence is bounded by `idle`) and the client's
        // (a keep-alive is due after `keepalive` of it; events are only written whole,
        // so a keep-alive is always between two events)
        let mut heard = Instant::now();
        let mut wrote = Instant::now();
        loop {
            let idle_left = idle.saturating_sub(heard.elapsed());
            let wait = keepalive.map_or(idle_left, |k| {
                idle_left.min(k.saturating_sub(wrote.elapsed()))
            });
            let chunk = match tokio::time::timeout(wait, resp.chunk()).await {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) => {
                    return Read::Failed(stream_failed(
                        self,
                        "its stream ended before its last event".into(),
                        "upstream_error",
                    ))
                }
                Ok(Err(e)) => {
                    return Read::Failed(stream_failed(
                        self,
                        format!("its stream broke: {e}"),
                        "upstream_error",
                    ))
                }
                Err(_) if heard.elapsed() < idle => {
                    if sink
                        .event(Bytes::from_static(sse::KEEP_ALIVE))
                        .await
                        .is_err()
                    {
                        return Read::Gone;
                    }
                    wrote = Instant::now();
                    continue;
                }
                Err(_) => {
                    return Read::Failed(stream_failed(
                        self,
                        format!(
                            "sent nothing for {} (the route's stream_idle_timeout)",
                            humantime::format_duration(idle)
                        ),
                        "timeout",
                    ))
                }
            };
            heard = Instant::now();
            let events = match splitter.feed(&chunk) {
                Ok(e) => e,
                Err(e) => {
                    return Read::Failed(stream_failed(self, e.to_string(), "upstream_error"))
                }
            };
            for e in events {
                if sink.event(e.raw.clone()).await.is_err() {
                    return Read::Gone;
                }
                wrote = Instant::now();
                if e.name.as_deref() == Some("error") {
                    return Read::UpstreamError;
                }
                let Ok(Value::Object(mut o)) = serde_json::from_str::<Value>(&e.data) else {
                    continue;
                };
                if o.get("done").and_then(Value::as_bool) == Some(true) {
                    return Read::Answer(answer_of(&pieces, o));
                }
                if let Some(Value::String(t)) = o.remove("text") {
                    pieces.push_str(&t);
                }
            }
        }
    }

    /// The later steps on the generated text, then `event: result`.
    async fn rest(
        &self,
        clients: &Clients,
        origin: Origin<'_>,
        generation: Value,
        first_report: Value,
        sink: &mut dyn EventSink,
    ) -> Ended {
        let Some(text) = generation.get("text").and_then(Value::as_str) else {
            let a = stream_failed(
                self,
                "answered no `text` for the next step".into(),
                "upstream_error",
            );
            return self.fail(sink, a).await;
        };
        let input = Bytes::from(json!({ "text": text }).to_string());
        let rest = &self.steps[1..];
        let run = run_steps(clients, rest, input, origin, self.retry_unsafe, &NoHook);
        let Ok(res) = keeping_alive(sink, self.timeout, run).await else {
            return Ended::Gone;
        };
        let first_name = self.steps[0].name.clone();
        let out = match res {
            None => {
                let a = FlowAnswer::error(
                    504,
                    "gateway_timeout",
                    "the pipeline's later steps did not finish within the route's timeout",
                    None,
                )
                .with_error_type("timeout");
                return self.fail(sink, a).await;
            }
            Some(Err(e)) => return self.fail(sink, e.after_first(first_report).answer()).await,
            Some(Ok(_)) if rest.is_empty() => {
                json!({ "result": generation, "steps": [first_report] })
            }
            Some(Ok(Value::Object(mut o))) => {
                o.insert(first_name, generation);
                if let Some(Value::Array(steps)) = o.get_mut("steps") {
                    steps.insert(0, first_report);
                }
                Value::Object(o)
            }
            Some(Ok(v)) => v,
        };
        match sink
            .event(sse::event(Some("result"), &out.to_string()))
            .await
        {
            Ok(()) => Ended::Streamed { error_type: None },
            Err(Gone) => Ended::Gone,
        }
    }

    async fn fail(&self, sink: &mut dyn EventSink, a: FlowAnswer) -> Ended {
        let error_type = a.error_type.or(Some("upstream_error"));
        match sink.fail(a).await {
            Ok(()) => Ended::Streamed { error_type },
            Err(Gone) => Ended::Gone,
        }
    }
}
