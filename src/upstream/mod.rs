//! Upstream pools: the targets of each named upstream, how one is chosen, and what is
//! known about each (in-flight requests, active health, outlier ejection, circuit
//! breaker, latency). Target state is keyed by address in a [`Registry`] that outlives
//! reloads, so a rebuilt pool keeps its counters, health and breakers.
//!
//! Use from the proxy:
//! - `registry.build_pool(name, &cfg)` when a route table is built (never blocks: a
//!   DNS-discovered pool starts with the last set resolved for the same `dns` name, or
//!   empty — not ready — until its first resolution);
//! - once per process, start the background work (health probes, DNS refresh) with
//!   [`add_background_services`] (pingora), [`Registry::spawn_background`] (plain
//!   tokio) or [`Registry::run_background`]; it discovers pools built later by reloads;
//!   without it health-checked targets stay unhealthy and discovery pools empty;
//! - per request: `pool.select(hash, &tried)` (a call with empty `tried` counts the
//!   request in the retry budget) →
//!   [`Pick`] → `pick.finish(outcome)`; before a retry `pool.try_retry()` and
//!   [`backoff`]; `NoTarget::AllDown { retry_after }` → 503 with `Retry-After`;
//! - readiness: `pool.has_available_target()`; admin: `pool.snapshot()`;
//! - metrics: [`metrics::register`] then [`Registry::with_metrics`];
//! - the gateway's own calls (flow steps, plugins): [`call::call`], and [`PoolCalls`]
//!   for the plugins' [`gateway_plugins::UpstreamCalls`].

mod background;
pub mod balance;
mod breaker;
pub mod call;
pub mod calls;
mod clock;
pub mod conns;
pub mod discovery;
mod ewma;
pub mod health;
pub mod metrics;
mod pool;
mod registry;
mod retry;
mod retry_policy;
pub mod split;
mod target;
pub mod tls;

pub use background::{add_background_services, UpstreamBackground};
pub use balance::BackendSelection;
pub use breaker::BreakerState;
pub use calls::PoolCalls;
pub use discovery::{DnsDiscovery, ServiceDiscovery, StaticDiscovery};
pub use metrics::UpstreamMetrics;
pub use pool::{Members, NoTarget, Pool, Target};
pub use registry::{PoolError, Registry};
pub use retry::{backoff, RetryBudget};
pub use retry_policy::{idempotent, Failed, RetryPolicy};
pub use split::Split;
pub use target::{HealthRecord, Outcome, Pick, TargetState};

use crate::config::split_host_port;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{SocketAddr, ToSocketAddrs};

/// The consistent-hashing key of some bytes (a header or cookie value, a client IP, a
/// path): stable for the life of the binary.
pub fn hash_key(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Why a static target address gives no socket address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Addr(#[from] crate::config::AddrError),
    #[error("cannot resolve `{addr}`: {source}")]
    Lookup {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{0}` resolves to no address")]
    NoAddress(String),
}

/// `ip:port` directly, or `host:port` through the system resolver (first address).
/// Blocking: for static targets at load time only.
pub fn resolve(addr: &str) -> Result<SocketAddr, ResolveError> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    let (host, port) = split_host_port(addr)?;
    (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|source| ResolveError::Lookup {
            addr: addr.to_string(),
            source,
        })?
        .next()
        .ok_or_else(|| ResolveError::NoAddress(addr.to_string()))
}

/// Polls `what` every 10 ms for up to `within`: whether it became true (tests of the
/// background tasks: health checks, discovery).
#[cfg(test)]
pub(crate) async fn eventually(within: std::time::Duration, what: impl Fn() -> bool) -> bool {
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if what() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    what()
}
