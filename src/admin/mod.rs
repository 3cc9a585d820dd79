//! The metrics port: `GET /metrics` (open), `GET /dashboard` (a static page and its
//! chart script `/dashboard/charts.js`; its data comes from the admin API), and the
//! admin API, which needs `Authorization: Bearer $ADMIN_TOKEN` and is disabled when
//! `ADMIN_TOKEN` is unset: `POST /admin/reload`, `GET /admin/upstreams`,
//! `GET /admin/routes`, `GET /admin/config` (secrets redacted), `GET /admin/summary`
//! (the dashboard's view), `GET /admin/series` (its charts: the last 15 minutes in
//! points of `SERIES_INTERVAL_MS`), `GET /admin/jobs/{id}` (a job's whole record,
//! whoever owns it), `/admin/plugins/{plugin}/{action}` (actions plugins offer, e.g.
//! a cache purge: see `actions`).

mod actions;
mod jobs;
mod redact;
mod summary;

use crate::gateway::{Gateway, ReloadOutcome, Trigger};
use crate::observability::series::Series;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::sync::Arc;

pub struct AdminApp {
    pub gw: Arc<Gateway>,
    /// the dashboard's charts: the last 15 minutes, sampled in the gateway
    pub series: Arc<Series>,
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Vec<u8>> {
    let body = v.to_string().into_bytes();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_default()
}

fn err(status: StatusCode, kind: &str, message: &str) -> Response<Vec<u8>> {
    json(
        status,
        serde_json::json!({"error": kind, "message": message}),
    )
}

/// A file of the dashboard, built into the binary: no CDN, no external asset; scripts
/// only from this origin or inline.
fn page(content_type: &str, text: &str) -> Response<Vec<u8>> {
    let body = text.as_bytes().to_vec();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .header(
            "content-security-policy",
            "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'",
        )
        .body(body)
        .unwrap_or_default()
}

/// Compares without an early exit, so timing does not tell how much of a token matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AdminApp {
    fn authorize(&self, session: &ServerSession) -> Result<(), Box<Response<Vec<u8>>>> {
        let Some(token) = &self.gw.admin_token else {
            return Err(Box::new(err(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the admin API is disabled: set ADMIN_TOKEN to enable it",
            )));
        };
        let given = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            Some(g) if same(g.as_bytes(), token.as_bytes()) => Ok(()),
            _ => {
                let mut r = err(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "a valid bearer token is required",
                );
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"api-gateway-admin\""),
                );
                Err(Box::new(r))
            }
        }
    }

    async fn reload(&self) -> Response<Vec<u8>> {
        let gw = self.gw.clone();
        match tokio::task::spawn_blocking(move || gw.reload(Trigger::Admin)).await {
            Ok(Ok(ReloadOutcome::Applied { routes, millis })) => json(
                StatusCode::OK,
                serde_json::json!({"status": "reloaded", "routes": routes, "millis": millis}),
            ),
            Ok(Ok(ReloadOutcome::Unchanged)) => {
                json(StatusCode::OK, serde_json::json!({"status": "unchanged"}))
            }
            Ok(Err(e)) => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({"error": "invalid_config", "message": "the file was refused; the previous route table keeps serving", "details": e.lines()}),
            ),
            Err(e) => err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                &e.to_string(),
            ),
        }
    }

    fn upstreams(&self) -> Response<Vec<u8>> {
        let rt = self.gw.live.load();
        let pools: serde_json::Map<String, serde_json::Value> = rt
            .pools
            .iter()
            .map(|(name, p)| (name.clone(), p.snapshot()))
            .collect();
        json(StatusCode::OK, serde_json::Value::Object(pools))
    }

    fn config(&self) -> Response<Vec<u8>> {
        let rt = self.gw.live.load();
        match serde_json::to_value(&*rt.config) {
            Ok(mut v) => {
                redact::redact(&mut v);
                json(StatusCode::OK, v)
            }
            Err(e) => err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                &e.to_string(),
            ),
        }
    }

    fn routes(&self) -> Response<Vec<u8>> {
        let rt = self.gw.live.load();
        let routes: Vec<_> = rt
            .config
            .routes
            .iter()
            .map(
                |r| serde_json::json!({"name": r.name, "match": r.matcher, "upstream": r.upstream}),
            )
            .collect();
        json(StatusCode::OK, serde_json::json!({"routes": routes}))
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => {
                let body = self.gw.metrics.render();
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "text/plain; version=0.0.4")
                    .header("content-length", body.len())
                    .body(body)
                    .unwrap_or_default()
            }
            ("GET", "/health") => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
            ("GET", "/dashboard" | "/dashboard/") => {
                page("text/html; charset=utf-8", include_str!("dashboard.html"))
            }
            ("GET", "/dashboard/charts.js") => {
                page("text/javascript; charset=utf-8", include_str!("charts.js"))
            }
            (
                _,
                "/admin/reload" | "/admin/upstreams" | "/admin/routes" | "/admin/config"
                | "/admin/summary" | "/admin/series",
            ) => {
                if let Err(r) = self.authorize(session) {
                    return *r;
                }
                match (method.as_str(), path.as_str()) {
                    ("POST", "/admin/reload") => self.reload().await,
                    ("GET", "/admin/upstreams") => self.upstreams(),
                    ("GET", "/admin/routes") => self.routes(),
                    ("GET", "/admin/config") => self.config(),
                    ("GET", "/admin/summary") => json(StatusCode::OK, summary::summary(&self.gw)),
                    ("GET", "/admin/series") => json(
                        StatusCode::OK,
                        serde_json::json!({
                            "interval_ms": self.series.interval().as_millis() as u64,
                            "window_s": crate::observability::series::WINDOW.as_secs(),
                            "points": self.series.points(),
                        }),
                    ),
                    _ => err(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "method_not_allowed",
                        "wrong method for this endpoint",
                    ),
                }
            }
            (_, p) if p.starts_with(actions::PREFIX) => {
                if let Err(r) = self.authorize(session) {
                    return *r;
                }
                actions::run(&self.gw, session, &p[actions::PREFIX.len()..]).await
            }
            (_, p) if p.starts_with("/admin/jobs/") => {
                if let Err(r) = self.authorize(session) {
                    return *r;
                }
                if method != http::Method::GET {
                    return err(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "method_not_allowed",
                        "wrong method for this endpoint",
                    );
                }
                jobs::job(&self.gw, &p["/admin/jobs/".len()..]).await
            }
            _ => err(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
        }
    }
}
