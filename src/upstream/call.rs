//! One HTTP call through a pool, made by the gateway itself (a flow's step, a plugin's
//! [`gateway_plugins::UpstreamCalls`]) rather than proxied: the pool chooses the target
//! (balancing, health, breakers), the pick's outcome feeds the breaker, outlier
//! detection and latency, the pool's timeouts bound each try, and its retry policy
//! (tries, backoff, budget, `on`) decides retries. Over TLS, the pool's `tls:` material
//! applies as for proxied requests: the client certificate (upstream mTLS), the CAs,
//! and the name verified (`host` when set, else the address).

use super::{backoff, Failed, NoTarget, Outcome, Pool, RetryPolicy};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What sets a client apart (reqwest fixes these per client): the connect timeout,
/// the pool's TLS material, and for TLS with a `host`, the name pinned to the target's
/// address (so the certificate is verified for `host`, as pingora does).
#[derive(Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    connect: Duration,
    tls: Option<u64>,
    pin: Option<(String, SocketAddr)>,
    /// HTTP/2 only (gRPC): prior knowledge over plain TCP.
    h2: bool,
}

/// Most clients kept; beyond, the map starts over (DNS-discovered targets come and go;
/// pinned clients are per target).
const MAX_CLIENTS: usize = 256;

/// HTTP clients for the gateway's own calls, one per [`ClientKey`]; each keeps its own
/// keep-alive connections.
#[derive(Default)]
pub struct Clients {
    by_key: Mutex<HashMap<ClientKey, reqwest::Client>>,
}

/// reqwest cannot build a client (its TLS material, its settings).
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
        if key.h2 {
            b = b.http2_prior_knowledge();
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

/// One call.
pub struct Request<'a> {
    pub pool: &'a Pool,
    pub method: Method,
    /// Path and query, sent as is.
    pub path: &'a str,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Statuses, timeouts and resets may be retried (the call is idempotent, or the
    /// route allows retrying non-idempotent requests); connect failures always may.
    pub retry_unsafe: bool,
    /// Largest answer body read.
    pub max_answer_body: usize,
    /// HTTP/2 only (gRPC), with `te: trailers`.
    pub http2: bool,
}

/// The target's answer (after the retries `retry.on` asks for).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Trailers after the body (empty when none came).
    pub trailers: HeaderMap,
}

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No target could take the request (all down, breakers open).
    #[error("no healthy target")]
    NoTarget(Duration),
    /// The target could not be reached.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The target did not answer within the pool's timeouts.
    #[error("no answer in time")]
    Timeout,
    /// The answer's body is over the call's limit.
    #[error("answer body over {0} bytes")]
    TooLarge(usize),
    /// The request cannot be built (a bad path).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Another transport error.
    #[error("{0}")]
    Other(String),
}

/// Headers never forwarded by the gateway's own calls (hop-by-hop, and what the
/// client sets itself).
const NOT_SENT: &[http::HeaderName] = &[
    http::header::HOST,
    http::header::CONNECTION,
    http::header::CONTENT_LENGTH,
    http::header::TRANSFER_ENCODING,
    http::header::TE,
    http::header::TRAILER,
    http::header::UPGRADE,
    http::header::PROXY_AUTHORIZATION,
];

/// What [`open`] got: a 2xx `text/event-stream` answer, its body to read as it comes,
/// or a whole answer (any other).
pub enum Opened {
    Stream(reqwest::Response),
    Whole(Answer),
}

fn is_event_stream(resp: &reqwest::Response) -> bool {
    resp.status().is_success()
        && resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// Calls the pool, retrying as its policy allows. An answer of any status is `Ok`.
pub async fn call(clients: &Clients, c: Request<'_>) -> Result<Answer, CallError> {
    let limit = c.max_answer_body;
    match exchange(clients, c, false).await? {
        Opened::Whole(a) => Ok(a),
        Opened::Stream(resp) => read_answer(resp, limit).await,
    }
}

/// Calls the pool as [`call`] does, except that a 2xx `text/event-stream` answer is
/// handed back once its head arrived (`timeouts.connect` + `timeouts.read` bound the
/// wait; no retry after it), its body to be read by the caller as it comes.
pub async fn open(clients: &Clients, c: Request<'_>) -> Result<Opened, CallError> {
    exchange(clients, c, true).await
}

async fn exchange(clients: &Clients, c: Request<'_>, stream: bool) -> Result<Opened, CallError> {
    let cfg = &c.pool.config;
    let policy = RetryPolicy::new(cfg.retry.as_ref());
    let attempts = policy.attempts();
    let t = &cfg.timeouts;
    let scheme = if cfg.tls.enabled() { "https" } else { "http" };
    let name = tls_name(c.pool);
    let mut headers = c.headers;
    for h in NOT_SENT {
        headers.remove(h);
    }
    if c.http2 {
        // gRPC servers want it; the one TE value HTTP/2 allows
        headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    }
    let mut tried: SmallVec<[SocketAddr; 4]> = SmallVec::new();
    let mut attempt = 0;
    loop {
        let pick = match c.pool.select(None, &tried) {
            Ok(p) => p,
            Err(NoTarget::AllDown { retry_after }) => return Err(CallError::NoTarget(retry_after)),
        };
        attempt += 1;
        tried.push(pick.addr);
        let key = ClientKey {
            connect: t.connect.get(),
            tls: c.pool.tls.as_ref().map(|t| t.group_key()),
            pin: name.clone().map(|n| (n, pick.addr)),
            h2: c.http2,
        };
        let client = clients
            .get(key, c.pool)
            .map_err(|e| CallError::Other(e.to_string()))?;
        let url = match &name {
            Some(n) if n.contains(':') => {
                format!("{scheme}://[{n}]:{}{}", pick.addr.port(), c.path)
            }
            Some(n) => format!("{scheme}://{n}:{}{}", pick.addr.port(), c.path),
            None => format!("{scheme}://{}{}", pick.addr, c.path),
        };
        let url = reqwest::Url::parse(&url).map_err(|e| CallError::Invalid(e.to_string()))?;
        let mut req = client
            .request(c.method.clone(), url)
            .headers(headers.clone())
            .body(c.body.clone());
        if !stream {
            // the whole exchange; a stream's body is timed by its reader
            req = req.timeout(t.connect.get() + t.read.get());
        }
        if let Some(h) = &cfg.host {
            req = req.header(http::header::HOST, h.as_str());
        }
        let started = Instant::now();
        let sent = match tokio::time::timeout(t.connect.get() + t.read.get(), req.send()).await {
            Ok(r) => r.map_err(transport),
            Err(_) => Err(CallError::Timeout),
        };
        let result = match sent {
            Ok(resp) if stream && is_event_stream(&resp) => {
                pick.finish(Outcome::Status(resp.status().as_u16()));
                return Ok(Opened::Stream(resp));
            }
            Ok(resp) => {
                let left = t
                    .read
                    .get()
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1));
                match tokio::time::timeout(left, read_answer(resp, c.max_answer_body)).await {
                    Ok(r) => r,
                    Err(_) => Err(CallError::Timeout),
                }
            }
            Err(e) => Err(e),
        };
        let failed = match &result {
            Ok(a) => Failed::Status(a.status),
            Err(CallError::Connect(_)) => Failed::Connect,
            Err(CallError::Timeout) => Failed::Timeout,
            Err(_) => Failed::Reset,
        };
        pick.finish(match &result {
            Ok(a) => Outcome::Status(a.status),
            Err(CallError::Connect(_)) => Outcome::ConnectFailure,
            Err(CallError::Timeout) => Outcome::Timeout,
            Err(_) => Outcome::Error,
        });
        let ok_status = matches!(failed, Failed::Status(_)) && !policy.lists(failed);
        if ok_status
            || attempt >= attempts
            || !policy.retries(failed, c.retry_unsafe)
            || !c.pool.try_retry()
        {
            return result.map(Opened::Whole);
        }
        if let Some(r) = &cfg.retry {
            tokio::time::sleep(backoff(r, attempt)).await;
        }
    }
}

/// The answer with its body read, up to `limit` bytes, and its trailers.
async fn read_answer(resp: reqwest::Response, limit: usize) -> Result<Answer, CallError> {
    use http_body_util::BodyExt;
    let (head, mut rest) = http::Response::from(resp).into_parts();
    let mut body = BytesMut::new();
    let mut trailers = HeaderMap::new();
    while let Some(frame) = rest.frame().await {
        let frame = frame.map_err(transport)?;
        match frame.into_data() {
            Ok(chunk) => {
                if body.len() + chunk.len() > limit {
                    return Err(CallError::TooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers.extend(t);
                }
            }
        }
    }
    Ok(Answer {
        status: head.status.as_u16(),
        headers: head.headers,
        body: body.freeze(),
        trailers,
    })
}

fn transport(e: reqwest::Error) -> CallError {
    if e.is_connect() {
        CallError::Connect(e.to_string())
    } else if e.is_timeout() {
        CallError::Timeout
    } else {
        CallError::Other(e.to_string())
    }
}
