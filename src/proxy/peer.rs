//! Choosing the target of one try: the retry's backoff, the route's time left, the
//! pool's pick (hashing when it hashes), and the pingora peer with the pool's TLS and
//! timeouts capped by the time left.

use super::ctx::{Ctx, Failure};
use super::retry;
use crate::upstream::{NoTarget, Outcome};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_proxy::Session;
use std::time::Duration;

/// The peer of the request's next try.
pub(super) async fn pick(session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
    let Some(route) = ctx.route.clone() else {
        return Error::e_explain(ErrorType::InternalError, "no route for upstream selection");
    };
    // a retry releases the previous target first
    ctx.release_pick(Outcome::Error);
    switch_side_if_down(ctx, &route);
    let Some(pool) = ctx.pool.clone() else {
        return Error::e_explain(ErrorType::InternalError, "route has no upstream");
    };
    ctx.upstream_time = None;
    if ctx.tries > 0 {
        if let Some(r) = &pool.config.retry {
            tokio::time::sleep(crate::upstream::backoff(r, ctx.tries)).await;
        }
    }
    let mut remaining = None;
    if let Some(total) = route.timeout {
        let left = total.saturating_sub(ctx.start.elapsed());
        if left.is_zero() {
            ctx.failure = Some(Failure::RouteTimeout);
            return Error::e_explain(ErrorType::HTTPStatus(504), "route timeout");
        }
        remaining = Some(left);
    }
    let hash = retry::hash_key(&pool, session);
    let pick = match pool.select(hash, &ctx.tried) {
        Ok(p) => p,
        Err(NoTarget::AllDown { retry_after }) => {
            ctx.failure = Some(Failure::NoTarget(retry_after));
            ctx.error_type = Some("no_healthy_target");
            let mut e =
                Error::explain(ErrorType::HTTPStatus(503), "no target can take the request");
            e.set_retry(false);
            return Err(e);
        }
    };
    ctx.tries += 1;
    ctx.tried.push(pick.addr);
    ctx.plugin.upstream = Some(pick.addr);
    let cfg = &pool.config;
    let sni = cfg.host.clone().unwrap_or_default();
    let mut peer = HttpPeer::new(pick.addr, cfg.tls.enabled(), sni);
    if let Some(tls) = &pool.tls {
        tls.apply(&mut peer);
    }
    let t = &cfg.timeouts;
    let cap = |d: Duration| Some(remaining.map_or(d, |r| r.min(d)));
    peer.options.connection_timeout = cap(t.connect.get());
    peer.options.total_connection_timeout = cap(t.connect.get());
    // a stream may outlive the route's timeout while its events flow: each read waits
    // at most `stream_idle_timeout`
    peer.options.read_timeout = match route.stream_idle_timeout {
        Some(idle) => Some(idle),
        None => cap(t.read.get()),
    };
    peer.options.write_timeout = cap(t.write.get());
    peer.options.idle_timeout = Some(t.idle.get());
    ctx.pick = Some(pick);
    Ok(Box::new(peer))
}

/// A split request whose side has no available target left (all down, ejected or
/// behind open breakers) moves to another side that has one, by weight: the share of a
/// side that is down goes to the others, retries included.
fn switch_side_if_down(ctx: &mut Ctx, route: &crate::runtime::CompiledRoute) {
    let (Some(split), Some(side)) = (route.split.as_ref(), ctx.side) else {
        return;
    };
    if split.sides[side].pool.has_available_target() {
        return;
    }
    if let Some(other) = split.other_than(side) {
        super::routing::set_side(ctx, split, other);
        ctx.tried.clear();
    }
}

/// After a connect failure with no try left on its side: moves a split request to
/// another side that has an available target, once (nothing was sent, so the request
/// is safe to send again). `true`: retry there.
pub(super) fn switch_side(ctx: &mut Ctx, session: &Session) -> bool {
    if ctx.side_switched || session.response_written().is_some() {
        return false;
    }
    let (Some(route), Some(side)) = (ctx.route.clone(), ctx.side) else {
        return false;
    };
    let Some(split) = route.split.as_ref() else {
        return false;
    };
    let Some(other) = split.other_than(side) else {
        return false;
    };
    super::routing::set_side(ctx, split, other);
    ctx.tried.clear();
    ctx.side_switched = true;
    true
}
