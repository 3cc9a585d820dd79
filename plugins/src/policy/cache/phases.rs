//! The cache's phases. Request: look the key up; a fresh answer is sent as a plugin
//! reply (`hit`), a stale one within its `stale-while-revalidate` window too (`stale`)
//! while one request refills it; otherwise the request claims the key's fill lock and
//! goes upstream (`miss`), or waits for the request holding it (at most
//! `lock_timeout`) and is answered from what it stored. Response: decide whether the
//! answer may be stored (RFC 9111) and add `Cache-Status`. Response body: each chunk
//! streams on to the client as it is; a copy is gathered (up to `max_entry_size`) and
//! stored at the end of the stream.
//!
//! Requests with `Authorization` neither wait nor claim the lock; they are answered
//! from an entry only when its answer allowed sharing (`public`, `s-maxage`,
//! `must-revalidate`), and their answer is stored only then. A successful unsafe
//! request (`POST`, `PUT`, `PATCH`, `DELETE`) invalidates the URI's entries.

use super::control::{self, RequestRule};
use super::key::{self, Primary};
use super::store::{Claim, Entry, FillGuard, Origin, Slot};
use super::Cache;
use crate::{Decision, Flow, Plugin, PluginCtx, PluginFailure, Reply, ReplyBody, RequestCall};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::{AGE, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RANGE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use pingora_http::ResponseHeader;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Hop-by-hop and per-answer fields that are never stored.
const NOT_STORED: [&str; 8] = [
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "x-request-id",
];

/// What the request phase decided for a forwarded request (the entry's own value: two
/// `cache` entries on a route each keep theirs).
struct Forward {
    route: String,
    /// A successful unsafe request invalidates this URI.
    invalidate: Option<Arc<str>>,
    /// RFC 9211 `fwd` reason: `miss`, `stale`, `request`, `bypass`, `method`.
    fwd: &'static str,
    /// Set when the answer may be stored.
    target: Option<Target>,
    /// The copy being gathered, once the answer head was found storable.
    fill: Option<Fill>,
}

impl Forward {
    fn new(route: &str, fwd: &'static str, target: Option<Target>) -> Self {
        Forward {
            route: route.to_string(),
            invalidate: None,
            fwd,
            target,
            fill: None,
        }
    }
}

/// What storing the answer needs from the request.
struct Target {
    primary: Primary,
    request_headers: HeaderMap,
    had_auth: bool,
    guard: Option<FillGuard>,
}

struct Fill {
    key: Arc<str>,
    entry: Entry,
    body: BytesMut,
    guard: Option<FillGuard>,
}

impl Cache {
    fn count(&self, route: &str, status: &str) {
        self.requests.with_label_values(&[route, status]).inc();
    }

    /// The entry for a request, and the key its fill lock is under.
    fn lookup(&self, primary: &str, req: &HeaderMap) -> (Option<Arc<Entry>>, String) {
        match self.store.get(primary) {
            Some(Slot::Answer(e)) => (Some(e), primary.to_string()),
            Some(Slot::Variants(v)) => {
                let k = key::variant(primary, v.generation, &v.names, req);
                match self.store.get(&k) {
                    Some(Slot::Answer(e)) => (Some(e), k),
                    _ => (None, k),
                }
            }
            None => (None, primary.to_string()),
        }
    }

    /// The answer from an entry: its status, headers and body, `Age` and
    /// `Cache-Status` (`hit; ttl=N`, negative once stale).
    fn reply(&self, e: &Entry, extra: &str) -> Reply {
        let mut headers = e.headers.clone();
        headers.push((AGE, HeaderValue::from(e.age().as_secs())));
        let status = format!("{}; hit; ttl={}{extra}", self.status_name, e.ttl());
        if let Ok(v) = HeaderValue::from_str(&status) {
            headers.push((CACHE_STATUS, v));
        }
        Reply {
            status: e.status,
            headers,
            body: ReplyBody::Raw(e.content_type.clone(), e.body.clone()),
            blocked: None,
        }
    }

    fn forward(
        &self,
        ctx: &mut PluginCtx,
        route: &str,
        fwd: &'static str,
        target: Option<Target>,
    ) -> Result<Flow, PluginFailure> {
        ctx.set_own(Forward::new(route, fwd, target));
        Ok(Flow::Continue)
    }

    /// The head of an answer as stored: end-to-end fields the upstream sent, less
    /// those the gateway's plugins added for this request.
    fn stored_headers(
        resp: &ResponseHeader,
        added: &[(HeaderName, HeaderValue)],
    ) -> Vec<(HeaderName, HeaderValue)> {
        let listed: Vec<String> = resp
            .headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
            .collect();
        resp.headers
            .iter()
            .filter(|(k, _)| {
                let n = k.as_str();
                *k != CONNECTION
                    && *k != TRANSFER_ENCODING
                    && *k != CONTENT_LENGTH
                    && *k != CONTENT_TYPE
                    && *k != AGE
                    && !NOT_STORED.contains(&n)
                    && !listed.iter().any(|l| l == n)
                    && !added.iter().any(|(a, _)| a == *k)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The copy to gather for a storable answer, or why not.
    fn start_fill(
        &self,
        resp: &ResponseHeader,
        added: &[(HeaderName, HeaderValue)],
        route: &str,
        t: Target,
    ) -> Result<Fill, &'static str> {
        let lifetime = control::storable(
            resp.status.as_u16(),
            &resp.headers,
            t.had_auth,
            self.defaults,
            SystemTime::now(),
        )
        .map_err(|_| "not_cacheable")?;
        let length = resp
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if length.is_some_and(|n| n > self.max_entry_size) {
            return Err("too_large");
        }
        let names = key::vary_names(&resp.headers);
        let origin = Origin {
            route: route.to_string(),
            host: t.primary.host.clone(),
            path: t.primary.path.clone(),
        };
        let key: Arc<str> = if names.is_empty() {
            Arc::from(t.primary.key.as_str())
        } else {
            let v = self
                .store
                .variants(&t.primary.key, names, lifetime.keep_for(), origin.clone());
            Arc::from(key::variant(
                &t.primary.key,
                v.generation,
                &v.names,
                &t.request_headers,
            ))
        };
        Ok(Fill {
            key,
            entry: Entry {
                status: resp.status.as_u16(),
                headers: Self::stored_headers(resp, added),
                content_type: resp.headers.get(CONTENT_TYPE).cloned(),
                body: Bytes::new(),
                stored_at: Instant::now(),
                lifetime,
                origin,
            },
            body: BytesMut::with_capacity(length.unwrap_or(0)),
            guard: t.guard,
        })
    }
}

#[async_trait]
impl Plugin for Cache {
    fn stage(&self) -> crate::Stage {
        crate::Stage::Serve
    }

    async fn on_request(&self, call: &mut RequestCall<'_>) -> Decision {
        let route = call.info.route;
        let method = call.method().clone();
        let host = key::host_of(&call.req.headers, &call.req.uri);
        let primary = |m: &Method| {
            key::primary(
                m,
                call.info.tls,
                host.as_deref(),
                call.info.path,
                call.info.query,
            )
        };
        if method != Method::GET && method != Method::HEAD {
            let unsafe_method = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
            let invalidate = unsafe_method
                .contains(&method)
                .then(|| primary(&Method::GET))
                .flatten()
                .map(|p| Arc::from(p.key));
            call.ctx.set_own(Forward {
                invalidate,
                ..Forward::new(route, "method", None)
            });
            return Ok(Flow::Continue);
        }
        let Some(primary) = primary(&method) else {
            self.count(route, "bypass");
            return self.forward(call.ctx, route, "bypass", None);
        };
        let had_auth = control::has_authorization(&call.req.headers);
        // HEAD and Range answers are not whole GET answers: served from one, never stored
        let storable = method == Method::GET && !call.req.headers.contains_key(RANGE);
        let target = |guard: Option<FillGuard>| {
            storable.then(|| Target {
                primary: primary.clone(),
                request_headers: call.req.headers.clone(),
                had_auth,
                guard,
            })
        };
        match control::request_rule(&call.req.headers) {
            RequestRule::NoStore => {
                self.count(route, "bypass");
                return self.forward(call.ctx, route, "bypass", None);
            }
            RequestRule::Refresh => {
                self.count(route, "miss");
                return self.forward(call.ctx, route, "request", target(None));
            }
            RequestRule::Normal => {}
        }
        let (found, lock_key) = self.lookup(&primary.key, &call.req.headers);
        let found_any = found.is_some();
        let usable = found.filter(|e| !had_auth || e.lifetime.shared_with_auth);
        if let Some(e) = &usable {
            if e.is_fresh() {
                self.count(route, "hit");
                return Ok(Flow::Respond(self.reply(e, "")));
            }
        }
        if had_auth {
            // not shared with credentials by default: no waiting, no lock
            let (label, fwd) = match (found_any, usable.is_some()) {
                (_, true) => ("miss", "stale"),
                (true, false) => ("bypass", "bypass"),
                (false, false) => ("miss", "miss"),
            };
            self.count(route, label);
            return self.forward(call.ctx, route, fwd, target(None));
        }
        if !storable {
            self.count(route, "miss");
            return self.forward(call.ctx, route, "miss", None);
        }
        if let Some(e) = usable.as_ref().filter(|e| e.may_serve_stale()) {
            // stale-while-revalidate: this request refills, the others get stale
            return match self.store.claim(&lock_key) {
                Claim::Filler(g) => {
                    self.count(route, "miss");
                    self.forward(call.ctx, route, "stale", target(Some(g)))
                }
                Claim::Wait(_) => {
                    self.count(route, "stale");
                    Ok(Flow::Respond(self.reply(e, "")))
                }
            };
        }
        let fwd = if usable.is_some() { "stale" } else { "miss" };
        match self.store.claim(&lock_key) {
            Claim::Filler(g) => {
                // a fill may have landed between the lookup and the claim
                if let (Some(e), _) = self.lookup(&primary.key, &call.req.headers) {
                    if e.is_fresh() {
                        drop(g);
                        self.count(route, "hit");
                        return Ok(Flow::Respond(self.reply(&e, "")));
                    }
                }
                self.count(route, "miss");
                self.forward(call.ctx, route, fwd, target(Some(g)))
            }
            Claim::Wait(mut rx) => {
                let _ = tokio::time::timeout(self.lock_timeout, rx.changed()).await;
                if let (Some(e), _) = self.lookup(&primary.key, &call.req.headers) {
                    if e.is_fresh() {
                        self.count(route, "hit");
                        return Ok(Flow::Respond(self.reply(&e, "; collapsed")));
                    }
                }
                // the filler stored nothing (or is slow): go upstream, and store
                self.count(route, "miss");
                self.forward(call.ctx, route, fwd, target(None))
            }
        }
    }

    fn on_response(&self, resp: &mut ResponseHeader, ctx: &mut PluginCtx) {
        // taken out while the answer's head is read beside the context's headers
        let Some(mut f) = ctx.take_own::<Forward>() else {
            return;
        };
        if let Some(primary) = f.invalidate.take() {
            if (200..400).contains(&resp.status.as_u16()) {
                self.store.invalidate(&primary);
            }
        }
        let mut status = format!("{}; fwd={}", self.status_name, f.fwd);
        if let Some(t) = f.target.take() {
            match self.start_fill(resp, &ctx.response_headers, &f.route, t) {
                Ok(fill) => {
                    status.push_str("; stored");
                    f.fill = Some(fill);
                }
                Err(outcome) => {
                    self.stores.with_label_values(&[&f.route, outcome]).inc();
                }
            }
        }
        if let Ok(v) = HeaderValue::from_str(&status) {
            let _ = resp.append_header(CACHE_STATUS, v);
        }
        ctx.set_own(f);
    }

    fn wants_response_body(&self) -> bool {
        true
    }

    fn on_response_body(&self, body: &mut Option<Bytes>, end_of_stream: bool, ctx: &mut PluginCtx) {
        let Some(f) = ctx.own::<Forward>() else {
            return;
        };
        let Some(fill) = f.fill.as_mut() else {
            return;
        };
        if let Some(b) = body {
            if fill.body.len() + b.len() > self.max_entry_size {
                // dropping the fill releases the waiters: they go upstream themselves
                f.fill = None;
                self.stores
                    .with_label_values(&[&f.route, "too_large"])
                    .inc();
                return;
            }
            fill.body.extend_from_slice(b);
        }
        if end_of_stream {
            if let Some(mut fill) = f.fill.take() {
                fill.entry.body = fill.body.freeze();
                self.store
                    .insert(fill.key, Slot::Answer(Arc::new(fill.entry)));
                // stored before the waiters wake
                drop(fill.guard);
                self.stores.with_label_values(&[&f.route, "stored"]).inc();
            }
        }
    }
}
