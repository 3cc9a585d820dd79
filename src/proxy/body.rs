//! The route's request body limit, one check for its three places: a declared
//! `Content-Length` (before reading), each streamed chunk of a proxied body, and a body
//! the gateway reads itself (flows, fallback-only routes). Over it: 413
//! `payload_too_large` with the same message everywhere, counted as
//! `gateway_requests_blocked_total{reason="body_too_large"}`.

use super::Ctx;
use pingora_error::{Error, ErrorType};
use pingora_http::RequestHeader;

/// The blocked-reason label.
pub(super) const REASON: &str = "body_too_large";

/// The error a body-phase plugin answer travels as from the request body filter to
/// `fail_to_proxy`, which writes the answer kept in `Ctx::deferred`. Not a failure: it
/// is not logged as one.
pub(super) const PLUGIN_ANSWERED: ErrorType = ErrorType::Custom("answered by a plugin");

/// Keeps a body-phase decision for `fail_to_proxy` and returns the error that carries
/// it there (nothing more goes upstream).
pub(super) fn answered(ctx: &mut Ctx, d: super::ctx::Deferred) -> Box<Error> {
    ctx.deferred = Some(d);
    let mut e = Error::explain(PLUGIN_ANSWERED, "answered by a plugin");
    e.set_retry(false);
    e
}

/// The message of a 413.
pub(super) fn too_large(max: u64) -> String {
    format!("request body is larger than {max} bytes")
}

/// `Some(message)` when the request declares a body larger than `max`.
pub(super) fn declared_over(req: &RequestHeader, max: u64) -> Option<String> {
    let declared = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    (declared > max).then(|| too_large(max))
}

/// Counts `len` more body bytes; `true` once the body is over `max`. A retry's first
/// piece is pingora's copy of the bytes the failed try got, already counted: it is
/// not counted again (a retried body would otherwise count twice).
pub(super) fn count_over(ctx: &mut Ctx, len: usize, max: u64) -> bool {
    if ctx.body_try != ctx.tries {
        ctx.body_try = ctx.tries;
        if ctx.body_bytes > 0 {
            return false;
        }
    }
    ctx.body_bytes += len as u64;
    ctx.body_bytes > max
}

/// The 413 of a streamed body over `max`, for `fail_to_proxy` to answer.
pub(super) fn streamed_over(max: u64) -> Box<Error> {
    let mut e = Error::explain(ErrorType::HTTPStatus(413), too_large(max));
    e.set_retry(false);
    e
}

/// Errors that are the client's doing or a plugin's answer: answered and counted, not
/// logged as proxy failures.
pub(super) fn quiet(e: &Error) -> bool {
    matches!(e.etype(), ErrorType::HTTPStatus(413)) || *e.etype() == PLUGIN_ANSWERED
}
