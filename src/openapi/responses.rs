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
    /// A JSON body with this schema, or with `"stream": true` Server-Sent Events.
    JsonOrEvents(Value),
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
            if let Body::JsonOrEvents(s) = &e.body {
                r["content"] = json!({
                    "application/json": { "schema": s },
                    "text/event-stream": { "schema": event_schema() },
                });
                r["headers"] = Value::Object(headers);
                out.insert(status.clone(), r);
                continue;
            }
            let content = match &e.body {
                Body::JsonOrEvents(_) => None,
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

/// One event of a token stream, as Server-Sent Events parsers hand it over: `data` is
/// JSON, a piece of the text or, last, the usage.
fn event_schema() -> Value {
    json!({
        "type": "object",
        "description": "With `\"stream\": true`: one event per token, then a last one with `done: true` and the usage.",
        "required": ["data"],
        "properties": {
            "event": { "type": "string" },
            "id": { "type": "string" },
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": { "oneOf": [
                    { "type": "object", "required": ["text"], "properties": { "text": { "type": "string" } } },
                    { "type": "object", "required": ["done", "tokens", "model", "seed", "duration_ms"], "properties": {
                        "done": { "const": true }, "tokens": { "type": "integer" }, "model": { "type": "string" },
                        "seed": { "type": "integer" }, "duration_ms": { "type": "number" }, "cached": { "type": "boolean" } } }
                ] }
            }
        }
    })
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
