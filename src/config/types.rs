//! The shape of routes.yaml, version 1. Every struct refuses unknown fields. The JSON
//! Schema in `docs/routes.schema.json` is generated from these types (`api-gateway schema`).

use super::units::{ByteSize, Dur};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole route table.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version; only `1` exists.
    pub version: u32,
    /// Listener-level settings. Read at start-up only: a reload that changes them is
    /// accepted for everything else and logs that a restart is needed for these.
    #[serde(default)]
    pub server: ServerConfig,
    /// Named upstream pools, referenced by routes.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes; the most specific match wins, ties go to the first in the file.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// Listener-level settings (fixed at start-up).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// A TLS listener (HTTP/1.1 and HTTP/2 via ALPN) beside the plain one.
    pub tls: Option<TlsConfig>,
    /// Largest request body accepted on any route (default `100MiB`); a route may lower
    /// or raise it with `max_body_size`. Larger bodies get 413.
    pub max_body_size: Option<ByteSize>,
    /// Seconds a graceful shutdown waits for requests in flight (default `10s`).
    pub grace_period: Option<Dur>,
}

/// A TLS listener.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Listen address, e.g. `0.0.0.0:8443`.
    pub listen: String,
    /// PEM certificate chain file.
    pub cert: String,
    /// PEM private key file.
    pub key: String,
}

/// A pool of targets behind one name.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Static targets. Either `targets` or `discovery` must be given.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    /// Dynamic targets from DNS.
    pub discovery: Option<DiscoveryConfig>,
    /// Selection algorithm (default `round_robin`, smooth weighted).
    #[serde(default)]
    pub balance: Balance,
    /// What `consistent_hash` hashes on (default: client IP).
    pub hash_on: Option<HashOn>,
    /// Active health checks; without one every target counts as healthy unless passive
    /// outlier detection ejects it.
    pub health_check: Option<HealthCheckConfig>,
    /// Passive outlier detection from live traffic.
    pub outlier_detection: Option<OutlierConfig>,
    /// Per-target circuit breaker.
    pub circuit_breaker: Option<BreakerConfig>,
    /// Retry policy.
    pub retry: Option<RetryConfig>,
    /// Timeouts towards the targets.
    #[serde(default)]
    pub timeouts: TimeoutConfig,
    /// Speak TLS to the targets (default false).
    #[serde(default)]
    pub tls: bool,
    /// SNI and default `Host` for the targets (default: the target address).
    pub host: Option<String>,
}

/// One static target.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `ip:port` or `host:port` (resolved once at load).
    pub addr: String,
    /// Relative share of traffic (default 1). `0` drains the target: no new requests.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// DNS discovery: A/AAAA records re-resolved every `refresh`; the last good set is kept
/// when resolution fails.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// `host:port`.
    pub dns: String,
    /// Re-resolution interval (default `10s`).
    #[serde(default = "default_refresh")]
    pub refresh: Dur,
    /// Weight of every discovered target (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// DNS server `ip:port` to ask instead of the system resolver (tests, split DNS).
    pub nameserver: Option<String>,
}

fn default_refresh() -> Dur {
    Dur::secs(10)
}

/// Balancing algorithms.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Smooth weighted round robin (nginx's): weights 3 and 1 give A A B A.
    #[default]
    RoundRobin,
    /// Weighted least outstanding requests, ties broken at random.
    LeastConn,
    /// Weighted random.
    Random,
    /// Power of two random choices on outstanding requests.
    LeastRequest,
    /// Power of two random choices on peak-EWMA latency.
    PeakEwma,
    /// Consistent hashing (Maglev) on `hash_on`.
    ConsistentHash,
}

/// The key of consistent hashing: `client_ip`, `path`, `{ header: NAME }` or
/// `{ cookie: NAME }`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum HashOn {
    /// `client_ip` (the client address) or `path` (the normalised request path).
    Simple(HashOnSimple),
    /// A request header's value.
    Header { header: String },
    /// A cookie's value.
    Cookie { cookie: String },
}

/// Keys of consistent hashing that need no name.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HashOnSimple {
    ClientIp,
    Path,
}

/// Active health checking.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// `http` (default) or `tcp`.
    #[serde(default)]
    pub kind: HealthCheckKind,
    /// HTTP path probed (default `/health`).
    #[serde(default = "default_hc_path")]
    pub path: String,
    /// Statuses that count as healthy (default: any 2xx).
    #[serde(default)]
    pub expected_statuses: Vec<u16>,
    /// `Host` header of the probe (default: the target address).
    pub host: Option<String>,
    /// Time between probes (default `5s`).
    #[serde(default = "default_hc_interval")]
    pub interval: Dur,
    /// Probe timeout (default `1s`).
    #[serde(default = "default_hc_timeout")]
    pub timeout: Dur,
    /// Successes in a row to become healthy (default 2).
    #[serde(default = "default_two")]
    pub healthy_threshold: u32,
    /// Failures in a row to become unhealthy (default 3).
    #[serde(default = "default_three")]
    pub unhealthy_threshold: u32,
    /// Random extra delay added to each interval, up to this much (default `0s`).
    #[serde(default)]
    pub jitter: Dur,
}

fn default_hc_path() -> String {
    "/health".into()
}
fn default_hc_interval() -> Dur {
    Dur::secs(5)
}
fn default_hc_timeout() -> Dur {
    Dur::secs(1)
}
fn default_two() -> u32 {
    2
}
fn default_three() -> u32 {
    3
}

/// Kind of active probe.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckKind {
    #[default]
    Http,
    Tcp,
}

/// Passive outlier detection: eject targets that fail live requests.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutlierConfig {
    /// Consecutive 5xx or connect failures that eject a target (default 5).
    #[serde(default = "default_five")]
    pub consecutive_failures: u32,
    /// First ejection time; the n-th ejection lasts n times this (default `30s`).
    #[serde(default = "default_base_ejection")]
    pub base_ejection: Dur,
    /// Longest ejection (default `300s`).
    #[serde(default = "default_max_ejection")]
    pub max_ejection: Dur,
    /// Most of the pool, in percent, ejected at once (default 50).
    #[serde(default = "default_fifty")]
    pub max_ejection_percent: u32,
}

fn default_five() -> u32 {
    5
}
fn default_base_ejection() -> Dur {
    Dur::secs(30)
}
fn default_max_ejection() -> Dur {
    Dur::secs(300)
}
fn default_fifty() -> u32 {
    50
}

/// Per-target circuit breaker.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (default 5).
    #[serde(default = "default_five")]
    pub failure_threshold: u32,
    /// Time the breaker stays open before half-opening (default `60s`).
    #[serde(default = "default_open_for")]
    pub open_for: Dur,
    /// Probe requests let through while half-open (default 1).
    #[serde(default = "default_one")]
    pub half_open_requests: u32,
    /// Response statuses that count as failures besides connect errors and timeouts
    /// (default 500, 502, 503, 504).
    #[serde(default = "default_breaker_statuses")]
    pub failure_statuses: Vec<u16>,
}

fn default_open_for() -> Dur {
    Dur::secs(60)
}
fn default_one() -> u32 {
    1
}
fn default_breaker_statuses() -> Vec<u16> {
    vec![500, 502, 503, 504]
}

/// Retry policy.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Total tries including the first (default 3).
    #[serde(default = "default_three")]
    pub attempts: u32,
    /// First backoff; doubles each retry, with full jitter (default `100ms`).
    #[serde(default = "default_backoff")]
    pub backoff: Dur,
    /// Longest backoff (default `2s`).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Dur,
    /// What is retried (default: connect_failure, reset, 502, 503, 504). Connect
    /// failures are retried for every method, since nothing reached the target; the
    /// rest only for idempotent methods unless the route sets `retry_non_idempotent`.
    #[serde(default = "default_retry_on")]
    pub on: Vec<RetryOn>,
    /// Share of requests that may be retries, so a failing target cannot multiply load.
    #[serde(default)]
    pub budget: RetryBudgetConfig,
}

fn default_backoff() -> Dur {
    Dur::millis(100)
}
fn default_max_backoff() -> Dur {
    Dur::secs(2)
}
fn default_retry_on() -> Vec<RetryOn> {
    vec![
        RetryOn::Kind(RetryKind::ConnectFailure),
        RetryOn::Kind(RetryKind::Reset),
        RetryOn::Status(502),
        RetryOn::Status(503),
        RetryOn::Status(504),
    ]
}

/// One retry condition: a status code or a kind of failure.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum RetryOn {
    Status(u16),
    Kind(RetryKind),
}

/// Failure kinds that can be retried.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RetryKind {
    /// The connection could not be made (nothing was sent).
    ConnectFailure,
    /// The target did not answer within `timeouts.read`/`write`.
    Timeout,
    /// The connection broke before a response arrived (idempotent or opted-in only).
    Reset,
}

/// Retry budget: retries allowed = `min_per_second` + `ratio` × requests (over 10 s).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// Share of requests that may be retries (default 0.2).
    #[serde(default = "default_ratio")]
    pub ratio: f64,
    /// Retries per second always allowed (default 10).
    #[serde(default = "default_ten")]
    pub min_per_second: u32,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self {
            ratio: default_ratio(),
            min_per_second: default_ten(),
        }
    }
}

fn default_ratio() -> f64 {
    0.2
}
fn default_ten() -> u32 {
    10
}

/// Timeouts towards targets. A timeout gives 504.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConfig {
    /// TCP (and TLS) connect (default `2s`).
    #[serde(default = "default_connect")]
    pub connect: Dur,
    /// Longest wait for the next bytes of the response (default `30s`).
    #[serde(default = "default_read")]
    pub read: Dur,
    /// Longest wait to write request bytes (default `30s`).
    #[serde(default = "default_read")]
    pub write: Dur,
    /// Idle upstream keep-alive connections are closed after this (default `60s`).
    #[serde(default = "default_idle")]
    pub idle: Dur,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect: default_connect(),
            read: default_read(),
            write: default_read(),
            idle: default_idle(),
        }
    }
}

fn default_connect() -> Dur {
    Dur::secs(2)
}
fn default_read() -> Dur {
    Dur::secs(30)
}
fn default_idle() -> Dur {
    Dur::secs(60)
}

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
    /// Answer served when no target of the upstream can take the request, or the whole
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

/// A plugin in a route's chain: `name` plus the plugin's own fields.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct PluginConfig {
    /// Plugin name (`request_headers`, `response_headers`, `ip_restriction`, ...).
    pub name: String,
    /// The plugin's own settings.
    #[serde(flatten)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: serde_json::Map<String, serde_json::Value>,
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
        Ok(PluginConfig { name, settings })
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
