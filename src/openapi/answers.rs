//! The answers an operation can give, by route kind and by the plugins of its chain.

use super::operation::has_body;
use super::responses::{Body, Responses};
use super::schemas::{self, backend_op, reference, BackendOp};
use crate::config::{Config, Deprecation, RouteConfig};
use gateway_plugins::ApiDoc;
use serde_json::{json, Value};

/// What answers a route, for its documented answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAnswers {
    /// Proxied to an upstream.
    Upstream,
    /// A fixed answer (`fallback` without an upstream).
    Fixed,
    Pipeline,
    Async,
    Jobs,
    /// A job's state changes as events.
    JobEvents,
}

/// What the plugins of a chain say of themselves, in chain order.
pub struct Chain {
    pub docs: Vec<ApiDoc>,
}

/// The answers of one operation.
pub fn answers(
    config: &Config,
    r: &RouteConfig,
    kind: RouteAnswers,
    op: Option<BackendOp>,
    chain: &Chain,
    method: &str,
) -> Responses {
    let mut a = Responses::default();
    a.everywhere.insert("X-Request-ID");
    match kind {
        RouteAnswers::Upstream => {
            match op {
                Some(o) => {
                    let answer = reference(o.response);
                    let body = if o.streams {
                        Body::JsonOrEvents(answer, super::responses::token_events())
                    } else {
                        Body::Json(answer)
                    };
                    a.add("200", "The backend's answer.", body, &[]);
                    for s in o.errors {
                        let h: &[&'static str] = if *s == 503 { &["Retry-After"] } else { &[] };
                        a.add(
                            &s.to_string(),
                            "Refused by the backend.",
                            Body::BackendError,
                            h,
                        );
                    }
                }
                None => a.add(
                    "default",
                    "The upstream's answer, passed on.",
                    Body::Any,
                    &[],
                ),
            }
            a.error(502, "The upstream could not be reached or failed.", &[]);
            a.error(
                503,
                "No target of the upstream can take the request (all down, or breakers open).",
                &["Retry-After"],
            );
            a.error(504, "The upstream did not answer in time.", &[]);
        }
        RouteAnswers::Fixed => {}
        RouteAnswers::Pipeline => pipeline_answers(r, &mut a),
        RouteAnswers::Async => {
            a.add(
                "202",
                "Accepted: the job is recorded as `queued`.",
                Body::Json(reference("Accepted")),
                &["Location"],
            );
            a.error(400, "The body is not a JSON object (`bad_request`), or the `callback_url` is refused (`invalid_callback_url`).", &[]);
            a.error(503, "The job queue is full (`queue_full`), or the job store cannot be reached (`job_store_unavailable`); nothing was accepted.", &["Retry-After"]);
        }
        RouteAnswers::JobEvents => {
            a.add(
                "200",
                "The job's state changes as Server-Sent Events, until it is final.",
                Body::Events(super::responses::job_events(job_schema(config))),
                &[],
            );
            a.error(404, "No such job (or not yours, or a malformed id).", &[]);
            a.error(503, "The job store cannot be reached.", &[]);
        }
        RouteAnswers::Jobs => {
            a.add("200", "The job.", Body::Json(job_schema(config)), &[]);
            a.error(404, "No such job (or not yours, or a malformed id).", &[]);
            a.error(503, "The job store cannot be reached.", &[]);
        }
    }
    if let Some(fb) = &r.fallback {
        let ct = fb.content_type.as_deref().unwrap_or("application/json");
        let body = if ct.starts_with("application/json") {
            Body::Json(json!({}))
        } else {
            Body::Raw(ct.to_string())
        };
        a.add(&fb.status.to_string(), "The route's fallback answer (when the upstream fails or has no target that can take the request).", body, &[]);
    }
    plugin_answers(chain, &mut a);
    if has_body(method) {
        a.error(
            413,
            "The request body is larger than the route allows.",
            &[],
        );
    }
    a.error(431, "The request head is too large.", &[]);
    a.error(
        400,
        "Refused at the edge: the path carries an encoded character upstreams read differently, or reaches another route without case (`ambiguous_path`), or the request is malformed (`bad_request`).",
        &[],
    );
    if let Some(Deprecation::Details(_) | Deprecation::Flag(true)) = &r.deprecated {
        a.everywhere.insert("Deprecation");
        if let Some(Deprecation::Details(d)) = &r.deprecated {
            if d.sunset.is_some() {
                a.everywhere.insert("Sunset");
            }
            if d.link.is_some() {
                a.everywhere.insert("Link");
            }
        }
    }
    a
}

fn pipeline_answers(r: &RouteConfig, a: &mut Responses) {
    let steps = r.pipeline.as_deref().unwrap_or_default();
    let shapes: Vec<(String, Value)> = steps
        .iter()
        .map(|s| {
            (
                s.step_name().to_string(),
                schemas::step_answer(&s.upstream, &s.path),
            )
        })
        .collect();
    let answer = schemas::pipeline_answer(&shapes);
    let streams = steps
        .first()
        .and_then(|s| backend_op(&s.upstream, &s.path))
        .is_some_and(|o| o.streams);
    let body = if streams {
        Body::JsonOrEvents(answer.clone(), super::responses::pipeline_events(answer))
    } else {
        Body::Json(answer)
    };
    a.add("200", "Every step answered 2xx.", body, &[]);
    let rejected = "The first step refused the request (`step_rejected`): its status, and its answer in `upstream_error`.";
    match steps.first().and_then(|s| backend_op(&s.upstream, &s.path)) {
        Some(o) => {
            for s in o.errors.iter().filter(|s| (400..500).contains(*s)) {
                a.error(*s, rejected, &[]);
            }
        }
        None => a.add("4XX", rejected, Body::GatewayError, &[]),
    }
    a.error(502, "A step failed (`step_failed`): a 5xx, unreachable, or an answer the next step cannot take.", &[]);
    a.error(
        503,
        "No target of a step's upstream can take it (`step_unavailable`).",
        &[],
    );
    if r.timeout.is_some() {
        a.error(504, "The route's timeout ran out (`gateway_timeout`).", &[]);
    }
}

/// The job resource, its `result` shaped like the pipeline answer of the async
/// routes' stages.
fn job_schema(config: &Config) -> Value {
    let stages = config.routes.iter().find_map(|r| r.async_job.as_ref());
    let (g, e) = match stages {
        Some(a) => (
            schemas::step_answer(&a.generation.upstream, &a.generation.path),
            schemas::step_answer(&a.enrichment.upstream, &a.enrichment.path),
        ),
        None => (reference("GenerateResponse"), reference("EnrichedDocument")),
    };
    let result = schemas::pipeline_answer(&[("generation".into(), g), ("enrichment".into(), e)]);
    json!({ "allOf": [reference("JobView"), { "properties": { "result": result } }] })
}

/// The answers the chain's plugins may give, and the headers they put on every answer.
pub fn plugin_answers(chain: &Chain, a: &mut Responses) {
    for d in &chain.docs {
        for x in &d.answers {
            a.error(x.status, x.description, x.headers);
        }
        a.everywhere.extend(d.headers_everywhere.iter().copied());
    }
}
