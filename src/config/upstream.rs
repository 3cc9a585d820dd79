//! routes.yaml `upstreams:`: pools, balancing, health, breakers, retries, timeouts.

use super::units::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// Speak TLS to the targets: `false` (default), `true`, or settings (TLS on, with
    /// a client certificate for upstream mTLS and/or a CA to verify the targets).
    #[serde(default)]
    pub tls: super::UpstreamTls,
    /// SNI and default `Host` for the targets. Default: `Host` is the target address
    /// and, with TLS, no SNI is sent and the targets' certificates are not verified
    /// (set `host` for name-based TLS backends and to verify them).
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
