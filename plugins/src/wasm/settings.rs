//! The settings of a `wasm` entry in routes.yaml.

use crate::policy::units::{Period, Size};
use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

/// What happens to a request when the filter traps, runs past `max_time` or past
/// `max_memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// The request is answered 503 (the default).
    #[default]
    Closed,
    /// The filter is skipped for the rest of the request, which goes on.
    Open,
}

/// The filter's configuration: a string is handed as is, any other YAML value as its
/// JSON text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Configuration(pub Vec<u8>);

impl<'de> Deserialize<'de> for Configuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(Configuration(match v {
            serde_json::Value::String(s) => s.into_bytes(),
            serde_json::Value::Null => Vec::new(),
            other => other.to_string().into_bytes(),
        }))
    }
}

impl JsonSchema for Configuration {
    fn schema_name() -> String {
        "WasmConfiguration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = schemars::schema::SchemaObject::default();
        s.metadata().description = Some(
            "The filter's configuration (proxy_on_configure): a string as is, any other value as JSON text"
                .into(),
        );
        s.into()
    }
}

fn default_max_time() -> Period {
    Period(Duration::from_millis(10))
}

fn default_max_memory() -> Size {
    Size(64 * 1024 * 1024)
}

/// Settings of the `wasm` plugin.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WasmSettings {
    /// The filter's `.wasm` file (relative to routes.yaml); an edit reloads the table.
    pub module: String,
    /// The filter's root context id (Envoy's `root_id`; the `plugin_root_id` property).
    #[serde(default)]
    pub root_id: String,
    /// Handed to the filter's `proxy_on_configure`.
    #[serde(default)]
    pub configuration: Configuration,
    /// `closed` (default): a trap, a timeout or a memory overrun answers 503; `open`:
    /// the filter is skipped for that request.
    #[serde(default)]
    pub fail: FailMode,
    /// Longest run of one call into the filter (default `10ms`).
    #[serde(default = "default_max_time")]
    pub max_time: Period,
    /// Largest linear memory of one instance of the filter (default `64MiB`).
    #[serde(default = "default_max_memory")]
    pub max_memory: Size,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn configuration_is_a_string_or_json_text() {
        let s: WasmSettings = crate::parse_settings(&serde_json::json!({
            "module": "f.wasm", "configuration": {"a": [1, 2]}
        }))
        .unwrap();
        assert_eq!(s.configuration.0, br#"{"a":[1,2]}"#);
        assert_eq!(s.fail, FailMode::Closed);
        assert_eq!(s.max_time.0, Duration::from_millis(10));
        assert_eq!(s.max_memory.0, 64 << 20);
        let s: WasmSettings = crate::parse_settings(&serde_json::json!({
            "module": "f.wasm", "configuration": "plain", "fail": "open", "max_time": "50ms"
        }))
        .unwrap();
        assert_eq!(s.configuration.0, b"plain");
        assert_eq!(s.fail, FailMode::Open);
        let e = crate::parse_settings::<WasmSettings>(&serde_json::json!({
            "module": "f.wasm", "fail": "maybe"
        }))
        .err()
        .unwrap();
        assert_eq!(e.path, "fail");
    }
}
