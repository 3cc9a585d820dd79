//! The built-in plugins by name, and building one from a routes.yaml entry.

use crate::model::{BuildCtx, Instance, PluginSpec};
use schemars::gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema, SchemaObject, SingleOrVec};

/// Every built-in plugin. Add one line here for a new plugin.
pub const BUILT_IN: &[PluginSpec] = &[
    PluginSpec::of::<crate::RequestHeaders>(),
    PluginSpec::of::<crate::ResponseHeaders>(),
    PluginSpec::of::<crate::Headers>(),
    PluginSpec::of::<crate::IpFilter>(),
    PluginSpec::of::<crate::IpRestriction>(),
    PluginSpec::of::<crate::Mtls>(),
    PluginSpec::of::<crate::Introspection>(),
    PluginSpec::of::<crate::RateLimit>(),
    PluginSpec::of::<crate::ConcurrencyLimit>(),
    PluginSpec::of::<crate::BodyLimit>(),
    PluginSpec::of::<crate::Cors>(),
    PluginSpec::of::<crate::Validate>(),
    PluginSpec::of::<crate::Jwt>(),
    PluginSpec::of::<crate::ApiKey>(),
    PluginSpec::of::<crate::BasicAuth>(),
    PluginSpec::of::<crate::Token>(),
    PluginSpec::of::<crate::Rbac>(),
    PluginSpec::of::<crate::policy::compress::Compress>(),
    PluginSpec::of::<crate::policy::token_limit::TokenLimit>(),
    PluginSpec::of::<crate::policy::mirror::Mirror>(),
    PluginSpec::of::<crate::wasm::Wasm>(),
    PluginSpec::of::<crate::policy::cache::Cache>(),
];

/// The spec of a built-in plugin.
pub fn find(name: &str) -> Option<&'static PluginSpec> {
    BUILT_IN.iter().find(|s| s.name == name)
}

/// A plugin entry could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("unknown plugin `{0}` (built-in: {known})", known = BUILT_IN.iter().map(|s| s.name).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    /// A bad option at `path` inside the entry (empty: the entry as a whole).
    #[error("plugin `{name}`: {message}")]
    Settings {
        name: String,
        path: String,
        message: String,
    },
}

impl PluginError {
    /// The path of the bad option inside the plugin entry (`algorithms[1]`), if any.
    pub fn path(&self) -> &str {
        match self {
            PluginError::Unknown(_) => "name",
            PluginError::Settings { path, .. } => path,
        }
    }
}

/// Builds a plugin from its name and settings (the entry minus `name` and `enabled`).
pub fn build(
    name: &str,
    settings: &serde_json::Map<String, serde_json::Value>,
    cx: &BuildCtx<'_>,
) -> Result<Instance, PluginError> {
    let spec = find(name).ok_or_else(|| PluginError::Unknown(name.to_string()))?;
    (spec.build)(&serde_json::Value::Object(settings.clone()), cx)
        .map(|p| Instance::new(spec.name, p))
        .map_err(|e| PluginError::Settings {
            name: name.to_string(),
            path: e.path,
            message: e.message,
        })
}

/// What the plugin of an entry adds to the OpenAPI document (nothing for an unknown
/// name or settings that do not parse: the table was validated before).
pub fn api_doc(
    name: &str,
    settings: &serde_json::Map<String, serde_json::Value>,
    base_dir: &std::path::Path,
) -> crate::ApiDoc {
    find(name).map_or_else(crate::ApiDoc::default, |spec| {
        (spec.api_doc)(&serde_json::Value::Object(settings.clone()), base_dir)
    })
}

/// The JSON Schema of one plugin entry: one alternative per built-in plugin, each its
/// settings plus `name` (a constant) and `enabled`.
pub fn entry_schema(gen: &mut SchemaGenerator) -> Schema {
    let mut alternatives = Vec::with_capacity(BUILT_IN.len());
    for spec in BUILT_IN {
        let mut obj = match (spec.schema)(gen) {
            Schema::Object(o) => o,
            Schema::Bool(_) => SchemaObject::default(),
        };
        let name = SchemaObject {
            instance_type: Some(SingleOrVec::Single(Box::new(InstanceType::String))),
            const_value: Some(serde_json::Value::String(spec.name.to_string())),
            ..Default::default()
        };
        let enabled = SchemaObject {
            instance_type: Some(SingleOrVec::Single(Box::new(InstanceType::Boolean))),
            metadata: Some(Box::new(schemars::schema::Metadata {
                description: Some(
                    "`false` turns off a global plugin of this name on this route".into(),
                ),
                ..Default::default()
            })),
            ..Default::default()
        };
        let ov = obj.object();
        ov.properties.insert("name".into(), name.into());
        ov.properties.insert("enabled".into(), enabled.into());
        ov.required.insert("name".into());
        let meta = obj.metadata();
        meta.title = Some(spec.name.to_string());
        meta.description = Some(spec.summary.to_string());
        alternatives.push(Schema::Object(obj));
    }
    Schema::Object(SchemaObject {
        subschemas: Some(Box::new(schemars::schema::SubschemaValidation {
            one_of: Some(alternatives),
            ..Default::default()
        })),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shared;

    fn settings(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn bad_option_is_reported_at_its_path() {
        let shared = Shared::dry();
        let cx = BuildCtx {
            shared: &shared,
            base_dir: std::path::Path::new("."),
            route: Some("r"),
        };
        let e = build(
            "ip_restriction",
            &settings(serde_json::json!({"allow": ["10.0.0.0/8", "nope"]})),
            &cx,
        )
        .err()
        .unwrap();
        assert_eq!(e.path(), "allow[1]");
        let e = build(
            "ip_restriction",
            &settings(serde_json::json!({"allow": ["10.0.0.0/8"], "extra": 1})),
            &cx,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("unknown field `extra`"), "{e}");
        assert!(matches!(
            build("nope", &settings(serde_json::json!({})), &cx),
            Err(PluginError::Unknown(_))
        ));
    }

    #[test]
    fn entry_schema_has_every_plugin() {
        let mut gen = SchemaGenerator::default();
        let s = serde_json::to_value(entry_schema(&mut gen)).unwrap();
        let names: Vec<_> = s["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                a["properties"]["name"]["const"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names.len(), BUILT_IN.len());
    }
}
