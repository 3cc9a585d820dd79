//! `mirror`: sends a copy of a route's requests (method, path and query, headers, body
//! up to `max_body`) to another pool, fire-and-forget. The copy is sent from a task of
//! its own: the client's answer and its latency never depend on the shadow (slow,
//! failing or down); the shadow's answers are read and discarded. At most
//! `max_in_flight` copies of a route are in flight; beyond, a copy is dropped. Every
//! copy is counted in `gateway_mirror_requests_total{route,outcome}` (`2xx`, `3xx`,
//! `4xx`, `5xx`, `error`, `timeout`, `no_target`, `dropped`, `too_large`).
//! Copies carry `X-Mirror: 1` (the header is `mark_header`) and the client's host in
//! `X-Forwarded-Host`, with `-shadow` appended as Envoy does.
//!
//! ```yaml
//! - { name: mirror, upstream: shadow, percent: 100 }
//! ```

use super::units::{Period, Size};
use crate::{
    BodyCall, BuildCtx, Decision, Factory, Flow, Plugin, RequestCall, SettingsError,
    UpstreamCallError, UpstreamCalls, UpstreamRef, UpstreamRequest,
};
use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_http::RequestHeader;
use prometheus::IntCounterVec;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn default_percent() -> f64 {
    100.0
}
fn default_max_body() -> Size {
    Size(1024 * 1024)
}
fn default_in_flight() -> usize {
    100
}
fn default_timeout() -> Period {
    Period(Duration::from_secs(10))
}
fn default_mark() -> String {
    "x-mirror".into()
}

/// Mirror settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MirrorSettings {
    /// The pool the copies go to (a pool of `upstreams:`).
    pub upstream: String,
    /// Share of requests copied, 0 to 100 (default 100).
    #[serde(default = "default_percent")]
    pub percent: f64,
    /// Largest request body copied (default `1MiB`); a request with a larger body is
    /// not copied (counted `too_large`).
    #[serde(default = "default_max_body")]
    pub max_body: Size,
    /// Most copies of this route in flight at once (default 100); beyond, copies are
    /// dropped (counted `dropped`).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Time for a copy's answer (default `10s`); the client never waits for it.
    #[serde(default = "default_timeout")]
    pub timeout: Period,
    /// Header set to `1` on every copy (default `x-mirror`).
    #[serde(default = "default_mark")]
    pub mark_header: String,
}

/// Copies in flight, by route: kept in `Shared`, so a reload keeps the bound.
#[derive(Default)]
struct InFlight(AtomicUsize);

/// A slot of [`InFlight`], given back when the copy ends.
struct Slot(Arc<InFlight>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    fn take(self: &Arc<Self>, max: usize) -> Option<Slot> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

/// The copy of one request, made in the request phase, sent once the body is known (the
/// entry's own value: two `mirror` entries on a route each send their own).
struct Pending(UpstreamRequest);

pub struct Mirror {
    upstream: String,
    route: String,
    percent: f64,
    max_body: u64,
    max_in_flight: usize,
    timeout: Duration,
    mark: HeaderName,
    calls: Arc<dyn UpstreamCalls>,
    in_flight: Arc<InFlight>,
    counter: IntCounterVec,
}

/// Headers not copied (hop-by-hop; the gateway's call sets its own framing and host).
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "expect",
];

impl Mirror {
    fn count(&self, outcome: &str) {
        self.counter
            .with_label_values(&[self.route.as_str(), outcome])
            .inc();
    }

    /// The copy of `req` (its body is added later).
    fn copy(&self, req: &RequestHeader) -> UpstreamRequest {
        let mut headers = HeaderMap::with_capacity(req.headers.len() + 2);
        for (k, v) in req.headers.iter() {
            if !HOP.contains(&k.as_str()) {
                headers.append(k.clone(), v.clone());
            }
        }
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.host())
            .unwrap_or("");
        if let Ok(v) = HeaderValue::from_str(&format!("{host}-shadow")) {
            headers.insert(HeaderName::from_static("x-forwarded-host"), v);
        }
        headers.insert(self.mark.clone(), HeaderValue::from_static("1"));
        let path = req
            .uri
            .path_and_query()
            .map_or_else(|| req.uri.path().to_string(), |p| p.as_str().to_string());
        let mut copy = UpstreamRequest::new(req.method.clone(), path);
        copy.headers = headers;
        copy.timeout = self.timeout;
        copy.max_answer_body = 16 * 1024 * 1024;
        copy
    }

    /// Sends `copy` from a task of its own, unless `max_in_flight` copies are out.
    fn send(&self, copy: UpstreamRequest) {
        let Some(slot) = self.in_flight.take(self.max_in_flight) else {
            self.count("dropped");
            return;
        };
        let calls = self.calls.clone();
        let upstream = self.upstream.clone();
        let counter = self.counter.clone();
        let route = self.route.clone();
        tokio::spawn(async move {
            let outcome = match calls.call(&upstream, copy).await {
                Ok(a) => match a.status {
                    200..=299 => "2xx",
                    300..=399 => "3xx",
                    400..=499 => "4xx",
                    _ => "5xx",
                },
                Err(UpstreamCallError::Timeout) => "timeout",
                Err(UpstreamCallError::NoTarget { .. }) => "no_target",
                Err(_) => "error",
            };
            drop(slot);
            counter.with_label_values(&[route.as_str(), outcome]).inc();
        });
    }

    fn sampled(&self) -> bool {
        self.percent >= 100.0
            || (self.percent > 0.0 && rand::random::<f64>() * 100.0 < self.percent)
    }
}

/// Whether the request carries a body (a `Content-Length` above 0, or chunked).
fn has_body(req: &RequestHeader) -> bool {
    req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

fn declared_len(req: &RequestHeader) -> Option<u64> {
    req.headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl Mirror {
    /// The request phase: it never waits.
    fn admit(&self, call: &mut RequestCall<'_>) -> Decision {
        if !self.sampled() {
            return Ok(Flow::Continue);
        }
        if declared_len(call.req).is_some_and(|n| n > self.max_body) {
            self.count("too_large");
            return Ok(Flow::Continue);
        }
        let copy = self.copy(call.req);
        if has_body(call.req) {
            // sent from the body phase, with the body
            call.ctx.set_own(Pending(copy));
        } else {
            self.send(copy);
        }
        Ok(Flow::Continue)
    }
}

#[async_trait]
impl Plugin for Mirror {
    /// Decides without waiting: no future per request.
    fn request_now(&self, call: &mut RequestCall<'_>) -> Option<Decision> {
        Some(self.admit(call))
    }

    fn wants_body(&self) -> bool {
        true
    }

    async fn on_request_body(&self, call: &mut BodyCall<'_>) -> Decision {
        let Some(Pending(mut copy)) = call.ctx.take_own::<Pending>() else {
            return Ok(Flow::Continue);
        };
        if call.body.len() as u64 > self.max_body {
            self.count("too_large");
            return Ok(Flow::Continue);
        }
        copy.body = call.body.clone();
        self.send(copy);
        Ok(Flow::Continue)
    }

    fn upstreams(&self) -> Vec<UpstreamRef> {
        vec![UpstreamRef::new("upstream", &self.upstream)]
    }
}

impl Factory for Mirror {
    const NAME: &'static str = "mirror";
    const SUMMARY: &'static str =
        "Copies requests to a shadow pool, fire-and-forget (answers discarded, bounded)";
    type Settings = MirrorSettings;

    fn build(s: MirrorSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        if !(0.0..=100.0).contains(&s.percent) {
            return Err(SettingsError::at("percent", "must be between 0 and 100"));
        }
        if s.max_in_flight == 0 {
            return Err(SettingsError::at("max_in_flight", "must be at least 1"));
        }
        if s.timeout.0.is_zero() {
            return Err(SettingsError::at("timeout", "must be more than 0s"));
        }
        let mark = HeaderName::from_bytes(s.mark_header.as_bytes()).map_err(|_| {
            SettingsError::at(
                "mark_header",
                format!("`{}` is not a header name", s.mark_header),
            )
        })?;
        let route = cx.route.unwrap_or("global").to_string();
        let in_flight = cx
            .shared
            .state(&format!("mirror:{route}"), InFlight::default);
        Ok(Arc::new(Mirror {
            upstream: s.upstream,
            route,
            percent: s.percent,
            max_body: s.max_body.0,
            max_in_flight: s.max_in_flight,
            timeout: s.timeout.0,
            mark,
            calls: cx.upstreams(),
            in_flight,
            counter: cx.shared.metrics.mirror_requests.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Shared;

    fn build(v: serde_json::Value) -> Result<crate::Instance, crate::PluginError> {
        let shared = Shared::dry();
        let cx = BuildCtx {
            shared: &shared,
            base_dir: std::path::Path::new("."),
            route: Some("r"),
        };
        crate::build("mirror", v.as_object().unwrap(), &cx)
    }

    #[test]
    fn settings_are_checked_and_the_pool_is_named() {
        let p = build(serde_json::json!({"upstream": "shadow"})).unwrap();
        assert_eq!(p.upstreams(), vec![UpstreamRef::new("upstream", "shadow")]);
        assert!(p.wants_body());
        let e = build(serde_json::json!({"upstream": "s", "percent": 120}))
            .err()
            .unwrap();
        assert_eq!(e.path(), "percent");
        let e = build(serde_json::json!({"upstream": "s", "max_in_flight": 0}))
            .err()
            .unwrap();
        assert_eq!(e.path(), "max_in_flight");
        let e = build(serde_json::json!({"percent": 10})).err().unwrap();
        assert!(e.to_string().contains("upstream"), "{e}");
    }

    #[test]
    fn in_flight_slots_are_bounded_and_given_back() {
        let f = Arc::new(InFlight::default());
        let a = f.take(2).unwrap();
        let _b = f.take(2).unwrap();
        assert!(f.take(2).is_none());
        drop(a);
        assert!(f.take(2).is_some());
    }
}
