//! What the limiting policies (`rate_limit`, `token_limit`, `concurrency_limit`) count
//! requests by ([`LimitKey`]), and where their counts live ([`scope`]: per route, per
//! shared `policy`, or global).

use super::client_addr::TrustedProxies;
use crate::{RequestCall, SettingsError};
use http::HeaderName;

/// How requests are grouped into buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// The authenticated consumer; anonymous requests by client IP.
    Consumer,
    Ip,
    /// One bucket for the whole route (or policy).
    Route,
    /// The value of this header; requests without it by client IP.
    Header(HeaderName),
}

/// A request's bucket key: the kind, and the proxies whose `X-Forwarded-For` gives the
/// client address when the key falls back to it.
#[derive(Debug, Clone)]
pub(crate) struct LimitKey {
    kind: KeyKind,
    proxies: TrustedProxies,
}

impl LimitKey {
    pub(crate) fn new(kind: KeyKind, proxies: TrustedProxies) -> Self {
        LimitKey { kind, proxies }
    }

    /// Parses the `key` option (`consumer`, `ip`, `route`, `header:NAME`) and
    /// `trusted_proxies`, each error at its option.
    pub(crate) fn parse(key: &str, trusted_proxies: &[String]) -> Result<Self, SettingsError> {
        let kind = match key {
            "consumer" => KeyKind::Consumer,
            "ip" => KeyKind::Ip,
            "route" => KeyKind::Route,
            other => {
                let Some(name) = other.strip_prefix("header:") else {
                    return Err(SettingsError::at(
                        "key",
                        format!("`{other}`: use consumer, ip, route or header:NAME"),
                    ));
                };
                KeyKind::Header(HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                    SettingsError::at("key", format!("`{name}` is not a valid header name"))
                })?)
            }
        };
        let proxies = TrustedProxies::parse("trusted_proxies", trusted_proxies)?;
        Ok(LimitKey::new(kind, proxies))
    }

    /// The bucket key of a request.
    pub(crate) fn of(&self, call: &RequestCall<'_>) -> String {
        let ip = || {
            self.proxies
                .client_ip(call.info.client_ip, call.req)
                .map_or_else(|| "ip:unknown".to_string(), |ip| format!("ip:{ip}"))
        };
        match &self.kind {
            KeyKind::Consumer => match call.ctx.consumer() {
                Some(c) => format!("c:{c}"),
                None => ip(),
            },
            KeyKind::Ip => ip(),
            KeyKind::Route => "all".to_string(),
            KeyKind::Header(h) => match call.header(h) {
                Some(v) => format!("h:{}", String::from_utf8_lossy(v.as_bytes())),
                None => ip(),
            },
        }
    }
}

/// Where a policy's counts live: `policy:NAME` for routes that share a `policy`, else
/// `route:NAME`, else (a global plugin) `global`.
pub(crate) fn scope(policy: Option<&str>, route: Option<&str>) -> String {
    match (policy, route) {
        (Some(p), _) => format!("policy:{p}"),
        (None, Some(r)) => format!("route:{r}"),
        (None, None) => "global".to_string(),
    }
}
