//! One call of a flow step through an upstream pool, like a proxied request: the pool
//! chooses the target (balancing, health, breakers), the pick's outcome feeds the
//! breaker, outlier detection and latency, the pool's timeouts bound each try, and its
//! retry policy (tries, backoff, budget, `on`) decides retries. Over TLS, the pool's
//! `tls:` material applies as for proxied requests: the client certificate (upstream
//! mTLS), the CAs, and the name verified (`host` when set, else the address).

use crate::upstream::{backoff, Failed, NoTarget, Outcome, Pool, RetryPolicy};
use bytes::Bytes;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What sets a step client apart (reqwest fixes these per client): the connect
/// timeout, the pool's TLS material, and for TLS with a `host`, the name pinned to the
/// target's address (so the certificate is verified for `host`, as pingora does).
#[derive(Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    connect: Duration,
    tls: Option<u64>,
    pin: Option<(String, SocketAddr)>,
}

/// Most step clients kept; beyond, the map starts over (DNS-discovered targets come
/// and go; pinned clients are per target).
const MAX_CLIENTS: usize = 256;

/// HTTP clients for step calls, one per [`ClientKey`]; each keeps its own keep-alive
/// connections.
#[derive(Default)]
pub struct Clients {
    by_key: Mutex<HashMap<ClientKey, reqwest::Client>>,
}

/// reqwest cannot build a step client (its TLS material, its settings).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(#[source] pub reqwest::Error);

impl Clients {
    fn get(&self, key: ClientKey, pool: &Pool) -> Result<reqwest::Client, ClientError> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let mut b = reqwest::Client::builder()
            .connect_timeout(key.connect)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(tls) = &pool.tls {
            b = tls.apply_to_client(b);
        }
        if let Some((host, addr)) = &key.pin {
            b = b.resolve(host, *addr);
        }
        let c = b.build().map_err(ClientError)?;
        if map.len() >= MAX_CLIENTS {
            map.clear();
        }
        map.insert(key, c.clone());
        Ok(c)
    }
}

/// The name to verify a TLS target's certificate for: `host` without a port.
fn tls_name(pool: &Pool) -> Option<String> {
    if !pool.config.tls.enabled() {
        return None;
    }
    let host = pool.config.host.as_deref()?;
    let a: http::uri::Authority = host.parse().ok()?;
    Some(
        a.host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// A step's call.
pub struct Call<'a> {
    pub pool: &'a Pool,
    pub path: &'a str,
    pub body: Bytes,
    pub request_id: &'a str,
    /// W3C `traceparent` sent to the target.
    pub traceparent: Option<&'a str>,
    /// Statuses and timeouts may be retried (the step is idempotent, or the route
    /// allows retrying non-idempotent requests); connect failures always may.
    pub retry_unsafe: bool,
}

/// A step's successful answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// No target could take the request (all down, breakers open).
    NoTarget(Duration),
    /// The target could not be reached.
    Connect(String),
    /// The target did not answer within the pool's timeouts.
    Timeout,
    /// The target answered this non-2xx status (with the start of its body).
    Status(u16, String),
    /// Another transport error.
    Other(String),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::NoTarget(_) => write!(f, "no healthy target"),
            StepError::Connect(e) => write!(f, "cannot connect: {e}"),
            StepError::Timeout => write!(f, "no answer in time"),
            StepError::Status(s, _) => write!(f, "answered {s}"),
            StepError::Other(e) => write!(f, "{e}"),
        }
    }
}

impl StepError {
    /// The label of `gateway_route_errors_total{error_type}`.
    pub fn error_type(&self) -> &'static str {
        match self {
            StepError::NoTarget(_) => "no_healthy_target",
            StepError::Connect(_) => "connect_failure",
            StepError::Timeout => "timeout",
            StepError::Status(..) => "upstream_status",
            StepError::Other(_) => "upstream_error",
        }
    }
}

/// Calls the step, retrying as the pool's policy allows.
pub async fn call(clients: &Clients, c: Call<'_>) -> Result<Answer, StepError> {
    let cfg = &c.pool.config;
    let policy = RetryPolicy::new(cfg.retry.as_ref());
    let attempts = policy.attempts();
    let t = &cfg.timeouts;
    let scheme = if cfg.tls.enabled() { "https" } else { "http" };
    let name = tls_name(c.pool);
    let mut tried: SmallVec<[SocketAddr; 4]> = SmallVec::new();
    let mut last = StepError::Other("not tried".into());
    for attempt in 0..attempts {
        if attempt > 0 {
            let failed = match &last {
                StepError::Connect(_) => Failed::Connect,
                StepError::Timeout => Failed::Timeout,
                StepError::Status(s, _) => Failed::Status(*s),
                StepError::Other(_) => Failed::Reset,
                StepError::NoTarget(_) => break,
            };
            if !policy.retries(failed, c.retry_unsafe) || !c.pool.try_retry() {
                break;
            }
            if let Some(r) = &cfg.retry {
                tokio::time::sleep(backoff(r, attempt)).await;
            }
        }
        let pick = match c.pool.select(None, &tried) {
            Ok(p) => p,
            Err(NoTarget::AllDown { retry_after }) => {
                return Err(StepError::NoTarget(retry_after));
            }
        };
        tried.push(pick.addr);
        let key = ClientKey {
            connect: t.connect.get(),
            tls: c.pool.tls.as_ref().map(|t| t.group_key()),
            pin: name.clone().map(|n| (n, pick.addr)),
        };
        let client = clients
            .get(key, c.pool)
            .map_err(|e| StepError::Other(e.to_string()))?;
        let url = match &name {
            Some(n) if n.contains(':') => {
                format!("{scheme}://[{n}]:{}{}", pick.addr.port(), c.path)
            }
            Some(n) => format!("{scheme}://{n}:{}{}", pick.addr.port(), c.path),
            None => format!("{scheme}://{}{}", pick.addr, c.path),
        };
        let mut req = client
            .post(&url)
            .timeout(t.connect.get() + t.read.get())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-request-id", c.request_id)
            .body(c.body.clone());
        if let Some(tp) = c.traceparent {
            req = req.header("traceparent", tp);
        }
        if let Some(h) = &cfg.host {
            req = req.header(http::header::HOST, h.as_str());
        }
        let started = Instant::now();
        let result = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match tokio::time::timeout(
                    t.read
                        .get()
                        .saturating_sub(started.elapsed())
                        .max(Duration::from_millis(1)),
                    resp.bytes(),
                )
                .await
                {
                    Ok(Ok(body)) => Ok((status, body)),
                    Ok(Err(e)) if e.is_timeout() => Err(StepError::Timeout),
                    Ok(Err(e)) => Err(StepError::Other(e.to_string())),
                    Err(_) => Err(StepError::Timeout),
                }
            }
            Err(e) if e.is_connect() => Err(StepError::Connect(e.to_string())),
            Err(e) if e.is_timeout() => Err(StepError::Timeout),
            Err(e) => Err(StepError::Other(e.to_string())),
        };
        match result {
            Ok((status, body)) => {
                pick.finish(Outcome::Status(status));
                if (200..300).contains(&status) {
                    return Ok(Answer { status, body });
                }
                let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
                last = StepError::Status(status, text);
            }
            Err(e) => {
                pick.finish(match e {
                    StepError::Connect(_) => Outcome::ConnectFailure,
                    StepError::Timeout => Outcome::Timeout,
                    _ => Outcome::Error,
                });
                last = e;
            }
        }
    }
    Err(last)
}
