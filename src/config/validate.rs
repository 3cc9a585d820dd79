//! Semantic checks that types alone cannot express. Every check pushes a located error
//! and goes on, so one run reports everything.

use super::{Balance, Config, Deprecation, Errors, RouteConfig, UpstreamConfig};
use crate::paths::{normalize_path, PathPattern};
use std::collections::{BTreeSet, HashMap};

pub(super) fn validate(c: &Config, base_dir: &std::path::Path, errs: &mut Errors) {
    if c.version != 1 {
        errs.push(
            "version",
            format!("unsupported version {} (only 1 exists)", c.version),
        );
    }
    for (name, up) in &c.upstreams {
        upstream(name, up, errs);
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, r) in c.routes.iter().enumerate() {
        let p = format!("routes[{i}]");
        if let Some(first) = names.insert(&r.name, i) {
            errs.push(
                format!("{p}.name"),
                format!(
                    "duplicate route name `{}` (first used by routes[{first}])",
                    r.name
                ),
            );
        }
        route(&p, r, c, errs);
    }
    indistinguishable(&c.routes, errs);
    super::plugins::validate(c, errs);
    if let Some(tls) = &c.server.tls {
        if tls.listen.parse::<std::net::SocketAddr>().is_err() {
            errs.push(
                "server.tls.listen",
                format!("`{}` is not an ip:port address", tls.listen),
            );
        }
        if tls.client_auth == super::types::ClientAuth::Required && tls.client_ca.is_none() {
            errs.push(
                "server.tls.client_auth",
                "`client_auth: required` needs `client_ca` (the CAs that sign client certificates)",
            );
        }
        if let Some(crl) = super::crl_path(tls, base_dir) {
            if tls.client_ca.is_none() {
                errs.push(
                    "server.tls.client_crl",
                    "`client_crl` needs `client_ca` (the CAs whose revocations it lists)",
                );
            } else if let Err(e) = super::load_crls(&crl) {
                errs.push("server.tls.client_crl", e.problem.to_string());
            }
        }
    }
}

fn upstream(name: &str, u: &UpstreamConfig, errs: &mut Errors) {
    let p = format!("upstreams.{name}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errs.push(&p, "upstream names use letters, digits, `-` and `_`");
    }
    match (&u.discovery, u.targets.is_empty()) {
        (None, true) => errs.push(
            format!("{p}.targets"),
            "an upstream needs at least one target (or `discovery`)",
        ),
        (Some(_), false) => errs.push(
            format!("{p}.discovery"),
            "give either `targets` or `discovery`, not both",
        ),
        _ => {}
    }
    for (i, t) in u.targets.iter().enumerate() {
        if let Err(e) = split_host_port(&t.addr) {
            errs.push(format!("{p}.targets[{i}].addr"), e.to_string());
        }
    }
    let mut seen = BTreeSet::new();
    for (i, t) in u.targets.iter().enumerate() {
        if !seen.insert(&t.addr) {
            errs.push(
                format!("{p}.targets[{i}].addr"),
                format!("target `{}` is listed twice", t.addr),
            );
        }
    }
    if !u.targets.is_empty() && u.targets.iter().all(|t| t.weight == 0) {
        errs.push(
            format!("{p}.targets"),
            "every target has weight 0: nothing could be served",
        );
    }
    if let Some(d) = &u.discovery {
        if let Err(e) = split_host_port(&d.dns) {
            errs.push(format!("{p}.discovery.dns"), e.to_string());
        }
        if d.refresh.get().is_zero() {
            errs.push(format!("{p}.discovery.refresh"), "must be more than 0s");
        }
        if let Some(ns) = &d.nameserver {
            if ns.parse::<std::net::SocketAddr>().is_err() {
                errs.push(
                    format!("{p}.discovery.nameserver"),
                    format!("`{ns}` is not an ip:port address"),
                );
            }
        }
    }
    if let Some(t) = u.tls.settings() {
        let tp = format!("{p}.tls");
        match (&t.client_cert, &t.client_key) {
            (Some(_), None) => errs.push(format!("{tp}.client_cert"), "give `client_key` with it"),
            (None, Some(_)) => errs.push(format!("{tp}.client_key"), "give `client_cert` with it"),
            _ => {}
        }
        if t.ca.is_some() && u.host.is_none() {
            errs.push(
                format!("{tp}.ca"),
                "needs `host` on the upstream: the name checked in the targets' certificates \
                 (without it no certificate is verified)",
            );
        }
    }
    if u.hash_on.is_some() && u.balance != Balance::ConsistentHash {
        errs.push(
            format!("{p}.hash_on"),
            "only used with `balance: consistent_hash`",
        );
    }
    if let Some(h) = &u.health_check {
        let hp = format!("{p}.health_check");
        if !h.path.starts_with('/') {
            errs.push(format!("{hp}.path"), "must start with `/`");
        }
        if h.interval.get().is_zero() {
            errs.push(format!("{hp}.interval"), "must be more than 0s");
        }
        if h.timeout.get().is_zero() {
            errs.push(format!("{hp}.timeout"), "must be more than 0s");
        }
        if h.healthy_threshold == 0 {
            errs.push(format!("{hp}.healthy_threshold"), "must be at least 1");
        }
        if h.unhealthy_threshold == 0 {
            errs.push(format!("{hp}.unhealthy_threshold"), "must be at least 1");
        }
        for (i, s) in h.expected_statuses.iter().enumerate() {
            if !(100..=599).contains(s) {
                errs.push(
                    format!("{hp}.expected_statuses[{i}]"),
                    format!("{s} is not an HTTP status"),
                );
            }
        }
    }
    if let Some(o) = &u.outlier_detection {
        if o.consecutive_failures == 0 {
            errs.push(
                format!("{p}.outlier_detection.consecutive_failures"),
                "must be at least 1",
            );
        }
        if o.max_ejection_percent > 100 {
            errs.push(
                format!("{p}.outlier_detection.max_ejection_percent"),
                "must be at most 100",
            );
        }
    }
    if let Some(b) = &u.circuit_breaker {
        if b.failure_threshold == 0 {
            errs.push(
                format!("{p}.circuit_breaker.failure_threshold"),
                "must be at least 1",
            );
        }
        if b.half_open_requests == 0 {
            errs.push(
                format!("{p}.circuit_breaker.half_open_requests"),
                "must be at least 1",
            );
        }
    }
    if let Some(r) = &u.retry {
        if r.attempts == 0 {
            errs.push(
                format!("{p}.retry.attempts"),
                "must be at least 1 (the first try counts)",
            );
        }
        if r.attempts > 10 {
            errs.push(
                format!("{p}.retry.attempts"),
                "more than 10 tries is refused",
            );
        }
        if !(0.0..=1.0).contains(&r.budget.ratio) {
            errs.push(format!("{p}.retry.budget.ratio"), "must be between 0 and 1");
        }
        for (i, on) in r.on.iter().enumerate() {
            if let super::RetryOn::Status(s) = on {
                if !(100..=599).contains(s) {
                    errs.push(
                        format!("{p}.retry.on[{i}]"),
                        format!("{s} is not an HTTP status"),
                    );
                }
            }
        }
    }
    if u.timeouts.connect.get().is_zero() || u.timeouts.read.get().is_zero() {
        errs.push(format!("{p}.timeouts"), "timeouts must be more than 0s");
    }
}

fn route(p: &str, r: &RouteConfig, c: &Config, errs: &mut Errors) {
    if r.name.is_empty() {
        errs.push(format!("{p}.name"), "must not be empty");
    }
    let m = &r.matcher;
    match (&m.path, &m.path_prefix) {
        (None, None) => errs.push(format!("{p}.match"), "needs `path` or `path_prefix`"),
        (Some(_), Some(_)) => errs.push(
            format!("{p}.match"),
            "give `path` or `path_prefix`, not both",
        ),
        (Some(path), None) => {
            if let Err(e) = PathPattern::parse(path) {
                errs.push(format!("{p}.match.path"), e.to_string());
            }
        }
        (None, Some(prefix)) => {
            if !prefix.starts_with('/') {
                errs.push(format!("{p}.match.path_prefix"), "must start with `/`");
            } else if normalize_path(prefix).ok().as_deref() != Some(prefix.as_str()) {
                errs.push(format!("{p}.match.path_prefix"), "must be a normalised path (no `.`/`..` segments, `//` or encoded unreserved characters)");
            } else if prefix.contains('{') {
                errs.push(
                    format!("{p}.match.path_prefix"),
                    "parameters are only allowed in `path`",
                );
            }
        }
    }
    for (i, meth) in m.methods.iter().enumerate() {
        if http::Method::from_bytes(meth.as_bytes()).is_err()
            || meth.chars().any(|c| c.is_ascii_lowercase())
        {
            errs.push(
                format!("{p}.match.methods[{i}]"),
                format!("`{meth}` is not an HTTP method (use upper case, e.g. GET)"),
            );
        }
    }
    for k in m.headers.keys() {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            errs.push(
                format!("{p}.match.headers.{k}"),
                format!("`{k}` is not a valid header name"),
            );
        }
    }
    if let Some(h) = &m.host {
        if h.is_empty() || h.contains(['/', ' ']) || (h.contains('*') && !h.starts_with("*.")) {
            errs.push(
                format!("{p}.match.host"),
                format!("`{h}` is not a host (wildcards only as `*.example.com`)"),
            );
        }
    }
    let targets = [
        r.upstream.is_some() || r.split.is_some(),
        r.pipeline.is_some(),
        r.async_job.is_some(),
        r.jobs.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if targets > 1 {
        errs.push(
            p,
            "give only one of `upstream`, `split`, `pipeline`, `async`, `jobs`",
        );
    }
    if let Some(every) = r.sse_keepalive {
        let sp = format!("{p}.sse_keepalive");
        if every.get().is_zero() {
            errs.push(sp, "must be more than 0s");
        } else if r.stream_idle_timeout.is_some_and(|idle| every >= idle) {
            // keep-alives are not upstream activity: the stream would end first
            errs.push(sp, "must be shorter than `stream_idle_timeout`");
        }
    }
    if r.upstream.is_some() && r.split.is_some() {
        errs.push(
            p,
            "give only one of `upstream`, `split` (a split names its pools in its sides)",
        );
    }
    if let Some(s) = &r.split {
        super::split::validate(p, s, c, errs);
    }
    if targets == 0 && r.fallback.is_none() {
        errs.push(
            p,
            "a route needs `upstream` (or `split`, `pipeline`, `async`, `jobs`, or a `fallback` answer)",
        );
    }
    if let Some(u) = &r.upstream {
        if !c.upstreams.contains_key(u) {
            errs.push(
                format!("{p}.upstream"),
                format!("unknown upstream `{u}` (defined: {})", known(c)),
            );
        }
    }
    super::validate_flows::route(p, r, c, errs);
    if let Some(rw) = &r.rewrite {
        for (field, v) in [
            ("strip_prefix", &rw.strip_prefix),
            ("add_prefix", &rw.add_prefix),
            ("path", &rw.path),
        ] {
            if let Some(v) = v {
                if !v.starts_with('/') {
                    errs.push(format!("{p}.rewrite.{field}"), "must start with `/`");
                }
            }
        }
        if rw.path.is_some() && (rw.strip_prefix.is_some() || rw.add_prefix.is_some()) {
            errs.push(
                format!("{p}.rewrite.path"),
                "`path` replaces the whole path: drop `strip_prefix`/`add_prefix`",
            );
        }
        if let (Some(path), Some(tpl)) = (&m.path, &rw.path) {
            if let Ok(pat) = PathPattern::parse(path) {
                for name in crate::paths::template_params(tpl) {
                    if !pat.params().any(|p| p == name) {
                        errs.push(
                            format!("{p}.rewrite.path"),
                            format!("`{{{name}}}` is not a parameter of `match.path`"),
                        );
                    }
                }
            }
        }
        if let (Some(prefix), Some(strip)) = (&m.path_prefix, &rw.strip_prefix) {
            if !prefix.starts_with(strip.as_str()) {
                errs.push(format!("{p}.rewrite.strip_prefix"), format!("`{strip}` is not a prefix of `match.path_prefix` `{prefix}`: it would never apply"));
            }
        }
    }
    if let Some(Deprecation::Details(d)) = &r.deprecated {
        for (field, v) in [("since", &d.since), ("sunset", &d.sunset)] {
            if let Some(v) = v {
                if let Err(e) = super::parse_date(v) {
                    errs.push(format!("{p}.deprecated.{field}"), e.to_string());
                }
            }
        }
    }
    if let Some(f) = &r.fallback {
        if !(200..=599).contains(&f.status) {
            errs.push(
                format!("{p}.fallback.status"),
                format!("{} is not a response status", f.status),
            );
        }
        if f.body.is_some() && f.file.is_some() {
            errs.push(format!("{p}.fallback"), "give `body` or `file`, not both");
        }
        if let Some(file) = &f.file {
            if let Err(e) = std::fs::metadata(file) {
                errs.push(
                    format!("{p}.fallback.file"),
                    format!("cannot read `{file}`: {e}"),
                );
            }
        }
    }
}

fn known(c: &Config) -> String {
    if c.upstreams.is_empty() {
        return "none".into();
    }
    c.upstreams
        .keys()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Two routes with the same path, host and headers where the later one's methods are
/// all taken by the earlier one: the later route can never be reached.
fn indistinguishable(routes: &[RouteConfig], errs: &mut Errors) {
    for (j, b) in routes.iter().enumerate() {
        for (i, a) in routes.iter().enumerate().take(j) {
            let (ma, mb) = (&a.matcher, &b.matcher);
            let same_path = match (&ma.path, &mb.path) {
                (Some(x), Some(y)) => {
                    PathPattern::parse(x).ok().map(|p| p.shape())
                        == PathPattern::parse(y).ok().map(|p| p.shape())
                }
                (None, None) => {
                    ma.path_prefix.as_deref().map(|s| s.trim_end_matches('/'))
                        == mb.path_prefix.as_deref().map(|s| s.trim_end_matches('/'))
                }
                _ => false,
            };
            let covered = ma.methods.is_empty()
                || (!mb.methods.is_empty() && mb.methods.iter().all(|m| ma.methods.contains(m)));
            if same_path && ma.host == mb.host && ma.headers == mb.headers && covered {
                errs.push(
                    format!("routes[{j}].match"),
                    format!("route `{}` can never match: `{}` (routes[{i}]) takes every request it would", b.name, a.name),
                );
            }
        }
    }
}

/// Why a `host:port` address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("`{0}` needs a port (`host:port`)")]
    NoPort(String),
    #[error("`{port}` in `{addr}` is not a port number")]
    BadPort { port: String, addr: String },
    #[error("`{0}` is not a `host:port` address")]
    BadHost(String),
}

/// `host:port` with a port; the host may be a name or an IP (`[v6]:port`).
pub fn split_host_port(s: &str) -> Result<(String, u16), AddrError> {
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    let (h, p) = s
        .rsplit_once(':')
        .ok_or_else(|| AddrError::NoPort(s.to_string()))?;
    let port: u16 = p.parse().map_err(|_| AddrError::BadPort {
        port: p.to_string(),
        addr: s.to_string(),
    })?;
    if h.is_empty() || h.contains(['/', ' ', '[', ']']) {
        return Err(AddrError::BadHost(s.to_string()));
    }
    Ok((h.to_string(), port))
}
