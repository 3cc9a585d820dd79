//! routes.yaml `routes:`: matching, rewrites, plugins, deprecation, fallbacks.

use super::units::{ByteSize, Dur};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One route.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique name; the `route` label in metrics.
    pub name: String,
    /// What requests this route takes.
    #[serde(rename = "match")]
    pub matcher: MatchConfig,
    /// The pool that serves it (one of `upstream`, `pipeline`, `async`, `fallback`).
    pub upstream: Option<String>,
    /// Path and host changes on the way to the upstream.
    pub rewrite: Option<RewriteConfig>,
    /// Plugin chain, run in this order.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// Sequential calls to several upstreams (the seed's synchronous flow).
    pub pipeline: Option<Vec<PipelineStep>>,
    /// Publish to a queue and answer 202 (the seed's asynchronous flow).
    #[serde(rename = "async")]
    pub async_job: Option<AsyncConfig>,
    /// Marks a deprecated API version: `true`, or details.
    pub deprecated: Option<Deprecation>,
    /// Answer served when no target of the upstream can take the request or the
    /// upstream fails (the gateway's own 502/503/504), or the whole
    /// answer when the route has no upstream.
    pub fallback: Option<FallbackConfig>,
    /// Total time for the request, retries included (default: none) → 504.
    pub timeout: Option<Dur>,
    /// Largest request body (default: `server.max_body_size`).
    pub max_body_size: Option<ByteSize>,
    /// Allow retries of non-idempotent methods (POST, PATCH) on statuses and timeouts
    /// (default false; connect failures are always retried).
    #[serde(default)]
    pub retry_non_idempotent: bool,
}

/// Match conditions; all given ones must hold. Exactly one of `path`, `path_prefix`
/// is required.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Exact path; `{name}` segments capture a parameter (`/api/v1/jobs/{id}`).
    pub path: Option<String>,
    /// Path prefix on segment boundaries: `/api/v1` takes `/api/v1` and `/api/v1/x`,
    /// not `/api/v1x`.
    pub path_prefix: Option<String>,
    /// Host (port ignored); `*.example.com` matches one or more labels.
    pub host: Option<String>,
    /// Methods; empty = all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Headers that must be present with exactly these values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Path and Host changes on the way to the upstream; applied after matching.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewriteConfig {
    /// Removed from the front of the path.
    pub strip_prefix: Option<String>,
    /// Put in front of the path (after `strip_prefix`).
    pub add_prefix: Option<String>,
    /// Replaces the whole path; `{name}` inserts a captured path parameter.
    pub path: Option<String>,
    /// `Host` sent upstream: absent = the upstream's `host` or target address;
    /// `preserve` = the client's Host; anything else = that value.
    pub host: Option<String>,
}

/// A plugin in a route's chain (or the global list): `name`, optional `enabled`, plus
/// the plugin's own fields. Its JSON Schema is the union of every built-in plugin's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PluginConfig {
    /// Plugin name (`jwt`, `rate_limit`, `request_headers`, ...).
    pub name: String,
    /// `false` on a route turns off the global plugin of this name for that route.
    #[serde(skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// The plugin's own settings.
    #[serde(flatten)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl JsonSchema for PluginConfig {
    fn schema_name() -> String {
        "PluginConfig".into()
    }
    fn json_schema(gen: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        gateway_plugins::entry_schema(gen)
    }
}

impl<'de> Deserialize<'de> for PluginConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut settings = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let name = match settings.remove("name") {
            Some(serde_json::Value::String(n)) => n,
            Some(_) => return Err(D::Error::custom("plugin `name` must be a string")),
            None => return Err(D::Error::missing_field("name")),
        };
        let enabled = match settings.remove("enabled") {
            None => true,
            Some(serde_json::Value::Bool(b)) => b,
            Some(_) => return Err(D::Error::custom("plugin `enabled` must be true or false")),
        };
        Ok(PluginConfig {
            name,
            enabled,
            settings,
        })
    }
}

/// One step of a pipeline route.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineStep {
    pub upstream: String,
    pub path: String,
}

/// Async job route settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsyncConfig {
    pub topic: String,
}

/// `deprecated: true` or details (RFC 9745 `Deprecation`, RFC 8594 `Sunset`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Deprecation {
    Flag(bool),
    Details(DeprecationDetails),
}

/// Deprecation details.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeprecationDetails {
    /// When it was deprecated, RFC 3339 date or date-time (`2026-01-01`).
    pub since: Option<String>,
    /// When it stops working, RFC 3339 date or date-time.
    pub sunset: Option<String>,
    /// A page about the deprecation (sent as `Link: <...>; rel="deprecation"`).
    pub link: Option<String>,
}

/// A fixed answer.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FallbackConfig {
    /// Status (default 503).
    #[serde(default = "default_fallback_status")]
    pub status: u16,
    /// Body text.
    pub body: Option<String>,
    /// File whose content is the body (read at load).
    pub file: Option<String>,
    /// Content-Type (default `application/json`).
    pub content_type: Option<String>,
}

fn default_fallback_status() -> u16 {
    503
}
