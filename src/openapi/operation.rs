//! One route's operations: path and parameters, methods, request body, answers,
//! security, tags and deprecation.

use super::responses::{Body, Responses};
use super::schemas::{self, backend_op, reference, BackendOp};
use super::security::{self, Entry, AUTHENTICATING};
use super::{Builder, GATEWAY_PATHS};
use crate::config::{Config, Deprecation, RouteConfig};
use serde_json::{json, Map, Value};
use std::path::Path;

/// Methods documented for a route that lists none (it takes them all).
const ALL_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Methods whose requests carry a body.
fn has_body(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH")
}

/// What a route does, as documented.
enum Kind<'a> {
    /// Proxied to `upstream`, at `path` there (`None`: no upstream, the fallback answers).
    Proxy(Option<(&'a str, String)>),
    Pipeline,
    Async,
    Jobs,
}

/// The path the upstream sees for the route's own path (`{name}` kept).
pub fn upstream_path(r: &RouteConfig) -> String {
    let base = r
        .matcher
        .path
        .as_deref()
        .or(r.matcher.path_prefix.as_deref())
        .unwrap_or("/");
    let Some(rw) = &r.rewrite else {
        return base.to_string();
    };
    if let Some(p) = &rw.path {
        return p.clone();
    }
    let mut p = base.to_string();
    if let Some(sp) = &rw.strip_prefix {
        if let Some(rest) = p.strip_prefix(sp.trim_end_matches('/')) {
            p = if rest.starts_with('/') {
                rest.to_string()
            } else {
                format!("/{rest}")
            };
        }
    }
    if let Some(ap) = &rw.add_prefix {
        p = format!("{}{}", ap.trim_end_matches('/'), p);
    }
    p
}

/// The `{name}` parameters of a path.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// Facts about a chain of plugins.
struct Chain<'a> {
    entries: Vec<Entry<'a>>,
}

impl Chain<'_> {
    fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| *n == name)
    }
    fn any(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.has(n))
    }
}

/// Adds the route's operations to `b`.
pub fn route(b: &mut Builder, config: &Config, i: usize, r: &RouteConfig, base_dir: &Path) {
    let (path, prefix) = match (&r.matcher.path, &r.matcher.path_prefix) {
        (Some(p), _) => (p.clone(), false),
        (None, Some(p)) => (p.clone(), true),
        (None, None) => return,
    };
    if GATEWAY_PATHS.contains(&path.as_str()) {
        return;
    }
    let kind = if r.pipeline.is_some() {
        Kind::Pipeline
    } else if r.async_job.is_some() {
        Kind::Async
    } else if r.jobs.is_some() {
        Kind::Jobs
    } else {
        Kind::Proxy(r.upstream.as_deref().map(|u| (u, upstream_path(r))))
    };
    let chain = Chain {
        entries: crate::config::chain(config, i, r)
            .into_iter()
            .map(|e| (e.config.name.as_str(), &e.config.settings))
            .collect(),
    };
    let tag = match &kind {
        Kind::Proxy(Some((u, _))) => {
            b.tag(u, format!("Proxied to the `{u}` upstream."));
            (*u).to_string()
        }
        Kind::Proxy(None) => {
            b.tag("fallback", "Fixed answers of routes without an upstream.");
            "fallback".into()
        }
        Kind::Pipeline => {
            b.tag(
                "pipeline",
                "Synchronous pipelines: several upstreams called in order, one combined answer.",
            );
            "pipeline".into()
        }
        Kind::Async | Kind::Jobs => {
            b.tag(
                "jobs",
                "Async jobs: submit (202 + job id), then read the job.",
            );
            "jobs".into()
        }
    };
    let methods: Vec<String> = if !r.matcher.methods.is_empty() {
        r.matcher
            .methods
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect()
    } else if matches!(kind, Kind::Jobs) {
        vec!["GET".into()]
    } else {
        ALL_METHODS.iter().map(|m| (*m).to_string()).collect()
    };
    let security = security::requirements(&chain.entries, &mut b.schemes);
    let validate_schema = chain
        .entries
        .iter()
        .find(|(n, _)| *n == "validate")
        .and_then(|(_, s)| validate_schema(s, base_dir));
    let single = methods.len() == 1;
    for m in &methods {
        let lower = m.to_ascii_lowercase();
        if b.paths.get(&path).is_some_and(|p| p.contains_key(&lower)) {
            continue; // an earlier route (another host or header match) documents it
        }
        let id = if single {
            b.operation_id(&r.name)
        } else {
            b.operation_id(&format!("{}-{lower}", r.name))
        };
        let mut op = Map::new();
        op.insert("tags".into(), json!([tag]));
        op.insert("operationId".into(), json!(id));
        op.insert("summary".into(), json!(summary(r, &kind)));
        op.insert("x-gateway-route".into(), json!(r.name));
        if prefix {
            op.insert("x-gateway-path-prefix".into(), json!(true));
        }
        if let Some(h) = &r.matcher.host {
            op.insert("x-gateway-host".into(), json!(h));
        }
        let params = parameters(&path, r, matches!(kind, Kind::Jobs));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        let op_backend = match &kind {
            Kind::Proxy(Some((u, up))) if m == "POST" => backend_op(u, up),
            _ => None,
        };
        if has_body(m) {
            if let Some(body) = request_body(r, &kind, op_backend, validate_schema.clone()) {
                op.insert("requestBody".into(), body);
            }
        }
        let resp = answers(config, r, &kind, op_backend, &chain, m);
        op.insert("responses".into(), resp.render());
        if let Some(s) = &security {
            op.insert("security".into(), s.clone());
        }
        deprecation(r, &mut op);
        b.paths
            .entry(path.clone())
            .or_default()
            .insert(lower, Value::Object(op));
    }
}

fn summary(r: &RouteConfig, kind: &Kind<'_>) -> String {
    match kind {
        Kind::Proxy(Some((u, p))) => format!("Route `{}`: proxied to `{u}` at `{p}`", r.name),
        Kind::Proxy(None) => format!("Route `{}`: a fixed answer", r.name),
        Kind::Pipeline => {
            let steps: Vec<String> = r
                .pipeline
                .iter()
                .flatten()
                .map(|s| format!("`{}` {}", s.upstream, s.path))
                .collect();
            format!("Route `{}`: pipeline {}", r.name, steps.join(" → "))
        }
        Kind::Async => format!("Route `{}`: submit an async job (202 + job id)", r.name),
        Kind::Jobs => format!("Route `{}`: read an async job", r.name),
    }
}

fn parameters(path: &str, r: &RouteConfig, jobs: bool) -> Vec<Value> {
    let mut out: Vec<Value> = path_params(path)
        .into_iter()
        .map(|p| {
            let schema = if jobs && p == "job_id" {
                json!({ "type": "string", "format": "uuid" })
            } else {
                json!({ "type": "string" })
            };
            json!({ "name": p, "in": "path", "required": true, "schema": schema })
        })
        .collect();
    for (k, v) in &r.matcher.headers {
        out.push(json!({
            "name": k, "in": "header", "required": true,
            "description": "The route matches only requests with this header value.",
            "schema": { "type": "string", "enum": [v] },
        }));
    }
    out
}

/// The JSON Schema of a `validate` plugin: inline `schema`, or `schema_file`.
fn validate_schema(s: &Map<String, Value>, base_dir: &Path) -> Option<Value> {
    if let Some(v) = s.get("schema") {
        return Some(v.clone());
    }
    let file = s.get("schema_file")?.as_str()?;
    let path = base_dir.join(file);
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn request_body(
    r: &RouteConfig,
    kind: &Kind<'_>,
    op: Option<BackendOp>,
    validated: Option<Value>,
) -> Option<Value> {
    let first_step = || {
        r.pipeline
            .as_ref()
            .and_then(|s| s.first())
            .and_then(|s| backend_op(&s.upstream, &s.path))
    };
    let backend = match kind {
        Kind::Proxy(_) => op.map(|o| reference(o.request)),
        Kind::Pipeline => {
            Some(first_step().map_or_else(|| json!({ "type": "object" }), |o| reference(o.request)))
        }
        Kind::Async => {
            let a = r.async_job.as_ref()?;
            let gen = backend_op(&a.generation.upstream, &a.generation.path)
                .map_or_else(|| json!({ "type": "object" }), |o| reference(o.request));
            if a.callback.allow_hosts.is_empty() {
                // callbacks are off on this route: a `callback_url` is refused (400)
                return wrap(validated, Some(gen));
            }
            let hosts = a.callback.allow_hosts.join(", ");
            Some(json!({ "allOf": [gen, { "type": "object", "properties": {
                "callback_url": { "type": "string", "format": "uri",
                    "description": format!("Where the final job is POSTed, signed with `X-Signature: sha256=<hex HMAC-SHA256 of the body>`; http(s) on one of these hosts: {hosts}.") }
            } }] }))
        }
        Kind::Jobs => None,
    };
    wrap(validated, backend)
}

/// The request body: the `validate` plugin's schema and the backend's, both when given.
fn wrap(validated: Option<Value>, backend: Option<Value>) -> Option<Value> {
    let schema = match (validated, backend) {
        (Some(v), Some(b)) => json!({ "allOf": [v, b] }),
        (Some(v), None) => v,
        (None, Some(b)) => b,
        (None, None) => return None,
    };
    Some(json!({ "required": true, "content": { "application/json": { "schema": schema } } }))
}

/// The answers of one operation.
fn answers(
    config: &Config,
    r: &RouteConfig,
    kind: &Kind<'_>,
    op: Option<BackendOp>,
    chain: &Chain<'_>,
    method: &str,
) -> Responses {
    let mut a = Responses::default();
    a.everywhere.insert("X-Request-ID");
    match kind {
        Kind::Proxy(Some(_)) => {
            match op {
                Some(o) => {
                    a.add(
                        "200",
                        "The backend's answer.",
                        Body::Json(reference(o.response)),
                        &[],
                    );
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
        Kind::Proxy(None) => {}
        Kind::Pipeline => pipeline_answers(r, &mut a),
        Kind::Async => {
            a.add(
                "202",
                "Accepted: the job is recorded as `queued`.",
                Body::Json(reference("Accepted")),
                &["Location"],
            );
            a.error(400, "The body is not a JSON object (`bad_request`), or the `callback_url` is refused (`invalid_callback_url`).", &[]);
            a.error(503, "The job queue is full (`queue_full`), or the job store cannot be reached (`job_store_unavailable`); nothing was accepted.", &["Retry-After"]);
        }
        Kind::Jobs => {
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
    a.add(
        "200",
        "Every step answered 2xx.",
        Body::Json(schemas::pipeline_answer(&shapes)),
        &[],
    );
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

fn plugin_answers(chain: &Chain<'_>, a: &mut Responses) {
    if chain.any(AUTHENTICATING) {
        a.error(
            401,
            "No valid credential (`unauthorized`).",
            &["WWW-Authenticate"],
        );
        a.error(
            403,
            "Authenticated, but a required scope or role is missing (`forbidden`).",
            &[],
        );
    }
    if chain.any(&["rbac", "ip_restriction", "ip_filter", "cors"]) {
        a.error(403, "Refused by the route's policy (`forbidden`).", &[]);
    }
    if chain.has("rate_limit") {
        a.error(429, "Too many requests (`rate_limited`).", &["Retry-After"]);
        for h in [
            "RateLimit",
            "RateLimit-Policy",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ] {
            a.everywhere.insert(h);
        }
    }
    if chain.has("validate") {
        a.error(400, "The body is not JSON (`invalid_json`) or does not match the route's schema (`validation_failed`, with `violations`).", &[]);
        a.error(413, "The body is larger than the validator reads.", &[]);
    }
    if chain.has("body_limit") {
        a.error(
            413,
            "The body is larger than the route's `body_limit`.",
            &[],
        );
    }
    if chain.has("concurrency_limit") {
        a.error(
            503,
            "Too many requests in flight (`overloaded`).",
            &["Retry-After"],
        );
    }
    if chain.any(&["oauth2_introspection", "rate_limit", "token", "jwt"]) {
        a.error(
            503,
            "A plugin's dependency cannot answer (`dependency_unavailable`).",
            &["Retry-After"],
        );
    }
}

fn deprecation(r: &RouteConfig, op: &mut Map<String, Value>) {
    match &r.deprecated {
        None | Some(Deprecation::Flag(false)) => {}
        Some(Deprecation::Flag(true)) => {
            op.insert("deprecated".into(), json!(true));
        }
        Some(Deprecation::Details(d)) => {
            op.insert("deprecated".into(), json!(true));
            if let Some(s) = &d.sunset {
                op.insert("x-sunset".into(), json!(s));
            }
            if let Some(s) = &d.since {
                op.insert("x-deprecated-since".into(), json!(s));
            }
            if let Some(l) = &d.link {
                op.insert(
                    "externalDocs".into(),
                    json!({ "description": "About the deprecation", "url": l }),
                );
            }
        }
    }
}
