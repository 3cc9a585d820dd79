//! One route's operations: path and parameters, methods, request body, answers,
//! security, tags and deprecation.

use super::answers::{self, Chain, RouteAnswers};
use super::schemas::{backend_op, reference, BackendOp};
use super::security;
use super::{Builder, GATEWAY_PATHS};
use crate::config::{Config, Deprecation, RouteConfig};
use crate::router::{Params, PathPattern, Rewrite};
use serde_json::{json, Map, Value};
use std::path::Path;

/// Methods documented for a route that lists none (it takes them all).
const ALL_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Methods whose requests carry a body.
pub fn has_body(method: &str) -> bool {
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

/// The path the upstream sees for the route's own path, by the router's own rewrite
/// (`{name}` parameters kept as they are).
pub fn upstream_path(r: &RouteConfig) -> String {
    let base = r
        .matcher
        .path
        .as_deref()
        .or(r.matcher.path_prefix.as_deref())
        .unwrap_or("/");
    let pattern = r
        .matcher
        .path
        .as_deref()
        .and_then(|p| PathPattern::parse(p).ok());
    let Ok(rw) = Rewrite::compile(r.rewrite.as_ref(), pattern.as_ref()) else {
        return base.to_string();
    };
    let names: Vec<String> = pattern
        .as_ref()
        .map(|p| p.params().map(|n| format!("{{{n}}}")).collect())
        .unwrap_or_default();
    let params: Params<'_> = names.iter().map(String::as_str).collect();
    rw.apply(base, &params, None)
}

/// The `{name}` parameters of a path.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
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
        // a split's sides serve one API: the first side documents it
        let split_first = r.split.as_ref().and_then(|s| s.sides().first());
        let u = r
            .upstream
            .as_deref()
            .or(split_first.map(|s| s.upstream.as_str()));
        Kind::Proxy(u.map(|u| (u, upstream_path(r))))
    };
    let chain = Chain {
        docs: crate::config::chain(config, i, r)
            .into_iter()
            .map(|e| gateway_plugins::api_doc(&e.config.name, &e.config.settings, base_dir))
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
    let security = security::requirements(&chain.docs, &mut b.schemes);
    if let Some(doc) = chain.docs.iter().find(|d| !d.endpoints.is_empty()) {
        // a plugin answers every request of the route itself
        super::plugin_ops::operations(b, r, &path, security.as_ref(), &chain, doc);
        return;
    }
    let validate_schema = chain.docs.iter().find_map(|d| d.request_body.clone());
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
        let resp = answers::answers(
            config,
            r,
            answers_kind(&kind, r.is_job_events()),
            op_backend,
            &chain,
            m,
        );
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

fn answers_kind(kind: &Kind<'_>, events: bool) -> RouteAnswers {
    match kind {
        Kind::Proxy(Some(_)) => RouteAnswers::Upstream,
        Kind::Proxy(None) => RouteAnswers::Fixed,
        Kind::Pipeline => RouteAnswers::Pipeline,
        Kind::Async => RouteAnswers::Async,
        Kind::Jobs if events => RouteAnswers::JobEvents,
        Kind::Jobs => RouteAnswers::Jobs,
    }
}

fn summary(r: &RouteConfig, kind: &Kind<'_>) -> String {
    match kind {
        Kind::Proxy(Some((_, p))) if r.split.is_some() => {
            let sides: Vec<String> = r
                .split
                .iter()
                .flat_map(|s| s.sides())
                .map(|s| format!("`{}` ({})", s.upstream, s.weight))
                .collect();
            format!(
                "Route `{}`: split between {} at `{p}`",
                r.name,
                sides.join(", ")
            )
        }
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
        Kind::Jobs if r.is_job_events() => {
            format!(
                "Route `{}`: an async job's state changes (Server-Sent Events)",
                r.name
            )
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn route(yaml: &str) -> RouteConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_path_sent_upstream() {
        let r = route("{ name: a, match: { path: /api/v1/generate }, upstream: g, rewrite: { strip_prefix: /api/v1 } }");
        assert_eq!(upstream_path(&r), "/generate");
        let r = route("{ name: a, match: { path_prefix: /v1 }, upstream: g, rewrite: { strip_prefix: /v1, add_prefix: /svc } }");
        assert_eq!(upstream_path(&r), "/svc/");
        let r = route("{ name: a, match: { path: /x }, upstream: g, rewrite: { path: /metrics } }");
        assert_eq!(upstream_path(&r), "/metrics");
        let r = route("{ name: a, match: { path: \"/jobs/{id}\" }, upstream: g, rewrite: { path: \"/v2/jobs/{id}\" } }");
        assert_eq!(upstream_path(&r), "/v2/jobs/{id}");
        let r = route("{ name: a, match: { path: /generate }, upstream: g }");
        assert_eq!(upstream_path(&r), "/generate");
        assert_eq!(path_params("/a/{x}/b/{y_2}"), ["x", "y_2"]);
    }
}
