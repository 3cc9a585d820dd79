//! Writing a streamed flow answer (`text/event-stream`): the head goes through the
//! response phase like any answer, each event through the plugins' response-body
//! phase (so `compress` and `token_limit` see it as they see a proxied stream) and is
//! written at once; an error after the head is an `event: error` with the JSON error.

use super::{Ctx, GatewayProxy};
use crate::flows::sse::{self, EventSink, Gone};
use crate::flows::FlowAnswer;
use bytes::Bytes;
use http::HeaderValue;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// A [`EventSink`] on the client's session.
pub(super) struct SessionSink<'a> {
    pub session: &'a mut Session,
    pub ctx: &'a mut Ctx,
    pub proxy: &'a GatewayProxy,
}

impl SessionSink<'_> {
    async fn write(&mut self, chunk: Bytes) -> Result<(), Gone> {
        let mut body = Some(chunk);
        if super::answer::response_body_phase(self.ctx, &mut body, false).is_err() {
            // a plugin ended the stream: the connection closes without the end
            self.session.set_keepalive(None);
            return Err(Gone);
        }
        let Some(b) = body.filter(|b| !b.is_empty()) else {
            return Ok(());
        };
        if self.ctx.first_byte.is_none() {
            self.ctx.first_byte = Some(self.ctx.start.elapsed());
        }
        self.session
            .write_response_body(Some(b), false)
            .await
            .map_err(|_| Gone)
    }

    /// Ends the body (the plugins' last call, then the end of the chunked body).
    pub async fn finish(&mut self) {
        let mut body = None;
        if super::answer::response_body_phase(self.ctx, &mut body, true).is_err() {
            self.session.set_keepalive(None);
            return;
        }
        let _ = self.session.write_response_body(body, true).await;
    }
}

#[async_trait::async_trait]
impl EventSink for SessionSink<'_> {
    async fn open(&mut self) -> Result<(), Gone> {
        let mut resp = ResponseHeader::build(200, Some(4)).map_err(|_| Gone)?;
        let _ = resp.insert_header(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        let _ = resp.insert_header(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        let replaced = super::answer::response_phase(&mut resp, self.ctx).await;
        self.ctx.answered = Some(resp.status.as_u16());
        if let Some(r) = replaced {
            // a plugin answered instead: its answer, and the stream is not sent
            self.ctx.replaced = true;
            let _ = super::respond::write(self.session, resp, r.body).await;
            return Err(Gone);
        }
        self.session
            .write_response_header(Box::new(resp), false)
            .await
            .map_err(|_| Gone)
    }

    async fn event(&mut self, event: Bytes) -> Result<(), Gone> {
        self.write(event).await
    }

    fn keepalive(&self) -> Option<std::time::Duration> {
        self.ctx.route.as_ref().and_then(|r| r.sse_keepalive)
    }

    async fn fail(&mut self, a: FlowAnswer) -> Result<(), Gone> {
        let data = self.proxy.flow_body(self.ctx, &a);
        let text = String::from_utf8_lossy(&data);
        self.write(sse::event(Some("error"), &text)).await
    }
}
