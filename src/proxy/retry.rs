//! Retry decisions and error → status mapping. A request is retried only while tries
//! remain (`retry.attempts`, the first try included), never after a byte went to the
//! client, and, past a connect failure, only for idempotent methods unless the route
//! sets `retry_non_idempotent`.

use super::ctx::{Ctx, Failure};
use crate::config::{HashOn, HashOnSimple, RetryConfig};
use crate::router::normalize_path;
use crate::upstream::{self, Failed, Pool, RetryPolicy};
use pingora_error::{Error, ErrorSource, ErrorType, RetryType};
use pingora_proxy::Session;
use std::borrow::Cow;
use std::net::IpAddr;

/// Whether the body can be sent again as it went: pingora kept all of it, and no
/// plugin of the streaming body phase changed or holds bytes of it.
fn replayable(ctx: &Ctx, session: &Session) -> bool {
    !session.as_ref().retry_buffer_truncated() && ctx.chunks.replayable()
}

fn tries_left(ctx: &Ctx) -> bool {
    ctx.tries < policy(ctx).attempts()
}

/// The route's pool's retry policy.
fn policy(ctx: &Ctx) -> RetryPolicy<'_> {
    RetryPolicy::new(retry_cfg(ctx))
}

fn method_ok(ctx: &Ctx, session: &Session) -> bool {
    upstream::idempotent(&session.req_header().method)
        || ctx.route.as_ref().is_some_and(|r| r.retry_non_idempotent)
}

fn retry_cfg(ctx: &Ctx) -> Option<&RetryConfig> {
    ctx.pool.as_ref()?.config.retry.as_ref()
}

/// Whether another try may start (tries left, body still replayable, budget allows).
/// `connect` = nothing was sent, so the method does not matter.
pub fn may_retry(ctx: &Ctx, session: &Session, connect: bool) -> bool {
    if !tries_left(ctx) || session.response_written().is_some() || !replayable(ctx, session) {
        return false;
    }
    if !connect && !method_ok(ctx, session) {
        return false;
    }
    ctx.pool.as_ref().is_some_and(|p| p.try_retry())
}

/// Whether a response status should be retried rather than passed on.
pub fn should_retry_status(ctx: &Ctx, session: &Session, status: u16) -> bool {
    policy(ctx).lists(Failed::Status(status)) && may_retry(ctx, session, false)
}

/// Whether an error after connecting is retried.
pub fn retry_after_error(
    ctx: &Ctx,
    session: &Session,
    e: &Error,
    timeout: bool,
    client_reused: bool,
) -> bool {
    if client_reused && head_unsent(e) && ctx.upstream_time.is_none() {
        // a pooled keep-alive connection the upstream had closed meanwhile: the request
        // head could not be written, so the upstream got no request and any method may
        // go again, as after a failed connect (one more try without a retry policy)
        return if retry_cfg(ctx).is_none() {
            tries_left_default(ctx) && replayable(ctx, session)
        } else {
            may_retry(ctx, session, true)
        };
    }
    // pingora's own verdict; `ReusedOnly` = safe only on a reused connection
    let pingora_says = match e.retry {
        RetryType::Decided(b) => b,
        RetryType::ReusedOnly => client_reused,
    };
    if retry_cfg(ctx).is_none() {
        // no retry policy: only pingora's safe case, a stale reused connection
        return pingora_says
            && method_ok(ctx, session)
            && tries_left_default(ctx)
            && ctx.chunks.replayable();
    }
    let policy = policy(ctx);
    if timeout {
        return policy.lists(Failed::Timeout) && may_retry(ctx, session, false);
    }
    // the connection broke before any response: a stale keep-alive connection, or a
    // target that died mid-request
    let broken = matches!(
        e.etype(),
        ErrorType::ConnectionClosed
            | ErrorType::ReadError
            | ErrorType::WriteError
            | ErrorType::H2Error
            | ErrorType::InvalidHTTPHeader
    ) && e.esource() == &ErrorSource::Upstream;
    let reset_ok = policy.lists(Failed::Reset);
    // like nginx's default `proxy_next_upstream error`: a connection that broke before
    // any response byte (the keep-alive race when a target dies) is retried for
    // idempotent methods whatever `retry.on` lists; the target never answered
    let before_response = broken && ctx.upstream_time.is_none();
    (pingora_says || (broken && reset_ok) || before_response) && may_retry(ctx, session, false)
}

/// Whether an idempotent request's connection broke before any answer byte (the
/// target died mid-request): a split may then send it to another side.
pub fn broke_before_answer(ctx: &Ctx, session: &Session, e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
    ) && e.esource() == &ErrorSource::Upstream
        && ctx.upstream_time.is_none()
        && method_ok(ctx, session)
        && replayable(ctx, session)
}

/// Whether `e` is pingora's failure to write the request head upstream (its HTTP/1
/// client's context, `vendor/pingora-core/src/protocols/http/v1/client.rs`): the head
/// did not go whole, so the upstream got no request to act on.
fn head_unsent(e: &Error) -> bool {
    e.etype() == &ErrorType::WriteError
        && e.esource() == &ErrorSource::Upstream
        && e.context
            .as_ref()
            .is_some_and(|c| c.as_str() == "while writing request headers")
}

fn tries_left_default(ctx: &Ctx) -> bool {
    ctx.tries < 2
}

/// The status the client gets for a failed request.
pub fn status_for_error(e: &Error, ctx: &mut Ctx) -> u16 {
    if let Some(Failure::RouteTimeout) = ctx.failure {
        ctx.error_type.get_or_insert("timeout");
        return 504;
    }
    match e.etype() {
        ErrorType::HTTPStatus(c) => *c,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            ctx.error_type.get_or_insert("timeout");
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => {
                ctx.error_type.get_or_insert("upstream_error");
                502
            }
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// The consistent-hashing key of a request, when the pool hashes; `None` when the
/// configured header, cookie or address is absent (the pool then picks at random).
pub fn hash_key(pool: &Pool, session: &Session) -> Option<u64> {
    if pool.config.balance != crate::config::Balance::ConsistentHash {
        return None;
    }
    let req = session.req_header();
    let on = pool
        .config
        .hash_on
        .as_ref()
        .unwrap_or(&HashOn::Simple(HashOnSimple::ClientIp));
    Some(match on {
        HashOn::Header { header: name } => {
            upstream::hash_key(req.headers.get(name.as_str())?.as_bytes())
        }
        HashOn::Cookie { cookie: name } => {
            upstream::hash_key(upstream::split::cookie(&req.headers, name)?.as_bytes())
        }
        HashOn::Simple(HashOnSimple::ClientIp) => match session.client_addr()?.as_inet()?.ip() {
            IpAddr::V4(ip) => upstream::hash_key(&ip.octets()),
            IpAddr::V6(ip) => upstream::hash_key(&ip.octets()),
        },
        HashOn::Simple(HashOnSimple::Path) => {
            let raw = req.uri.path();
            upstream::hash_key(normalize_path(raw).unwrap_or(Cow::Borrowed(raw)).as_bytes())
        }
    })
}
