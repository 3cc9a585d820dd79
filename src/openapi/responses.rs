//! The answers an operation can give: collected by status from every source (the
//! gateway, the route's plugins, the backend), merged, then written as OpenAPI
//! responses with their headers. Headers that every answer of a route carries
//! (`X-Request-ID`, rate-limit and deprecation headers) are added to each.

use super::schemas::reference;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The reusable response headers (`components.headers`).
pub fn header_components() -> Map<String, Value> {
    let h = |desc: &str, ty: &str| json!({ "description": desc, "schema": { "type": ty } });
    let mut m = Map::new();
    m.insert("X-Request-ID".into(), h("The request's id: the client's `X-Request-ID` when well-formed, else one the gateway made. On every answer.", "string"));
    m.insert(
        "Retry-After".into(),
        h("Seconds to wait before trying again.", "integer"),
    );
    m.insert(
        "WWW-Authenticate".into(),
        h(
            "The challenge: what credential the route expects.",
            "string",
        ),
    );
    m.insert("Location".into(), h("Where to read the job.", "string"));
    m.insert("RateLimit".into(), h("The current quota (draft-ietf-httpapi-ratelimit-headers): `\"name\";r=<remaining>;t=<seconds to reset>`.", "string"));
    m.insert(
        "RateLimit-Policy".into(),
        h(
            "The quota policy: `\"name\";q=<quota>;w=<window seconds>`.",
            "string",
        ),
    );
    m.insert(
        "X-RateLimit-Limit".into(),
        h("Requests allowed per window.", "integer"),
    );
    m.insert(
        "X-RateLimit-Remaining".into(),
        h("Requests left in this window.", "integer"),
    );
    m.insert(
        "X-RateLimit-Reset".into(),
        h("Seconds until the quota is whole again.", "integer"),
    );
    m.insert(
        "Deprecation".into(),
        h(
            "RFC 9745: `@<unix time>` the route was deprecated.",
            "string",
        ),
    );
    m.insert(
        "Sunset".into(),
        h(
            "RFC 8594: the HTTP-date after which the route stops working.",
            "string",
        ),
    );
    m.insert(
        "Link".into(),
        h(
            "`<url>; rel=\"deprecation\"`: a page about the deprecation.",
            "string",
        ),
    );
    m
}

/// The body of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// The gateway's JSON error `{error, message, request_id}`.
    GatewayError,
    /// A backend's `{error, message}` passed on, or the gateway's own error.
    BackendError,
    /// A JSON body with this schema.
    Json(Value),
    /// A JSON body with this schema (first), or with `"stream": true` Server-Sent
    /// Events, each of this schema (second).
    JsonOrEvents(Value, Value),
    /// Server-Sent Events only, each of this schema.
    Events(Value),
    /// A body of this content type, any content.
    Raw(String),
    /// Any body the upstream sends.
    Any,
}

#[derive(Debug, Clone)]
struct Entry {
    descriptions: Vec<String>,
    body: Body,
    headers: BTreeSet<&'static str>,
}

/// The answers of one operation, by status (`"200"`, `"default"`...).
#[derive(Debug, Default)]
pub struct Responses {
    by_status: BTreeMap<String, Entry>,
    /// Headers on every answer of the operation.
    pub everywhere: BTreeSet<&'static str>,
}

impl Responses {
    /// Adds an answer; a status already present gets the description appended, the
    /// headers joined and the looser body (a backend error covers the gateway's).
    pub fn add(&mut self, status: &str, description: &str, body: Body, headers: &[&'static str]) {
        let e = self
            .by_status
            .entry(status.to_string())
            .or_insert_with(|| Entry {
                descriptions: Vec::new(),
                body: body.clone(),
                headers: BTreeSet::new(),
            });
        if !e.descriptions.iter().any(|d| d == description) {
            e.descriptions.push(description.to_string());
        }
        e.body = merge(&e.body, &body);
        e.headers.extend(headers.iter().copied());
    }

    /// An error status with the gateway's JSON error.
    pub fn error(&mut self, status: u16, description: &str, headers: &[&'static str]) {
        self.add(
            &status.to_string(),
            description,
            Body::GatewayError,
            headers,
        );
    }

    /// The OpenAPI `responses` object.
    pub fn render(&self) -> Value {
        let mut out = Map::new();
        for (status, e) in &self.by_status {
            let mut headers = Map::new();
            for h in e.headers.iter().chain(self.everywhere.iter()) {
                headers.insert(
                    (*h).to_string(),
                    json!({ "$ref": format!("#/components/headers/{h}") }),
                );
            }
            let mut r = json!({ "description": e.descriptions.join(" ") });
            if let Body::JsonOrEvents(s, events) = &e.body {
                r["content"] = json!({
                    "application/json": { "schema": s },
                    "text/event-stream": { "schema": events },
                });
                r["headers"] = Value::Object(headers);
                out.insert(status.clone(), r);
                continue;
            }
            let content = match &e.body {
                Body::JsonOrEvents(..) => None,
                Body::Events(s) => Some(("text/event-stream", s.clone())),
                Body::GatewayError => Some(("application/json", reference("Error"))),
                Body::BackendError => Some(("application/json", reference("BackendError"))),
                Body::Json(s) => Some(("application/json", s.clone())),
                Body::Raw(ct) => Some((ct.as_str(), json!({}))),
                Body::Any => Some(("*/*", json!({}))),
            };
            if let Some((ct, schema)) = content {
                r["content"] = json!({ ct: { "schema": schema } });
            }
            r["headers"] = Value::Object(headers);
            out.insert(status.clone(), r);
        }
        Value::Object(out)
    }
}

/// One Server-Sent Event as parsers hand it over: `event` (its name), `data` (JSON of
/// one of `data`).
fn sse_event(description: &str, names: Option<Value>, data: Vec<Value>) -> Value {
    let event = match names {
        Some(n) => json!({ "type": "string", "enum": n }),
        None => json!({ "type": "string" }),
    };
    json!({
        "type": "object",
        "description": description,
        "required": ["data"],
        "properties": {
            "event": event,
            "id": { "type": "string" },
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": { "oneOf": data }
            }
        }
    })
}

fn token_piece() -> Value {
    json!({ "type": "object", "required": ["text"], "properties": { "text": { "type": "string" } } })
}

fn token_usage() -> Value {
    json!({ "type": "object", "required": ["done", "tokens", "model", "seed", "duration_ms"], "properties": {
        "done": { "const": true }, "tokens": { "type": "integer" }, "model": { "type": "string" },
        "seed": { "type": "integer" }, "duration_ms": { "type": "number" }, "cached": { "type": "boolean" } } })
}

/// One event of a token stream: a piece of the text or, last, the usage.
pub fn token_events() -> Value {
    sse_event(
        "With `\"stream\": true`: one event per token, then a last one with `done: true` and the usage.",
        None,
        vec![token_piece(), token_usage()],
    )
}

/// One event of a streamed pipeline: the first step's token events, then `event:
/// result` with the pipeline's answer (`result_schema`), or `event: error` with the
/// gateway's JSON error.
pub fn pipeline_events(result_schema: Value) -> Value {
    sse_event(
        "With `\"stream\": true`: the first step's events as they come (one per token, then its usage), then `event: result` with the pipeline's whole answer (the JSON answer's shape). A failure after the stream started is `event: error` with the JSON error, and the stream ends.",
        None,
        vec![token_piece(), token_usage(), result_schema, super::schemas::reference("Error")],
    )
}

/// One event of a job's state changes.
pub fn job_events(job_schema: Value) -> Value {
    sse_event(
        "One event per state the job entered, named after it (`queued`, `generating`, `enriching`, then `done` or `failed`, after which the stream ends). A non-final event's data is `{job_id, status, at}`; the final one's the whole job. `event: error` (the JSON error) if the job store fails or the job expires mid-stream. Comment lines (`: keep-alive`) every 15 s while nothing changes (the route's `sse_keepalive` sets another interval).",
        Some(json!(["queued", "generating", "enriching", "done", "failed", "error"])),
        vec![
            json!({ "type": "object", "required": ["job_id", "status", "at"], "properties": {
                "job_id": { "type": "string" }, "status": { "type": "string" }, "at": { "type": "string" } } }),
            job_schema,
            super::schemas::reference("Error"),
        ],
    )
}

fn merge(a: &Body, b: &Body) -> Body {
    match (a, b) {
        (x, y) if x == y => x.clone(),
        (Body::Any, _) | (_, Body::Any) => Body::Any,
        (Body::GatewayError | Body::BackendError, Body::GatewayError | Body::BackendError) => {
            Body::BackendError
        }
        (Body::Json(x), Body::Json(y)) => Body::Json(json!({ "anyOf": [x, y] })),
        (Body::Json(x), Body::GatewayError) | (Body::GatewayError, Body::Json(x)) => {
            Body::Json(json!({ "anyOf": [x, reference("Error")] }))
        }
        (Body::Json(x), Body::BackendError) | (Body::BackendError, Body::Json(x)) => {
            Body::Json(json!({ "anyOf": [x, reference("BackendError")] }))
        }
        _ => Body::Any,
    }
}
