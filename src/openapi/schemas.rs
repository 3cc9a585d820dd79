//! Component schemas, written once with `schemars` on the types that produce the JSON
//! (the backends' request and response types, the flows' answers), and the table that
//! matches a route's upstream and path to a backend operation.

use crate::flows::jobs::store::JobView;
use crate::flows::jobs::Accepted;
use crate::flows::pipeline::StepReport;
use schemars::gen::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

/// Where component schemas live in the document.
pub const PREFIX: &str = "#/components/schemas/";

/// A `$ref` to a component schema.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{PREFIX}{name}") })
}

/// A backend operation the gateway knows the bodies of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendOp {
    /// Component name of the request body.
    pub request: &'static str,
    /// Component name of the 200 answer.
    pub response: &'static str,
    /// Error statuses the backend itself answers (its `{error, message}` body).
    pub errors: &'static [u16],
    /// It answers a token stream (`text/event-stream`) when the body asks for one.
    pub streams: bool,
}

const GENERATE: BackendOp = BackendOp {
    request: "GenerateRequest",
    response: "GenerateResponse",
    errors: &[400, 413, 415, 422, 503],
    streams: true,
};

const ENRICH: BackendOp = BackendOp {
    request: "DocumentIn",
    response: "EnrichedDocument",
    errors: &[400, 413, 415, 422],
    streams: false,
};

/// The backend operation behind `POST <path>` on `upstream`: api-generation's
/// `/generate` and api-enrichment's `/enrich`. The upstream is matched by name
/// (`generation`, `enrichment`, or a name containing them) so that renamed pools of the
/// same service are still recognised.
pub fn backend_op(upstream: &str, path: &str) -> Option<BackendOp> {
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    match path {
        "/generate" if upstream.contains("generation") => Some(GENERATE),
        "/enrich" if upstream.contains("enrichment") => Some(ENRICH),
        _ => None,
    }
}

/// The schemas every document carries, by component name.
pub fn components() -> Map<String, Value> {
    let mut settings = SchemaSettings::draft2019_09();
    settings.definitions_path = PREFIX.to_string();
    settings.meta_schema = None;
    let mut gen = SchemaGenerator::new(settings);
    add::<backend_api::generation::GenerateRequest>(&mut gen);
    add::<backend_api::generation::GenerateResponse>(&mut gen);
    add::<backend_api::enrichment::DocumentIn>(&mut gen);
    add::<backend_api::enrichment::EnrichedDocument>(&mut gen);
    add::<StepReport>(&mut gen);
    add::<Accepted>(&mut gen);
    add::<JobView>(&mut gen);
    let mut out: Map<String, Value> = gen
        .take_definitions()
        .into_iter()
        .map(|(k, v)| (k, serde_json::to_value(v).unwrap_or(Value::Null)))
        .collect();
    out.insert("Error".into(), gateway_error());
    out.insert("BackendError".into(), backend_error());
    out
}

fn add<T: JsonSchema>(gen: &mut SchemaGenerator) {
    // the root schema of T is kept as a definition like its parts
    let _ = gen.subschema_for::<T>();
}

/// The gateway's JSON error (SPEC: errors the gateway itself returns).
fn gateway_error() -> Value {
    json!({
        "type": "object",
        "description": "An error the gateway answers itself. Some kinds add members (`step`, `upstream`, `steps`, `violations`, `missing_roles`...).",
        "required": ["error", "message", "request_id"],
        "properties": {
            "error": { "type": "string", "description": "Machine-readable kind (`unauthorized`, `rate_limited`, `step_failed`...)." },
            "message": { "type": "string", "description": "What went wrong, for people." },
            "request_id": { "type": "string", "description": "The request's `X-Request-ID`." }
        },
        "additionalProperties": true
    })
}

/// An error body passed on from a backend (or the gateway's own, which has the same
/// members plus `request_id`).
fn backend_error() -> Value {
    json!({
        "type": "object",
        "description": "An error from the backend, passed on as it is (`{error, message}`), or the gateway's own error (which adds `request_id`).",
        "required": ["error", "message"],
        "properties": {
            "error": { "type": "string" },
            "message": { "type": "string" },
            "request_id": { "type": "string" }
        },
        "additionalProperties": true
    })
}

/// The answer of a pipeline: `result` (the last step's answer), each earlier step's
/// answer under its name, and `steps`.
pub fn pipeline_answer(steps: &[(String, Value)]) -> Value {
    let mut props = Map::new();
    let mut required = vec![json!("result"), json!("steps")];
    let n = steps.len();
    for (i, (name, schema)) in steps.iter().enumerate() {
        if i + 1 == n {
            props.insert("result".into(), schema.clone());
        } else {
            props.insert(name.clone(), schema.clone());
            required.push(json!(name));
        }
    }
    props.insert(
        "steps".into(),
        json!({ "type": "array", "items": reference("StepReport") }),
    );
    json!({
        "type": "object",
        "description": "`result` is the last step's answer; each earlier step's answer is under its name.",
        "required": required,
        "properties": props,
    })
}

/// The schema of a step's answer: the backend's response, or any JSON.
pub fn step_answer(upstream: &str, path: &str) -> Value {
    match backend_op(upstream, path) {
        Some(op) => reference(op.response),
        None => json!({ "description": "The step's JSON answer." }),
    }
}
