//! RFC 9111 decisions on headers: the `Cache-Control` directives of a request and of
//! an answer, whether an answer may be stored by a shared cache, and for how long it
//! is fresh.
//!
//! Freshness precedence (first that applies): `s-maxage`, `max-age`, `Expires` minus
//! `Date`, then the plugin's `ttl`. `stale-while-revalidate` from the answer, else the
//! plugin's `stale_while_revalidate`; `must-revalidate` and `proxy-revalidate` forbid
//! serving stale.

use http::header::{AGE, AUTHORIZATION, CACHE_CONTROL, DATE, EXPIRES, PRAGMA, SET_COOKIE, VARY};
use http::HeaderMap;
use std::time::{Duration, SystemTime};

/// The directives of one message's `Cache-Control` fields (all fields, comma lists).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Directives {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub stale_while_revalidate: Option<u64>,
}

impl Directives {
    pub fn of(headers: &HeaderMap) -> Self {
        let mut d = Directives::default();
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(v) = value.to_str() else { continue };
            for item in v.split(',') {
                let (name, arg) = match item.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                    None => (item.trim(), None),
                };
                let secs = || arg.and_then(|a| a.parse::<u64>().ok());
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => d.no_store = true,
                    // the qualified form (`no-cache="Set-Cookie"`) is taken as the whole
                    "no-cache" => d.no_cache = true,
                    // qualified `private="..."` too: nothing of it is shared
                    "private" => d.private = true,
                    "public" => d.public = true,
                    "must-revalidate" | "proxy-revalidate" => d.must_revalidate = true,
                    // a bad argument makes the answer stale (RFC 9111 4.2.1)
                    "max-age" => d.max_age = Some(secs().unwrap_or(0)),
                    "s-maxage" => d.s_maxage = Some(secs().unwrap_or(0)),
                    "stale-while-revalidate" => d.stale_while_revalidate = secs(),
                    _ => {}
                }
            }
        }
        d
    }
}

/// What a request asks of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRule {
    /// Served from the cache when fresh, stored when allowed.
    Normal,
    /// `no-cache` or `max-age=0` (or `Pragma: no-cache`): not served from the cache,
    /// the answer may be stored.
    Refresh,
    /// `no-store`: neither served nor stored.
    NoStore,
}

pub fn request_rule(headers: &HeaderMap) -> RequestRule {
    let d = Directives::of(headers);
    let pragma = !headers.contains_key(CACHE_CONTROL)
        && headers
            .get_all(PRAGMA)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.contains("no-cache")));
    if d.no_store {
        RequestRule::NoStore
    } else if d.no_cache || d.max_age == Some(0) || pragma {
        RequestRule::Refresh
    } else {
        RequestRule::Normal
    }
}

/// Whether a request carries credentials a shared cache must not share by default.
pub fn has_authorization(headers: &HeaderMap) -> bool {
    headers.contains_key(AUTHORIZATION)
}

/// Statuses a cache may store without explicit freshness (RFC 9110 15.1), less
/// `206` (this cache keeps whole answers only).
pub fn cacheable_status(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Why an answer is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    Status,
    NoStore,
    Private,
    NoCache,
    VaryStar,
    SetCookie,
    /// The request had `Authorization` and the answer did not say it may be shared.
    Authorization,
    /// Already stale when it arrived, and no stale window.
    Stale,
}

/// How long a storable answer is fresh and may then be served stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Freshness lifetime (from the origin's point of view).
    pub fresh: Duration,
    /// Age the answer already had when it arrived (its `Age` header).
    pub initial_age: Duration,
    /// How long after going stale it may still be served while one request refills.
    pub stale_while_revalidate: Duration,
    /// Whether a request with `Authorization` may be answered from it (RFC 9111 3.5).
    pub shared_with_auth: bool,
}

impl Lifetime {
    /// Time left in the cache at arrival: freshness plus stale window, less its age.
    pub fn keep_for(&self) -> Duration {
        (self.fresh + self.stale_while_revalidate).saturating_sub(self.initial_age)
    }
}

/// The defaults of the plugin's settings.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub ttl: Duration,
    pub stale_while_revalidate: Duration,
}

/// Decides whether an answer (`status`, `headers`) to a request (with `Authorization`
/// or not) may be stored by a shared cache, and its lifetime.
pub fn storable(
    status: u16,
    headers: &HeaderMap,
    request_had_auth: bool,
    defaults: Defaults,
    now: SystemTime,
) -> Result<Lifetime, NotStored> {
    if !cacheable_status(status) {
        return Err(NotStored::Status);
    }
    let d = Directives::of(headers);
    if d.no_store {
        return Err(NotStored::NoStore);
    }
    if d.private {
        return Err(NotStored::Private);
    }
    // stored answers are never revalidated here: `no-cache` would mean every use
    // goes upstream, so it is not stored
    if d.no_cache {
        return Err(NotStored::NoCache);
    }
    let vary_star = headers.get_all(VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim() == "*"))
    });
    if vary_star {
        return Err(NotStored::VaryStar);
    }
    if headers.contains_key(SET_COOKIE) {
        return Err(NotStored::SetCookie);
    }
    let shared_with_auth = d.public || d.s_maxage.is_some() || d.must_revalidate;
    if request_had_auth && !shared_with_auth {
        return Err(NotStored::Authorization);
    }
    let date = header_date(headers, DATE);
    let fresh = if let Some(s) = d.s_maxage.or(d.max_age) {
        Duration::from_secs(s)
    } else if let Some(expires) = headers.get(EXPIRES) {
        // an invalid Expires (`0`) means already expired
        let at = expires
            .to_str()
            .ok()
            .and_then(|v| httpdate::parse_http_date(v).ok());
        match at {
            Some(at) => at
                .duration_since(date.unwrap_or(now))
                .unwrap_or(Duration::ZERO),
            None => Duration::ZERO,
        }
    } else {
        defaults.ttl
    };
    let age_value = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    let stale_while_revalidate = if d.must_revalidate {
        Duration::ZERO
    } else {
        d.stale_while_revalidate
            .map_or(defaults.stale_while_revalidate, Duration::from_secs)
    };
    let lifetime = Lifetime {
        fresh,
        // the upstream's Age only: Date has a one-second resolution (and the
        // clocks may differ), which would make a short max-age stale on arrival
        initial_age: age_value,
        stale_while_revalidate,
        shared_with_auth,
    };
    if lifetime.keep_for().is_zero() {
        return Err(NotStored::Stale);
    }
    Ok(lifetime)
}

fn header_date(headers: &HeaderMap, name: http::HeaderName) -> Option<SystemTime> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::HeaderValue;

    const D: Defaults = Defaults {
        ttl: Duration::from_secs(30),
        stale_while_revalidate: Duration::ZERO,
    };

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    fn fresh(pairs: &[(&'static str, &str)]) -> Result<u64, NotStored> {
        storable(200, &h(pairs), false, D, SystemTime::now()).map(|l| l.fresh.as_secs())
    }

    #[test]
    fn freshness_precedence() {
        assert_eq!(fresh(&[]), Ok(30));
        assert_eq!(fresh(&[("cache-control", "max-age=5")]), Ok(5));
        assert_eq!(fresh(&[("cache-control", "max-age=5, s-maxage=9")]), Ok(9));
        let now = SystemTime::now();
        let date = httpdate::fmt_http_date(now);
        let exp = httpdate::fmt_http_date(now + Duration::from_secs(100));
        assert_eq!(fresh(&[("date", &date), ("expires", &exp)]), Ok(100));
        assert_eq!(
            fresh(&[
                ("date", &date),
                ("expires", &exp),
                ("cache-control", "max-age=3")
            ]),
            Ok(3)
        );
        assert_eq!(fresh(&[("expires", "0")]), Err(NotStored::Stale));
        assert_eq!(
            fresh(&[("cache-control", "max-age=0")]),
            Err(NotStored::Stale)
        );
        assert_eq!(
            fresh(&[("cache-control", "max-age=zz")]),
            Err(NotStored::Stale)
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            fresh(&[("cache-control", "no-store")]),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            fresh(&[("cache-control", "private, max-age=60")]),
            Err(NotStored::Private)
        );
        assert_eq!(
            fresh(&[("cache-control", "no-cache")]),
            Err(NotStored::NoCache)
        );
        assert_eq!(fresh(&[("vary", "Accept, *")]), Err(NotStored::VaryStar));
        assert_eq!(fresh(&[("set-cookie", "a=b")]), Err(NotStored::SetCookie));
        assert_eq!(
            storable(500, &h(&[]), false, D, SystemTime::now()),
            Err(NotStored::Status)
        );
        assert_eq!(
            storable(
                206,
                &h(&[("cache-control", "max-age=9")]),
                false,
                D,
                SystemTime::now()
            ),
            Err(NotStored::Status)
        );
    }

    #[test]
    fn authorization_needs_an_answer_that_allows_sharing() {
        let now = SystemTime::now();
        let auth = |cc: &str| storable(200, &h(&[("cache-control", cc)]), true, D, now);
        assert_eq!(auth("max-age=60"), Err(NotStored::Authorization));
        for ok in ["public", "s-maxage=5", "must-revalidate, max-age=5"] {
            assert!(auth(ok).unwrap().shared_with_auth, "{ok}");
        }
    }

    #[test]
    fn age_and_stale_window() {
        let now = SystemTime::now();
        let l = storable(
            200,
            &h(&[
                ("cache-control", "max-age=10, stale-while-revalidate=5"),
                ("age", "4"),
            ]),
            false,
            D,
            now,
        )
        .unwrap();
        assert_eq!(l.initial_age, Duration::from_secs(4));
        assert_eq!(l.keep_for(), Duration::from_secs(11));
        let l = storable(
            200,
            &h(&[(
                "cache-control",
                "max-age=10, stale-while-revalidate=5, must-revalidate",
            )]),
            false,
            D,
            now,
        )
        .unwrap();
        assert_eq!(l.stale_while_revalidate, Duration::ZERO);
    }

    #[test]
    fn request_rules() {
        assert_eq!(request_rule(&h(&[])), RequestRule::Normal);
        assert_eq!(
            request_rule(&h(&[("cache-control", "no-store")])),
            RequestRule::NoStore
        );
        assert_eq!(
            request_rule(&h(&[("cache-control", "max-age=0")])),
            RequestRule::Refresh
        );
        assert_eq!(
            request_rule(&h(&[("pragma", "no-cache")])),
            RequestRule::Refresh
        );
    }
}
