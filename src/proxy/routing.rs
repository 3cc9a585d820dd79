//! The routing step of the request phase: normalise, match, plan the rewrite.

use crate::router::{normalize_path, request_host, Routed};
use crate::runtime::{CompiledRoute, Runtime};
use http::HeaderValue;
use pingora_http::RequestHeader;
use std::sync::Arc;

/// What routing decided for a request.
pub(super) enum Decision {
    /// The route; the upstream path and query when they differ from the client's; the
    /// normalised path when the route has plugins (which see it).
    Route(Arc<CompiledRoute>, Option<String>, Option<String>),
    /// Status, blocked-reason label, message, and `Allow` for a 405.
    Refuse(u16, &'static str, &'static str, Option<HeaderValue>),
}

/// Normalises the path and matches it in the table. Allocates only when the path
/// needed normalising, the route rewrites it, or the route has plugins.
pub(super) fn route_request(rt: &Runtime, req: &RequestHeader) -> Decision {
    let path = match normalize_path(req.uri.path()) {
        Ok(p) => p,
        Err(e) => return Decision::Refuse(400, "bad_path", e.0, None),
    };
    let host = request_host(&req.headers, &req.uri);
    let mut routed = rt.router.lookup(&req.method, host, &req.headers, &path);
    if matches!(routed, Routed::MethodNotAllowed(_)) {
        if let Some(r) = preflight_route(rt, req, host, &path) {
            routed = r;
        }
    }
    let decision = match routed {
        Routed::Found { route, params } => {
            let Some(r) = rt.routes.get(route) else {
                return Decision::Refuse(500, "internal", "route table is inconsistent", None);
            };
            let clean = matches!(path, std::borrow::Cow::Borrowed(_));
            let up = if r.rewrite.is_identity() && clean {
                None
            } else {
                Some(r.rewrite.apply(&path, &params, req.uri.query()))
            };
            let plugin_path = (!r.plugins.is_empty()).then(|| path.to_string());
            Decision::Route(r.clone(), up, plugin_path)
        }
        Routed::NotFound => {
            Decision::Refuse(404, "no_route", "no route matches this request", None)
        }
        Routed::MethodNotAllowed(allow) => Decision::Refuse(
            405,
            "method_not_allowed",
            "this path does not take this method",
            HeaderValue::from_str(&allow).ok(),
        ),
    };
    decision
}

/// A CORS preflight (`OPTIONS` asking for another method) on a route restricted to
/// that method is routed as the method it asks for when that route has a `cors`
/// plugin, which answers it; other preflights keep their 405.
fn preflight_route<'p>(
    rt: &Runtime,
    req: &RequestHeader,
    host: Option<&str>,
    path: &'p str,
) -> Option<Routed<'p>> {
    if req.method != http::Method::OPTIONS {
        return None;
    }
    let asked = req
        .headers
        .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)?;
    let asked = http::Method::from_bytes(asked.as_bytes()).ok()?;
    let routed = rt.router.lookup(&asked, host, &req.headers, path);
    let Routed::Found { route, .. } = &routed else {
        return None;
    };
    let r = rt.routes.get(*route)?;
    r.plugins
        .iter()
        .any(|p| p.name() == "cors")
        .then_some(routed)
}
