//! Webhooks: the `callback_url` check at submit (http/https, host on the route's
//! allow-list, no loopback/link-local/private address unless allowed) and the
//! delivery of the final job: a POST signed with `X-Signature: sha256=<hex
//! HMAC-SHA256 of the body>` keyed by the secret env var, retried with exponential
//! backoff, then given up; the outcome is recorded on the job. Every try resolves the
//! host again and checks every address, and connects to the checked one (no DNS
//! rebinding between check and use).

use crate::config::CallbackConfig;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Why a `callback_url` is refused (at submit, or before a delivery).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("callbacks are off: the gateway has no `{0}` to sign them")]
    NoSecret(String),
    #[error("`callback_url` is not a URL: {0}")]
    NotUrl(#[source] url::ParseError),
    #[error("`callback_url` must be http or https")]
    Scheme,
    #[error("`callback_url` must not carry credentials")]
    Credentials,
    #[error("`callback_url` has no host")]
    NoHost,
    #[error("callback host `{0}` is not allowed on this route")]
    HostNotAllowed(String),
    /// Resolving a URL already checked: it has no host.
    #[error("no host")]
    MissingHost,
    #[error("no port")]
    NoPort,
    #[error("callback host `{host}` does not resolve: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("callback host `{0}` has no address")]
    NoAddress(String),
    #[error("callback host `{host}` is a non-public address ({ip}): refused")]
    NonPublic { host: String, ip: IpAddr },
}

/// Why one delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("`{0}` is not set")]
    NoSecret(String),
    #[error("{0}")]
    Url(#[source] url::ParseError),
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error("{0}")]
    Client(#[source] reqwest::Error),
    #[error("cannot deliver: {0}")]
    Send(#[source] reqwest::Error),
    #[error("the receiver answered {0}")]
    Status(u16),
}

impl DeliveryError {
    /// Whether another try could help (the receiver, not the job, failed).
    pub fn retryable(&self) -> bool {
        matches!(self, DeliveryError::Send(_) | DeliveryError::Status(_))
    }
}

/// A job's webhook: where and how to deliver (stored with the job).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallbackSpec {
    pub url: String,
    pub allow_private_networks: bool,
    pub secret_env: String,
    pub attempts: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub timeout_ms: u64,
}

/// Checks a submitted `callback_url` against the route's settings.
pub async fn check(cfg: &CallbackConfig, url: &str) -> Result<CallbackSpec, CallbackError> {
    if std::env::var(&cfg.secret_env).map_or(true, |s| s.is_empty()) {
        return Err(CallbackError::NoSecret(cfg.secret_env.clone()));
    }
    let u = reqwest::Url::parse(url).map_err(CallbackError::NotUrl)?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(CallbackError::Scheme);
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(CallbackError::Credentials);
    }
    let host = host_of(&u).ok_or(CallbackError::NoHost)?;
    if !host_allowed(&cfg.allow_hosts, &host) {
        return Err(CallbackError::HostNotAllowed(host));
    }
    resolve_checked(&u, cfg.allow_private_networks).await?;
    Ok(CallbackSpec {
        url: url.to_string(),
        allow_private_networks: cfg.allow_private_networks,
        secret_env: cfg.secret_env.clone(),
        attempts: cfg.attempts,
        backoff_ms: millis(cfg.backoff.get()),
        max_backoff_ms: millis(cfg.max_backoff.get()),
        timeout_ms: millis(cfg.timeout.get()),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn host_of(u: &reqwest::Url) -> Option<String> {
    match u.host()? {
        url::Host::Domain(d) => Some(d.to_ascii_lowercase()),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

/// Exact host (case-insensitive) or `*.suffix` (one or more labels).
pub fn host_allowed(list: &[String], host: &str) -> bool {
    list.iter().any(|pat| {
        let pat = pat
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        match pat.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => pat == host,
        }
    })
}

/// Whether an address is a public unicast one (not loopback, link-local, private,
/// shared, unspecified, multicast, broadcast or documentation).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// Resolves the URL's host; every address must be public unless private ones are
/// allowed. Returns the address to connect to.
async fn resolve_checked(
    u: &reqwest::Url,
    allow_private: bool,
) -> Result<SocketAddr, CallbackError> {
    let host = host_of(u).ok_or(CallbackError::MissingHost)?;
    let port = u.port_or_known_default().ok_or(CallbackError::NoPort)?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| CallbackError::Resolve {
                host: host.clone(),
                source,
            })?
            .collect(),
    };
    let Some(&first) = addrs.first() else {
        return Err(CallbackError::NoAddress(host));
    };
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(CallbackError::NonPublic { ip: bad.ip(), host });
        }
    }
    Ok(first)
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How a job's webhook went: the `callback` member of a job.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CallbackRecord {
    /// The `callback_url` given at submit.
    pub url: String,
    /// `delivered` (a 2xx answer), `failed` (every try failed) or `refused` (the
    /// address was refused, not tried again).
    pub status: CallbackStatus,
    /// Tries made.
    pub attempts: u32,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The outcome of a webhook.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallbackStatus {
    Delivered,
    Failed,
    Refused,
}

fn record(spec: &CallbackSpec, status: CallbackStatus, attempts: u32, err: &str) -> Value {
    let rec = CallbackRecord {
        url: spec.url.clone(),
        status,
        attempts,
        last_error: (!err.is_empty()).then(|| err.to_string()),
    };
    serde_json::to_value(rec).unwrap_or(Value::Null)
}

/// Delivers `body`, retrying; returns the record kept on the job.
pub async fn deliver(spec: &CallbackSpec, job_id: &str, body: Bytes) -> Value {
    let mut last_error = String::new();
    let attempts = spec.attempts.max(1);
    for attempt in 1..=attempts {
        if attempt > 1 {
            let exp = (attempt - 2).min(20);
            let wait = spec
                .backoff_ms
                .saturating_mul(1u64 << exp)
                .min(spec.max_backoff_ms);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        match try_once(spec, job_id, body.clone()).await {
            Ok(()) => {
                return record(spec, CallbackStatus::Delivered, attempt, "");
            }
            Err(e) => {
                tracing::warn!(job_id, attempt, error = %e, "webhook delivery failed");
                last_error = e.to_string();
                if !e.retryable() {
                    return record(spec, CallbackStatus::Refused, attempt, &last_error);
                }
            }
        }
    }
    record(spec, CallbackStatus::Failed, attempts, &last_error)
}

/// One delivery; the error says whether another try could help.
async fn try_once(spec: &CallbackSpec, job_id: &str, body: Bytes) -> Result<(), DeliveryError> {
    let secret = std::env::var(&spec.secret_env)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| DeliveryError::NoSecret(spec.secret_env.clone()))?;
    let u = reqwest::Url::parse(&spec.url).map_err(DeliveryError::Url)?;
    let addr = resolve_checked(&u, spec.allow_private_networks).await?;
    let host = host_of(&u).unwrap_or_default();
    let client = reqwest::Client::builder()
        .resolve(&host, addr)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(spec.timeout_ms))
        .build()
        .map_err(DeliveryError::Client)?;
    let sig = signature(secret.as_bytes(), &body);
    let resp = client
        .post(u)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-signature", sig)
        .header("x-job-id", job_id)
        .body(body)
        .send()
        .await
        .map_err(DeliveryError::Send)?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let l = vec![
            "hooks.example.com".to_string(),
            "*.corp.example".to_string(),
        ];
        assert!(host_allowed(&l, "hooks.example.com"));
        assert!(host_allowed(&l, "a.b.corp.example"));
        assert!(!host_allowed(&l, "corp.example"));
        assert!(!host_allowed(&l, "evilcorp.example"));
        assert!(!host_allowed(&l, "example.com"));
    }

    #[test]
    fn public_addresses() {
        for bad in [
            "127.0.0.1",
            "169.254.169.254",
            "10.1.2.3",
            "192.168.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
        ] {
            assert!(
                !is_public(bad.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))),
                "{bad}"
            );
        }
        assert!(is_public(IpAddr::from([93, 184, 216, 34])));
    }

    #[test]
    fn signature_is_rfc4231_hmac() {
        // RFC 4231 test case 2
        let s = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            s,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
