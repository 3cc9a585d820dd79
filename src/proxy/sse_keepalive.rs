//! SSE keep-alive comments on proxied streams (the route's `sse_keepalive`). A 2xx
//! `text/event-stream` answer without a `Content-Length` is followed from its head:
//! each upstream chunk moves where the stream stands (between two events, or inside
//! one); when the upstream has been silent for the interval, pingora's idle timer
//! (vendor patch 0011, `ProxyHttp::upstream_idle_body`) asks for bytes, and a
//! `: keep-alive` comment is sent only if the stream stands between two events, through
//! the route's response-body plugins (so `compress` compresses it as it does an event).
//! The timer runs beside the upstream's reads: a keep-alive is not upstream activity,
//! and `stream_idle_timeout` still ends an upstream silent that long.

use super::Ctx;
use crate::flows::sse::KEEP_ALIVE;
use crate::runtime::CompiledRoute;
use bytes::Bytes;
use pingora_http::ResponseHeader;
use std::time::Duration;

/// A proxied event stream that gets keep-alives.
#[derive(Debug)]
pub struct SseKeepalive {
    /// The route's `sse_keepalive`.
    pub every: Duration,
    /// The stream's last (up to) three bytes, to tell whether an event just ended.
    tail: [u8; 3],
    tail_len: u8,
}

/// Whether `resp` is an event stream that `route` sends keep-alives on.
pub fn start(resp: &ResponseHeader, route: &CompiledRoute) -> Option<SseKeepalive> {
    let every = route.sse_keepalive?;
    let h = &resp.headers;
    let is_events = h
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..17)
                .is_some_and(|t| t.eq_ignore_ascii_case("text/event-stream"))
        });
    if !resp.status.is_success() || !is_events || h.contains_key(http::header::CONTENT_LENGTH) {
        return None;
    }
    Some(SseKeepalive {
        every,
        tail: [0; 3],
        tail_len: 0,
    })
}

impl SseKeepalive {
    /// Notes an upstream body chunk (as the upstream sent it).
    pub fn saw(&mut self, chunk: &[u8]) {
        for &b in chunk.iter().rev().take(3).rev() {
            if self.tail_len < 3 {
                self.tail[self.tail_len as usize] = b;
                self.tail_len += 1;
            } else {
                self.tail.rotate_left(1);
                self.tail[2] = b;
            }
        }
    }

    /// The stream stands between two events (or before the first): the last line
    /// ended was blank (line ends: `\n`, `\r\n`, `\r`).
    pub fn between_events(&self) -> bool {
        ends_event(&self.tail[..self.tail_len as usize]) || self.tail_len == 0
    }

    /// The keep-alive to send now, if the stream stands between two events.
    pub fn comment(&self) -> Option<Bytes> {
        self.between_events()
            .then(|| Bytes::from_static(KEEP_ALIVE))
    }
}

/// The keep-alive to write now (none inside an event), through the route's
/// response-body plugins (`Err`: one of them replaced the answer, too late).
pub fn due(ctx: &mut Ctx) -> Result<Option<Bytes>, Box<gateway_plugins::Reply>> {
    let Some(mut body) = ctx.sse.as_ref().and_then(|k| k.comment()).map(Some) else {
        return Ok(None);
    };
    super::answer::response_body_phase(ctx, &mut body, false)?;
    Ok(body.filter(|b| !b.is_empty()))
}

/// `tail` ends with a blank line: a line end right after another one.
fn ends_event(tail: &[u8]) -> bool {
    matches!(
        tail,
        [.., b'\n', b'\n'] | [.., b'\n' | b'\r', b'\r', b'\n'] | [.., b'\n' | b'\r', b'\r']
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(chunks: &[&[u8]]) -> bool {
        let mut k = SseKeepalive {
            every: Duration::from_secs(1),
            tail: [0; 3],
            tail_len: 0,
        };
        for c in chunks {
            k.saw(c);
        }
        k.between_events()
    }

    #[test]
    fn a_comment_goes_only_between_two_events() {
        assert!(fed(&[]));
        assert!(fed(&[b"data: a\n\n"]));
        assert!(fed(&[b"data: a\n", b"\n"]));
        assert!(fed(&[b"data: a\r\n\r\n"]));
        assert!(fed(&[b"data: a\r\n\r", b"\n"]));
        assert!(fed(&[b"data: a\r\r"]));
        assert!(fed(&[b"data: a\n", b"", b"\n"]));
        assert!(!fed(&[b"data: a\n"]));
        assert!(!fed(&[b"data: a\r\n"]));
        assert!(!fed(&[b"data: a\n\ndata: b"]));
        assert!(!fed(&[b"data: a\n\n", b"event: x\n"]));
        assert!(!fed(&[b"data: a\n\n", b"d"]));
    }
}
