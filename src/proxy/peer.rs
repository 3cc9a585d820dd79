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
    let Some(pool) = route.pool.as_ref() else {
        return Error::e_explain(ErrorType::InternalError, "route has no upstream");
    };
    // a retry releases the previous target first
    ctx.release_pick(Outcome::Error);
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
    let hash = retry::hash_key(pool, session);
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
    peer.options.read_timeout = cap(t.read.get());
    peer.options.write_timeout = cap(t.write.get());
    peer.options.idle_timeout = Some(t.idle.get());
    ctx.pick = Some(pick);
    Ok(Box::new(peer))
}
