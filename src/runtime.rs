//! The live state: one value built whole from a validated config, off the hot path, and
//! swapped in with a single store. Requests hold the `Arc<Runtime>` they started with,
//! so a reload never changes a request midway.

use crate::config::{
    parse_date, plugin_error, Config, ConfigErrors, Deprecation, Errors, FallbackConfig, Parsed,
};
pub use crate::flows::RouteKind;
use crate::flows::{jobs::SubmitRoute, pipeline};
use crate::observability::metrics::{Metrics, RouteMetrics};
use crate::router::{EncodedSet, Rewrite, Router};
use crate::upstream::{Pool, Registry, Split};
use bytes::Bytes;
use gateway_plugins::{BuildCtx, Instance, Shared};
use http::{HeaderName, HeaderValue};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How the upstream `Host` header is chosen.
#[derive(Debug, Clone)]
pub enum HostHeader {
    /// The upstream's `host`, else the target address.
    Upstream,
    /// The client's own Host.
    Preserve,
    /// This value.
    Set(HeaderValue),
}

/// A fixed answer (route `fallback`).
#[derive(Debug, Clone)]
pub struct Fallback {
    pub status: u16,
    pub body: Bytes,
    pub content_type: HeaderValue,
}

/// One route, ready to serve.
pub struct CompiledRoute {
    pub name: String,
    /// Proxy, pipeline, async job submit or job status.
    pub kind: RouteKind,
    /// The pool of a proxied route.
    pub pool: Option<Arc<Pool>>,
    /// The sides of a split route (`split:`), chosen per request instead of `pool`.
    pub split: Option<Arc<Split>>,
    pub rewrite: Rewrite,
    pub host_header: HostHeader,
    /// The effective chain: global plugins, then the route's own.
    pub plugins: Vec<Instance>,
    /// A plugin of the chain reads the whole request body.
    pub needs_body: bool,
    /// A plugin of the chain reads the request body as it streams (when another one
    /// reads it whole, they all get it whole, in chain order).
    pub reads_request_chunks: bool,
    /// A plugin of the chain reads or rewrites the response body.
    pub edits_response_body: bool,
    /// `Deprecation`, `Sunset` and `Link` headers, when deprecated.
    pub deprecation: Vec<(HeaderName, HeaderValue)>,
    pub fallback: Option<Fallback>,
    pub timeout: Option<Duration>,
    /// `stream_idle_timeout`: the upstream's per-read limit, instead of `timeout` and
    /// the pool's `timeouts.read`, so that a stream whose events flow stays open.
    pub stream_idle_timeout: Option<Duration>,
    /// `sse_keepalive`: a `text/event-stream` answer idle this long gets a
    /// `: keep-alive` comment (between two events).
    pub sse_keepalive: Option<Duration>,
    pub max_body: u64,
    pub retry_non_idempotent: bool,
    /// Encoded path characters this route takes (its own and the server's).
    pub allow_encoded: EncodedSet,
    /// The route's metric handles ([`Runtime::resolve_metrics`]).
    metrics: std::sync::OnceLock<RouteMetrics>,
}

impl CompiledRoute {
    /// A plugin of the chain reads the request body (whole or as it streams).
    pub fn reads_body(&self) -> bool {
        self.needs_body || self.reads_request_chunks
    }

    /// The route's metric handles, resolved once per table.
    pub fn metrics(&self, m: &Metrics) -> &RouteMetrics {
        self.metrics.get_or_init(|| {
            let sides = self.split.iter().flat_map(|s| s.sides.iter());
            RouteMetrics::new(m, &self.name, self.pool.as_ref().map(|p| p.name.as_str()))
                .with_sides(m, sides.map(|s| s.name.as_str()))
        })
    }
}

/// The whole live table.
pub struct Runtime {
    pub router: Router,
    /// `server.max_header_size` in bytes.
    pub max_header_bytes: usize,
    /// `server.keepalive_timeout` in whole seconds (at least 1).
    pub keepalive_secs: u64,
    /// `server.allow_encoded`: what a path that matches no route may carry.
    pub allow_encoded: EncodedSet,
    /// `server.underscore_headers`.
    pub underscore_headers: crate::config::UnderscoreHeaders,
    /// The global plugins, for the gateway's answers to requests that match no route
    /// (404, 405).
    pub unmatched: Arc<[Instance]>,
    pub routes: Vec<Arc<CompiledRoute>>,
    pub pools: BTreeMap<String, Arc<Pool>>,
    pub config: Arc<Config>,
    pub loaded_at: SystemTime,
    /// The OpenAPI document of this table, made on first request of `/openapi.json`.
    pub openapi: crate::openapi::Cached,
}

/// Default `server.keepalive_timeout`, seconds.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 60;

/// Default `server.max_header_size`.
pub const DEFAULT_MAX_HEADER: u64 = 64 * 1024;

/// Default `server.max_body_size`.
pub const DEFAULT_MAX_BODY: u64 = 100 * 1024 * 1024;

impl Runtime {
    /// Builds the live state from a validated table: the one place where pools, the
    /// router and plugins are built (plugins with `plugins`: dry for `check`), and so
    /// the validator of everything that only a build can check (plugin settings, files
    /// that vanished, names that no longer resolve). Every error is located in the
    /// table's source; relative files start at its directory.
    pub fn build(
        parsed: Parsed,
        registry: &Registry,
        plugins: &Arc<Shared>,
    ) -> Result<Self, ConfigErrors> {
        let Parsed {
            config,
            locations,
            source_name,
        } = parsed;
        let base_dir = crate::config::base_dir(&source_name).to_path_buf();
        let base_dir = base_dir.as_path();
        let mut errors = Errors::new(&locations);
        let mut pools = BTreeMap::new();
        for (name, up) in &config.upstreams {
            match registry.build_pool(name, up) {
                Ok(p) => {
                    pools.insert(name.clone(), p);
                }
                Err(e) => errors.push(format!("upstreams.{name}"), e.to_string()),
            }
        }
        let router = Router::build(config.routes.iter().map(|r| &r.matcher)).unwrap_or_else(|e| {
            errors.push(format!("routes[{}].match", e.route), e.to_string());
            Router::default()
        });
        let default_max = config
            .server
            .max_body_size
            .map_or(DEFAULT_MAX_BODY, |b| b.0);
        let server_encoded = EncodedSet::of(&config.server.allow_encoded);
        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, r) in config.routes.iter().enumerate() {
            let p = format!("routes[{i}]");
            let rewrite =
                Rewrite::compile(r.rewrite.as_ref(), router.pattern(i)).unwrap_or_else(|e| {
                    errors.push(format!("{p}.rewrite"), e.to_string());
                    Rewrite::default()
                });
            let host_header = match r.rewrite.as_ref().and_then(|rw| rw.host.as_deref()) {
                None => HostHeader::Upstream,
                Some("preserve") => HostHeader::Preserve,
                Some(h) => match HeaderValue::from_str(h) {
                    Ok(v) => HostHeader::Set(v),
                    Err(_) => {
                        errors.push(format!("{p}.rewrite.host"), "not a valid header value");
                        HostHeader::Upstream
                    }
                },
            };
            let chain = crate::config::chain(&config, i, r);
            let mut chain_built = Vec::with_capacity(chain.len());
            let cx = BuildCtx {
                shared: plugins,
                base_dir,
                route: Some(&r.name),
            };
            let mut order = crate::config::ChainOrder::default();
            for entry in chain {
                match gateway_plugins::build(&entry.config.name, &entry.config.settings, &cx) {
                    Ok(p) => {
                        order.check(&p, &entry.path, &mut errors);
                        crate::config::check_plugin_upstreams(
                            &p,
                            &entry.path,
                            &config,
                            &mut errors,
                        );
                        chain_built.push(p);
                    }
                    Err(e) => plugin_error(&entry.path, &e, &mut errors),
                }
            }
            let fallback = match &r.fallback {
                None => None,
                Some(f) => match fallback(f) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        errors.push(format!("{p}.fallback"), e.to_string());
                        None
                    }
                },
            };
            let kind = route_kind(r, &pools);
            routes.push(Arc::new(CompiledRoute {
                name: r.name.clone(),
                kind,
                pool: r.upstream.as_ref().and_then(|u| pools.get(u).cloned()),
                split: r
                    .split
                    .as_ref()
                    .and_then(|s| Split::build(s, &pools))
                    .map(Arc::new),
                rewrite,
                host_header,
                needs_body: chain_built.iter().any(|p| p.wants_body()),
                reads_request_chunks: chain_built.iter().any(|p| p.wants_request_chunks()),
                edits_response_body: chain_built.iter().any(|p| p.wants_response_body()),
                deprecation: deprecation(r.deprecated.as_ref()),
                fallback,
                timeout: r.timeout.map(|d| d.get()),
                stream_idle_timeout: r.stream_idle_timeout.map(|d| d.get()),
                sse_keepalive: r.sse_keepalive.map(|d| d.get()),
                // a body_limit plugin lowers the route's limit, enforced in one place
                max_body: chain_built
                    .iter()
                    .filter_map(|p| p.body_limit())
                    .fold(r.max_body_size.map_or(default_max, |b| b.0), u64::min),
                retry_non_idempotent: r.retry_non_idempotent,
                allow_encoded: server_encoded.union(EncodedSet::of(&r.allow_encoded)),
                plugins: chain_built,
                metrics: std::sync::OnceLock::new(),
            }));
        }
        let cx = BuildCtx {
            shared: plugins,
            base_dir,
            route: None,
        };
        let mut unmatched = Vec::with_capacity(config.plugins.len());
        for (j, g) in config.plugins.iter().enumerate().filter(|(_, g)| g.enabled) {
            match gateway_plugins::build(&g.name, &g.settings, &cx) {
                Ok(p) => {
                    let path = format!("plugins[{j}]");
                    crate::config::check_plugin_upstreams(&p, &path, &config, &mut errors);
                    unmatched.push(p)
                }
                Err(e) => plugin_error(&format!("plugins[{j}]"), &e, &mut errors),
            }
        }
        // a global plugin's error is met once per route that runs it: report it once
        errors.list.dedup();
        errors.finish(&source_name)?;
        let max_header_bytes = config
            .server
            .max_header_size
            .map_or(DEFAULT_MAX_HEADER, |b| b.0);
        let keepalive_secs = config
            .server
            .keepalive_timeout
            .map_or(DEFAULT_KEEPALIVE_SECS, |d| d.get().as_secs())
            .max(1);
        Ok(Self {
            keepalive_secs,
            allow_encoded: server_encoded,
            unmatched: unmatched.into(),
            underscore_headers: config.server.underscore_headers,
            max_header_bytes: usize::try_from(max_header_bytes).unwrap_or(usize::MAX),
            router,
            routes,
            pools,
            config: Arc::new(config),
            loaded_at: SystemTime::now(),
            openapi: crate::openapi::Cached::new(base_dir),
        })
    }

    /// Resolves every route's metric handles, off the request path (after a build).
    pub fn resolve_metrics(&self, m: &Metrics) {
        for r in &self.routes {
            r.metrics(m);
        }
    }

    /// Readiness: every upstream that a route uses has a target that can take traffic.
    pub fn unready_upstreams(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.routes {
            for p in r.pool.iter().chain(r.kind.pools()) {
                if !p.has_available_target() && !out.contains(&p.name.as_str()) {
                    out.push(&p.name);
                }
            }
            // a split is ready while one of its sides is: the others' share goes there
            if let Some(s) = r.split.as_ref() {
                if !s.sides.iter().any(|side| side.pool.has_available_target()) {
                    for side in &s.sides {
                        if !out.contains(&side.name.as_str()) {
                            out.push(&side.name);
                        }
                    }
                }
            }
        }
        out
    }
}

/// The route's kind. Validation made sure every upstream named exists; a missing
/// pool (one that failed to build, reported already) makes the route a proxy without
/// a pool.
fn route_kind(r: &crate::config::RouteConfig, pools: &BTreeMap<String, Arc<Pool>>) -> RouteKind {
    if let Some(steps) = &r.pipeline {
        let mut built = Vec::with_capacity(steps.len());
        for s in steps {
            let Some(pool) = pools.get(&s.upstream) else {
                return RouteKind::Proxy;
            };
            built.push(pipeline::Step {
                name: s.step_name().to_string(),
                upstream: s.upstream.clone(),
                pool: pool.clone(),
                path: s.path.clone(),
            });
        }
        return RouteKind::Pipeline(Arc::new(pipeline::Pipeline {
            steps: built,
            timeout: r.timeout.map(|d| d.get()),
            retry_unsafe: r.retry_non_idempotent,
            stream_idle_timeout: r.stream_idle_timeout.map(|d| d.get()),
        }));
    }
    if let Some(a) = &r.async_job {
        let (Some(g), Some(e)) = (
            pools.get(&a.generation.upstream),
            pools.get(&a.enrichment.upstream),
        ) else {
            return RouteKind::Proxy;
        };
        return RouteKind::AsyncJob(Arc::new(SubmitRoute::new(&r.name, a, g.clone(), e.clone())));
    }
    if r.jobs.is_some() {
        return if r.is_job_events() {
            RouteKind::JobEvents
        } else {
            RouteKind::JobStatus
        };
    }
    RouteKind::Proxy
}

/// Why a route's `fallback` cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum FallbackError {
    #[error("cannot read `{file}`: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("content_type `{0}` is not a valid header value")]
    ContentType(String),
}

fn fallback(f: &FallbackConfig) -> Result<Fallback, FallbackError> {
    let body = match (&f.body, &f.file) {
        (_, Some(file)) => {
            Bytes::from(std::fs::read(file).map_err(|source| FallbackError::Read {
                file: file.clone(),
                source,
            })?)
        }
        (Some(b), None) => Bytes::from(b.clone()),
        (None, None) => Bytes::new(),
    };
    let ct = f.content_type.as_deref().unwrap_or("application/json");
    Ok(Fallback {
        status: f.status,
        body,
        content_type: HeaderValue::from_str(ct)
            .map_err(|_| FallbackError::ContentType(ct.to_string()))?,
    })
}

/// RFC 9745 `Deprecation: @<unix>` (`@0` when no date is given: deprecated, date
/// unknown), RFC 8594 `Sunset: <HTTP-date>`, and `Link: <...>; rel="deprecation"`.
fn deprecation(d: Option<&Deprecation>) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    let unix = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    let (since, sunset, link) = match d {
        None | Some(Deprecation::Flag(false)) => return out,
        Some(Deprecation::Flag(true)) => (None, None, None),
        Some(Deprecation::Details(d)) => (
            d.since.as_deref().and_then(|s| parse_date(s).ok()),
            d.sunset.as_deref().and_then(|s| parse_date(s).ok()),
            d.link.as_deref(),
        ),
    };
    let dep = format!("@{}", since.map_or(0, unix));
    if let Ok(v) = HeaderValue::from_str(&dep) {
        out.push((HeaderName::from_static("deprecation"), v));
    }
    if let Some(s) = sunset {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(s)) {
            out.push((HeaderName::from_static("sunset"), v));
        }
    }
    if let Some(l) = link {
        if let Ok(v) = HeaderValue::from_str(&format!("<{l}>; rel=\"deprecation\"")) {
            out.push((http::header::LINK, v));
        }
    }
    out
}
