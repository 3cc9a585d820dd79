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
    /// The pool that serves it (one of `upstream`, `split`, `pipeline`, `async`,
    /// `jobs`, `fallback`).
    pub upstream: Option<String>,
    /// Several pools sharing the route by weight (canary, blue/green), instead of
    /// `upstream`: `[{ upstream: blue, weight: 90 }, { upstream: green, weight: 10 }]`,
    /// or `{ sides: [...], pin: [...], sticky: {...}, side_header: ... }`.
    pub split: Option<super::SplitConfig>,
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
    /// Answer `GET` for the async jobs' status: `jobs: {}` on a route whose
    /// `match.path` ends in `/{job_id}`; on one ending in `/{job_id}/events`, the job's
    /// state changes as Server-Sent Events.
    pub jobs: Option<JobsConfig>,
    /// Marks a deprecated API version: `true`, or details.
    pub deprecated: Option<Deprecation>,
    /// Answer served when no target of the upstream can take the request or the
    /// upstream fails (the gateway's own 502/503/504), or the whole
    /// answer when the route has no upstream.
    pub fallback: Option<FallbackConfig>,
    /// Total time for the request, retries included (default: none) → 504.
    pub timeout: Option<Dur>,
    /// A streamed answer (`text/event-stream`, or a streamed pipeline's first step)
    /// silent this long is ended; while events flow it stays open past `timeout`
    /// (default: the upstream's `timeouts.read`).
    pub stream_idle_timeout: Option<Dur>,
    /// Send `: keep-alive` comment lines to the client while a `text/event-stream`
    /// answer has been idle this long (only between two events; default: none). Proxied
    /// streams and the pipeline's stream; job events streams send them every 15 s
    /// unless this sets another interval. Keep-alives are not upstream activity: they do
    /// not hold off `stream_idle_timeout`, which must be longer.
    pub sse_keepalive: Option<Dur>,
    /// Largest request body (default: `server.max_body_size`).
    pub max_body_size: Option<ByteSize>,
    /// Allow retries of non-idempotent methods (POST, PATCH) on statuses and timeouts
    /// (default false; connect failures are always retried).
    #[serde(default)]
    pub retry_non_idempotent: bool,
    /// Encoded characters this route takes in its path, besides `server.allow_encoded`
    /// (`slash`, `backslash`, `semicolon`, `percent`, `question_mark`, `hash`); they are
    /// forwarded as received. Matching stays on the normalised path.
    #[serde(default)]
    pub allow_encoded: Vec<super::EncodedChar>,
}

impl RouteConfig {
    /// A `jobs:` route that streams a job's state changes: its `match.path` ends in
    /// `/{job_id}/events`.
    pub fn is_job_events(&self) -> bool {
        self.jobs.is_some()
            && self
                .matcher
                .path
                .as_deref()
                .is_some_and(|p| p.ends_with("/{job_id}/events"))
    }
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

/// One step of a pipeline route: a POST of JSON to `path` on a target of `upstream`.
/// The first step gets the client's body; each later one `{"text": <the previous
/// answer's "text">}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineStep {
    /// Name in the answer's `steps` and errors, and the key of this step's answer in
    /// the final body (default: the upstream's name).
    pub name: Option<String>,
    /// The upstream pool called (balancing, health, breakers, retries, timeouts).
    pub upstream: String,
    /// Path sent to the target.
    pub path: String,
}

impl PipelineStep {
    /// The step's name: `name`, else the upstream's.
    pub fn step_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.upstream)
    }
}

/// Async job route settings: the request becomes a job (202 + `job_id`), run later by
/// the generation then the enrichment stage; its state is read on the `jobs` route.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsyncConfig {
    /// Kafka topic the request is published to when `KAFKA_BOOTSTRAP_SERVERS` is set
    /// (the embedded queue, used otherwise, only names its jobs with it).
    pub topic: String,
    /// The generation stage (default `{ upstream: generation, path: /generate }`).
    #[serde(default = "default_generation_stage")]
    pub generation: StageTarget,
    /// The enrichment stage (default `{ upstream: enrichment, path: /enrich }`).
    #[serde(default = "default_enrichment_stage")]
    pub enrichment: StageTarget,
    /// Where a job is read; `{job_id}` is replaced (default `/api/v1/jobs/{job_id}`).
    /// Sent as `status_url` and `Location`.
    #[serde(default = "default_status_path")]
    pub status_path: String,
    /// `callback_url` checks and webhook delivery.
    #[serde(default)]
    pub callback: CallbackConfig,
}

/// One stage of an async job.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageTarget {
    /// The upstream pool called.
    pub upstream: String,
    /// Path sent to the target.
    pub path: String,
}

fn default_generation_stage() -> StageTarget {
    StageTarget {
        upstream: "generation".into(),
        path: "/generate".into(),
    }
}

fn default_enrichment_stage() -> StageTarget {
    StageTarget {
        upstream: "enrichment".into(),
        path: "/enrich".into(),
    }
}

fn default_status_path() -> String {
    "/api/v1/jobs/{job_id}".into()
}

/// Webhook settings of an async route. A submitted `callback_url` must be http(s) and
/// its host listed in `allow_hosts`; the final job is POSTed to it, signed with
/// `X-Signature: sha256=<hex HMAC-SHA256 of the body>`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackConfig {
    /// Hosts a `callback_url` may name: exact names or IPs, or `*.example.com`
    /// (default: none, so `callback_url` is refused).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Allow callbacks to loopback, link-local, private and other non-public
    /// addresses (default false: refused even when the host is listed, checked on
    /// every address the name resolves to).
    #[serde(default)]
    pub allow_private_networks: bool,
    /// Environment variable holding the HMAC key (default `WEBHOOK_SECRET`); when it
    /// is unset, `callback_url` is refused.
    #[serde(default = "default_secret_env")]
    pub secret_env: String,
    /// Delivery tries, the first included (default 5).
    #[serde(default = "default_callback_attempts")]
    pub attempts: u32,
    /// Wait before the second try; doubles each try (default `1s`).
    #[serde(default = "default_callback_backoff")]
    pub backoff: Dur,
    /// Longest wait between tries (default `60s`).
    #[serde(default = "default_callback_max_backoff")]
    pub max_backoff: Dur,
    /// Time for one delivery (default `10s`).
    #[serde(default = "default_callback_timeout")]
    pub timeout: Dur,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            allow_private_networks: false,
            secret_env: default_secret_env(),
            attempts: default_callback_attempts(),
            backoff: default_callback_backoff(),
            max_backoff: default_callback_max_backoff(),
            timeout: default_callback_timeout(),
        }
    }
}

fn default_secret_env() -> String {
    "WEBHOOK_SECRET".into()
}
fn default_callback_attempts() -> u32 {
    5
}
fn default_callback_backoff() -> Dur {
    Dur::secs(1)
}
fn default_callback_max_backoff() -> Dur {
    Dur::secs(60)
}
fn default_callback_timeout() -> Dur {
    Dur::secs(10)
}

/// The job status route (no settings yet).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {}

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
