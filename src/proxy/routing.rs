//! The routing step of the request phase: refuse ambiguous paths, normalise, match,
//! plan the rewrite.

use super::Ctx;
use crate::router::{encoded_in, normalize_path, refusal_message, request_host, Routed};
use crate::runtime::{CompiledRoute, Runtime};
use http::HeaderValue;
use pingora_http::RequestHeader;
use std::borrow::Cow;
use std::sync::Arc;

/// An answer the gateway gives instead of routing.
#[derive(Debug)]
pub(super) struct Refusal {
    pub status: u16,
    /// The `reason` label of `gateway_requests_blocked_total`.
    pub reason: &'static str,
    /// The `error` member of the JSON answer.
    pub kind: &'static str,
    pub message: Cow<'static, str>,
    /// `Allow`, for a 405.
    pub allow: Option<HeaderValue>,
}

impl Refusal {
    pub(super) fn new(
        status: u16,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            reason,
            kind: crate::proxy::kind_for(status),
            message: message.into(),
            allow: None,
        }
    }

    /// The same with its own `error` kind.
    pub(super) fn kind(self, kind: &'static str) -> Self {
        Self { kind, ..self }
    }

    fn ambiguous(message: &'static str) -> Self {
        Self {
            kind: "ambiguous_path",
            ..Self::new(400, "ambiguous_path", message)
        }
    }

    /// Whether the answer is the gateway's "no such route" (404 or 405), which the
    /// global plugins decorate.
    pub(super) fn unmatched(&self) -> bool {
        matches!(self.reason, "no_route" | "method_not_allowed")
    }
}

const CASE_MESSAGE: &str = "the path reaches another route when its letters are compared without case, as upstreams such as Express do; send it in the case of its route";

/// What routing decided for a request.
pub(super) enum Decision {
    /// The route; the upstream path and query when they differ from the client's; the
    /// normalised path when the route has plugins (which see it).
    Route(Arc<CompiledRoute>, Option<String>, Option<String>),
    Refuse(Refusal),
}

/// Refuses ambiguous paths, normalises the path and matches it in the table. Allocates
/// only when the path needed normalising, the route rewrites it, or the route has
/// plugins.
pub(super) fn route_request(rt: &Runtime, req: &RequestHeader) -> Decision {
    let raw = req.uri.path();
    // encoded separators and friends, as received: the route decides once it is known
    let encoded = match encoded_in(raw) {
        Ok(e) => e,
        Err(nul) => return Decision::Refuse(Refusal::ambiguous(nul)),
    };
    let path = match normalize_path(raw) {
        Ok(p) => p,
        Err(e) => return Decision::Refuse(Refusal::new(400, "bad_path", e.0)),
    };
    let host = request_host(&req.headers, &req.uri);
    let mut routed = rt.router.lookup(&req.method, host, &req.headers, &path);
    if matches!(routed, Routed::MethodNotAllowed(_)) {
        if let Some(r) = preflight_route(rt, req, host, &path) {
            routed = r;
        }
    }
    let route = match &routed {
        Routed::Found { route, .. } => {
            // an upstream that routes case-insensitively would pick another route
            if path.bytes().any(|b| b.is_ascii_uppercase()) {
                let lower = path.to_ascii_lowercase();
                let other = rt
                    .router
                    .lookup_folded(&req.method, host, &req.headers, &lower);
                if other.is_some_and(|o| o != *route) {
                    return Decision::Refuse(Refusal::ambiguous(CASE_MESSAGE));
                }
            }
            rt.routes.get(*route)
        }
        _ => None,
    };
    let allowed = route.map_or(rt.allow_encoded, |r| r.allow_encoded);
    if let Some(c) = encoded.first_outside(allowed) {
        return Decision::Refuse(Refusal::ambiguous(refusal_message(c)));
    }
    match routed {
        Routed::Found { params, .. } => {
            let Some(r) = route else {
                return Decision::Refuse(Refusal::new(
                    500,
                    "internal",
                    "route table is inconsistent",
                ));
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
        Routed::NotFound => Decision::Refuse(Refusal::new(
            404,
            "no_route",
            "no route matches this request",
        )),
        Routed::MethodNotAllowed(allow) => Decision::Refuse(Refusal {
            allow: HeaderValue::from_str(&allow).ok(),
            ..Refusal::new(
                405,
                "method_not_allowed",
                "this path does not take this method",
            )
        }),
    }
}

/// A CORS preflight (`OPTIONS` asking for another method) on a route restricted to
/// that method is routed as the method it asks for when a plugin of that route answers
/// preflights; other preflights keep their 405.
fn preflight_route<'p>(
    rt: &Runtime,
    req: &RequestHeader,
    host: Option<&str>,
    path: &'p str,
) -> Option<Routed<'p>> {
    let asked = preflight_method(req)?;
    let routed = rt.router.lookup(&asked, host, &req.headers, path);
    let Routed::Found { route, .. } = &routed else {
        return None;
    };
    let r = rt.routes.get(*route)?;
    r.plugins
        .iter()
        .any(|p| p.answers_preflight())
        .then_some(routed)
}

/// The method a CORS preflight asks for: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub(super) fn preflight_method(req: &RequestHeader) -> Option<http::Method> {
    if req.method != http::Method::OPTIONS || !req.headers.contains_key(http::header::ORIGIN) {
        return None;
    }
    let asked = req
        .headers
        .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)?;
    http::Method::from_bytes(asked.as_bytes()).ok()
}

/// The pool of a proxied request: the route's, or the side its split chooses (after the
/// plugins' request phase, so that a sticky split sees the consumer). The side's label
/// goes to `side_header` and a new sticky cookie to the answer, whatever it is.
pub(super) fn choose_pool(req: &RequestHeader, ctx: &mut Ctx, route: &CompiledRoute) {
    let Some(split) = route.split.as_ref() else {
        ctx.pool = route.pool.clone();
        return;
    };
    let choice = split.choose(&req.headers, ctx.plugin.consumer());
    if let Some(v) = choice.set_cookie {
        ctx.plugin.add_response_header(http::header::SET_COOKIE, v);
    }
    set_side(ctx, split, choice.side);
}

/// Puts the request on side `side` of `split`.
pub(super) fn set_side(ctx: &mut Ctx, split: &crate::upstream::Split, side: usize) {
    ctx.side = Some(side);
    ctx.pool = Some(split.sides[side].pool.clone());
}
