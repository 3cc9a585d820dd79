//! The OpenAPI 3.1 document of the live route table: every route's paths, methods and
//! parameters, the backends' request and response schemas (from the backends' own
//! types), security schemes from the routes' auth plugins, the answers each route can
//! give (the gateway's errors, plugin refusals, the backend's), deprecation, and the
//! async flow's job resource. Served at `GET /openapi.json` (generated once per live
//! table, so it follows reloads), printed by `api-gateway openapi`, and shown by the
//! interactive page at `/docs` ([`docs`]).

mod answers;
pub mod docs;
mod operation;
mod plugin_ops;
mod responses;
mod schemas;
mod security;

use crate::config::Config;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Paths the gateway answers itself, before routing.
pub const GATEWAY_PATHS: &[&str] = &["/health", "/ready", "/openapi.json"];

/// The document of one live table, made on first use.
#[derive(Debug, Default)]
pub struct Cached {
    base_dir: PathBuf,
    doc: OnceLock<Bytes>,
}

impl Cached {
    /// `base_dir`: where relative files of plugin settings (a `validate` plugin's
    /// `schema_file`) start, routes.yaml's directory.
    pub fn new(base_dir: &Path) -> Self {
        Self {
            base_dir: base_dir.to_path_buf(),
            doc: OnceLock::new(),
        }
    }

    /// The document as JSON bytes.
    pub fn get(&self, config: &Config) -> Bytes {
        self.doc
            .get_or_init(|| {
                let v = document(config, &self.base_dir);
                Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
            })
            .clone()
    }
}

/// What is gathered while the routes are walked.
#[derive(Default)]
struct Builder {
    paths: BTreeMap<String, Map<String, Value>>,
    schemes: Map<String, Value>,
    tags: BTreeMap<String, String>,
    operation_ids: BTreeSet<String>,
    /// Component schemas only some tables need (those of operations a plugin answers).
    extra_schemas: Map<String, Value>,
}

impl Builder {
    /// A unique `operationId` from `wanted`.
    fn operation_id(&mut self, wanted: &str) -> String {
        let mut id = wanted.to_string();
        let mut n = 2;
        while self.operation_ids.contains(&id) {
            id = format!("{wanted}-{n}");
            n += 1;
        }
        self.operation_ids.insert(id.clone());
        id
    }

    fn tag(&mut self, name: &str, description: impl Into<String>) {
        self.tags
            .entry(name.to_string())
            .or_insert_with(|| description.into());
    }
}

/// The OpenAPI 3.1 document of `config`. Relative files named by plugin settings start
/// at `base_dir`.
pub fn document(config: &Config, base_dir: &Path) -> Value {
    let mut b = Builder::default();
    gateway_paths(&mut b);
    for (i, r) in config.routes.iter().enumerate() {
        operation::route(&mut b, config, i, r, base_dir);
    }
    let mut components = Map::new();
    let mut all = schemas::components();
    all.extend(b.extra_schemas);
    components.insert("schemas".into(), Value::Object(all));
    components.insert(
        "headers".into(),
        Value::Object(responses::header_components()),
    );
    if !b.schemes.is_empty() {
        components.insert("securitySchemes".into(), Value::Object(b.schemes));
    }
    let paths: Map<String, Value> = b
        .paths
        .into_iter()
        .map(|(k, v)| (k, Value::Object(v)))
        .collect();
    let tags: Vec<Value> = b
        .tags
        .into_iter()
        .map(|(name, description)| json!({ "name": name, "description": description }))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "API gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Generated from the gateway's live route table. Every answer carries `X-Request-ID`; the gateway's own errors are JSON `{error, message, request_id}`.",
        },
        "tags": tags,
        "paths": paths,
        "components": components,
    })
}

/// `/health`, `/ready` and `/openapi.json`.
fn gateway_paths(b: &mut Builder) {
    b.tag("gateway", "Answered by the gateway itself, before routing.");
    let rid = json!({ "X-Request-ID": { "$ref": "#/components/headers/X-Request-ID" } });
    let status_body = |required: &[&str]| {
        json!({ "application/json": { "schema": {
            "type": "object", "required": required,
            "properties": { "status": { "type": "string" } },
            "additionalProperties": true,
        } } })
    };
    let ops = [
        (
            "/health",
            "health",
            "Liveness: the process is up.",
            json!({ "200": { "description": "Up.", "headers": rid, "content": status_body(&["status"]) } }),
        ),
        (
            "/ready",
            "ready",
            "Readiness: a valid route table is loaded and every upstream a route needs has a healthy target.",
            json!({
                "200": { "description": "Ready.", "headers": rid, "content": status_body(&["status", "routes"]) },
                "503": { "description": "Not ready: `upstreams_without_healthy_target` names the upstreams.", "headers": rid, "content": status_body(&["status"]) },
            }),
        ),
        (
            "/openapi.json",
            "openapi",
            "This document, generated from the live route table.",
            json!({ "200": { "description": "The OpenAPI document.", "headers": rid,
                "content": { "application/json": { "schema": { "type": "object" } } } } }),
        ),
    ];
    for (path, id, summary, responses) in ops {
        let id = b.operation_id(id);
        let op = json!({
            "tags": ["gateway"],
            "operationId": id,
            "summary": summary,
            "responses": responses,
        });
        b.paths
            .entry(path.to_string())
            .or_default()
            .insert("get".into(), op);
    }
}
