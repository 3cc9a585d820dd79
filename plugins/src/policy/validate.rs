//! `validate`: the JSON request body against a JSON Schema, given inline or as a file.
//! A body that is not JSON, or breaks the schema, gets 400 listing each violation with
//! its JSON pointer. Only routes with this plugin buffer the body, at most `max_body`
//! (default 1 MiB; larger bodies get 413).
//!
//! ```yaml
//! - name: validate
//!   schema: { type: object, required: [prompt], properties: { prompt: { type: string } } }
//! # or: schema_file: schemas/generate.json   (relative to routes.yaml)
//! ```

use super::units::Size;
use crate::{BodyCall, BuildCtx, Decision, Factory, Flow, Plugin, Reply, SettingsError};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// At most this many violations are listed.
const MAX_VIOLATIONS: usize = 50;

/// Validation settings: give `schema` or `schema_file`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateSettings {
    /// The JSON Schema, inline (YAML written in routes.yaml is fine).
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
    /// A JSON file holding the schema, relative to routes.yaml.
    #[serde(default)]
    pub schema_file: Option<String>,
    /// The largest body buffered for the check (default `1MiB`); larger: 413. Lowers
    /// the route's body limit like `body_limit`.
    #[serde(default = "default_max_body")]
    pub max_body: Size,
}

fn default_max_body() -> Size {
    Size(1 << 20)
}

/// The request body is not JSON.
#[derive(Debug, thiserror::Error)]
#[error("the body is not JSON: {0}")]
pub struct NotJson(#[source] serde_json::Error);

pub struct Validate {
    validator: jsonschema::Validator,
    max_body: u64,
}

impl Validate {
    pub fn new(s: ValidateSettings, cx: &BuildCtx<'_>) -> Result<Self, SettingsError> {
        let ValidateSettings {
            schema,
            schema_file,
            max_body,
        } = s;
        let (schema, field) = match (schema, schema_file) {
            (Some(v), None) => (v, "schema"),
            (None, Some(f)) => {
                let path = cx.file(&f);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    SettingsError::at(
                        "schema_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let v = serde_json::from_str(&text).map_err(|e| {
                    SettingsError::at(
                        "schema_file",
                        format!("{} is not JSON: {e}", path.display()),
                    )
                })?;
                (v, "schema_file")
            }
            _ => {
                return Err(SettingsError::whole(
                    "give one of `schema` and `schema_file`",
                ))
            }
        };
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| SettingsError::at(field, format!("not a valid JSON Schema: {e}")))?;
        Ok(Self {
            validator,
            max_body: max_body.0,
        })
    }

    /// The violations of `body`, each `{pointer, message}`; `Err`: not JSON.
    fn violations(&self, body: &[u8]) -> Result<Vec<serde_json::Value>, NotJson> {
        let v: serde_json::Value = serde_json::from_slice(body).map_err(NotJson)?;
        Ok(self
            .validator
            .iter_errors(&v)
            .take(MAX_VIOLATIONS)
            .map(|e| {
                serde_json::json!({
                    "pointer": e.instance_path().to_string(),
                    "message": e.to_string(),
                })
            })
            .collect())
    }
}

#[async_trait]
impl Plugin for Validate {
    fn wants_body(&self) -> bool {
        true
    }

    fn body_limit(&self) -> Option<u64> {
        Some(self.max_body)
    }

    async fn on_request_body(&self, call: &mut BodyCall<'_>) -> Decision {
        // methods that carry no document are not checked when they send none
        if call.body.is_empty()
            && matches!(
                call.req.method,
                http::Method::GET
                    | http::Method::HEAD
                    | http::Method::DELETE
                    | http::Method::OPTIONS
            )
        {
            return Ok(Flow::Continue);
        }
        Ok(match self.violations(call.body) {
            Ok(v) if v.is_empty() => Flow::Continue,
            Ok(v) => Flow::Respond(
                Reply::error(
                    400,
                    "validation_failed",
                    "the request call.body does not match the route's schema",
                )
                .with_details(serde_json::json!({ "violations": v }))
                .blocked_as("validation"),
            ),
            Err(e) => Flow::Respond(
                Reply::error(400, "invalid_json", e.to_string()).blocked_as("validation"),
            ),
        })
    }
}

impl Factory for Validate {
    const NAME: &'static str = "validate";
    const SUMMARY: &'static str =
        "Check the JSON request body against a JSON Schema; violations: 400 with their pointers";
    type Settings = ValidateSettings;

    fn api_doc(s: &Self::Settings, base_dir: &std::path::Path) -> crate::ApiDoc {
        let schema = s.schema.clone().or_else(|| {
            let text = std::fs::read_to_string(base_dir.join(s.schema_file.as_deref()?)).ok()?;
            serde_json::from_str(&text).ok()
        });
        crate::ApiDoc {
            request_body: schema,
            ..crate::ApiDoc::answers([
                crate::ApiAnswer::new(400, "The body is not JSON (`invalid_json`) or does not match the route's schema (`validation_failed`, with `violations`).", &[]),
                crate::ApiAnswer::new(413, "The body is larger than the validator reads.", &[]),
            ])
        }
    }

    fn build(s: ValidateSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(Validate::new(s, cx)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Shared;

    fn build(v: serde_json::Value) -> Result<Validate, SettingsError> {
        let shared = Shared::dry();
        let cx = BuildCtx {
            shared: &shared,
            base_dir: std::path::Path::new("."),
            route: Some("r"),
        };
        Validate::new(crate::parse_settings(&v)?, &cx)
    }

    #[test]
    fn violations_have_pointers() {
        let p = build(serde_json::json!({"schema": {
            "type": "object",
            "required": ["prompt"],
            "properties": {"prompt": {"type": "string"}, "max_tokens": {"type": "integer", "maximum": 10}}
        }}))
        .unwrap();
        assert!(p.violations(br#"{"prompt": "x"}"#).unwrap().is_empty());
        let v = p.violations(br#"{"max_tokens": 99}"#).unwrap();
        let pointers: Vec<_> = v.iter().map(|x| x["pointer"].as_str().unwrap()).collect();
        assert!(
            pointers.contains(&"") && pointers.contains(&"/max_tokens"),
            "{v:?}"
        );
        assert!(p.violations(b"{nope").is_err());
        assert!(build(serde_json::json!({})).is_err());
        let e = build(serde_json::json!({"schema": {"type": 12}}))
            .err()
            .unwrap();
        assert_eq!(e.path, "schema");
        let e = build(serde_json::json!({"schema_file": "/nonexistent.json"}))
            .err()
            .unwrap();
        assert_eq!(e.path, "schema_file");
    }
}
