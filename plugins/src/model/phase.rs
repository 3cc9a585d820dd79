//! The [`Plugin`] trait: the phases a plugin can take part in, in request order.

use super::{
    BodyCall, ChunkCall, Decision, Identity, PluginCtx, Reply, RequestCall, Stage, UpstreamRef,
};
use async_trait::async_trait;
use bytes::Bytes;
use pingora_http::{RequestHeader, ResponseHeader};
use std::future::Future;
use std::pin::Pin;

/// Whether the request goes on.
#[derive(Debug)]
pub enum Flow {
    /// Go on with the next plugin, then the upstream.
    Continue,
    /// Answer with this instead; later plugins and the upstream are skipped.
    Respond(Reply),
}

/// A request phase's answer ([`Plugin::request_step`]): decided at once, or once a
/// future resolves (the plugin waits on a dependency).
pub enum Step<'a> {
    /// Decided without waiting.
    Now(Decision),
    /// Decided when this resolves.
    Later(Pin<Box<dyn Future<Output = Decision> + Send + 'a>>),
}

/// A phase that waits before it goes on ([`Plugin::response_step`]).
pub type Waiting<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The future of [`Step::decision`]: ready at its first poll for [`Step::Now`].
pub type Decided<'a> = futures::future::Either<
    std::future::Ready<Decision>,
    Pin<Box<dyn Future<Output = Decision> + Send + 'a>>,
>;

impl<'a> Step<'a> {
    /// The decision: at once, or awaited. A plain future rather than an `async fn`, so
    /// that a `Now` step costs the caller no state machine of its own.
    pub fn decision(self) -> Decided<'a> {
        match self {
            Step::Now(d) => futures::future::Either::Left(std::future::ready(d)),
            Step::Later(f) => futures::future::Either::Right(f),
        }
    }
}

/// A plugin instance: built once per route table from its settings, shared by every
/// request of its routes. Long-lived state (clients, caches, counters) does not live
/// in the instance but in [`crate::Shared`], so that it outlives reloads.
///
/// Phases, in request order (each optional):
/// 1. [`Plugin::on_request`]: check or change the request ([`RequestCall`]); may answer
///    (401, 403, 429, a preflight...) or fail with a typed [`crate::PluginFailure`] (a
///    dependency is down).
/// 2. [`Plugin::on_request_body`]: the whole request body ([`BodyCall`]), only for
///    plugins whose [`Plugin::wants_body`] is true; other routes keep streaming. Or
///    [`Plugin::on_request_chunk`]: each piece of the body as it arrives
///    ([`ChunkCall`]), for plugins whose [`Plugin::wants_request_chunks`] is true.
/// 3. [`Plugin::on_upstream_request`]: edit what goes upstream.
/// 4. [`Plugin::on_response`]: edit the response head that goes to the client. It also
///    runs for every answer the gateway writes itself (errors, plugin replies,
///    fallbacks), so CORS and rate-limit headers appear on those too. A plugin may
///    answer instead ([`PluginCtx::replacement`]): the head goes through this phase
///    again as the gateway's own answer would, and the body it replaces is dropped.
/// 5. [`Plugin::on_response_body`]: each chunk of a proxied answer, streaming, only for
///    plugins whose [`Plugin::wants_response_body`] is true (compression, transforms).
/// 6. [`Plugin::on_log`]: the request is over (status as sent).
#[async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// The request phase of a plugin that decides without waiting: `Some(decision)`.
    /// `None` (the default): the plugin decides in [`Plugin::on_request`]. A plugin
    /// that never waits overrides this one alone; both the chain and `on_request` use
    /// it, so it costs no future per request.
    fn request_now(&self, _call: &mut RequestCall<'_>) -> Option<Decision> {
        None
    }

    /// Request phase. The default is [`Plugin::request_now`]'s decision, or `Continue`.
    async fn on_request(&self, call: &mut RequestCall<'_>) -> Decision {
        self.request_now(call).unwrap_or(Ok(Flow::Continue))
    }

    /// The request phase as the chain runs it: [`Plugin::request_now`]'s decision at
    /// once, else [`Plugin::on_request`] awaited (a boxed future per request). A plugin
    /// that usually decides at once but sometimes waits (its `on_request` doing the same
    /// as this, so the two never disagree) may override it to answer [`Step::Now`] or
    /// [`Step::Later`] itself.
    fn request_step<'a>(&'a self, call: &'a mut RequestCall<'_>) -> Step<'a> {
        match self.request_now(call) {
            Some(d) => Step::Now(d),
            None => Step::Later(self.on_request(call)),
        }
    }

    /// Whether this plugin answers CORS preflights (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`): the gateway then runs it first for a
    /// preflight, before any plugin that would ask for credentials a browser never
    /// sends on one, and routes a preflight for a method-restricted route to it.
    fn answers_preflight(&self) -> bool {
        false
    }

    /// Whether this plugin authenticates: on success it sets [`PluginCtx::identity`].
    fn sets_identity(&self) -> bool {
        false
    }

    /// Whether this plugin works on the identity an earlier plugin set (`rbac`,
    /// `token`): the gateway refuses a chain where no plugin before it sets one.
    fn needs_identity(&self) -> bool {
        false
    }

    /// The pools of routes.yaml this plugin calls ([`crate::UpstreamCalls`]), each with
    /// the option that names it: the gateway refuses a table where one is not defined,
    /// at that option's line (`check` too).
    fn upstreams(&self) -> Vec<UpstreamRef> {
        Vec::new()
    }

    /// Where this plugin belongs in a chain (Kong's `PRIORITY`, pingora's
    /// `HttpModule::order`): the chain runs as listed, and the gateway refuses an order
    /// that opens a hole (a [`Stage::Serve`] plugin before one that guards access).
    /// Default: `Authenticate` for a plugin that sets the identity, `Authorize` for one
    /// that needs it, else `Transform`.
    fn stage(&self) -> Stage {
        if self.sets_identity() {
            Stage::Authenticate
        } else if self.needs_identity() {
            Stage::Authorize
        } else {
            Stage::Transform
        }
    }

    /// Whether this plugin reads the whole request body (the gateway then buffers it,
    /// bounded by the route's body limit).
    fn wants_body(&self) -> bool {
        false
    }

    /// The largest request body this plugin lets the route take (`body_limit`): the
    /// route's limit becomes the smallest of its `max_body_size` and these, and the
    /// gateway enforces it from `Content-Length` and while streaming (413).
    fn body_limit(&self) -> Option<u64> {
        None
    }

    /// Request body phase: the whole body, before any of it goes upstream.
    async fn on_request_body(&self, _call: &mut BodyCall<'_>) -> Decision {
        Ok(Flow::Continue)
    }

    /// Whether this plugin reads (or rewrites) the request body as it streams: the
    /// gateway then calls [`Plugin::on_request_chunk`] for each piece of it, and
    /// buffers nothing for it (a route that also has a [`Plugin::wants_body`] plugin
    /// gives it the whole body as one piece, in chain order).
    fn wants_request_chunks(&self) -> bool {
        false
    }

    /// Streaming request body phase: each piece of the body as it arrives from the
    /// client (`end_of_stream` on the last), before it goes upstream. The plugin may
    /// replace the piece, or hold bytes back for a later call (what it holds counts
    /// toward the route's body limit: the gateway counts what the client sent); it
    /// sets [`ChunkCall::rewritten`] when it changed bytes. One that changes the
    /// body's length removes `Content-Length` in [`Plugin::on_request`] (the body
    /// then goes upstream chunked): the head goes upstream before the body, and the
    /// gateway answers 500 rather than send a body that does not match it. It may
    /// answer ([`Flow::Respond`]) or fail: what it held goes nowhere, the upstream
    /// connection is closed before the request is complete, and the client gets the
    /// answer (unless the upstream's has begun).
    async fn on_request_chunk(&self, _call: &mut ChunkCall<'_>) -> Decision {
        Ok(Flow::Continue)
    }

    /// Upstream request phase.
    fn on_upstream_request(&self, _req: &mut RequestHeader, _ctx: &mut PluginCtx) {}

    /// Response phase (proxied answers and the gateway's own).
    fn on_response(&self, _resp: &mut ResponseHeader, _ctx: &mut PluginCtx) {}

    /// The response phase as the gateway runs it: [`Plugin::on_response`], unless the
    /// plugin must wait for something before the head goes on (a wasm filter's calls
    /// after a `Pause`): then the future to await, which may still edit the head or
    /// set [`PluginCtx::replacement`]. Only a plugin that waits overrides it.
    fn response_step<'a>(
        &'a self,
        resp: &'a mut ResponseHeader,
        ctx: &'a mut PluginCtx,
    ) -> Option<Waiting<'a>> {
        self.on_response(resp, ctx);
        None
    }

    /// Whether this plugin reads or rewrites proxied response bodies: only then does the
    /// gateway call [`Plugin::on_response_body`] for the route's answers.
    fn wants_response_body(&self) -> bool {
        false
    }

    /// Response body phase: each chunk of a proxied answer as it streams to the client
    /// (`end_of_stream` on the last; `body` may be `None` then). A plugin may replace
    /// the chunk (compress, transform) or hold bytes back for a later one; one that
    /// changes the length removes `Content-Length` in [`Plugin::on_response`]. Chunks
    /// are never buffered by the gateway for it.
    fn on_response_body(
        &self,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        _ctx: &mut PluginCtx,
    ) {
    }

    /// Logging phase: the request is over.
    fn on_log(&self, _status: u16, _ctx: &mut PluginCtx) {}
}

impl PluginCtx {
    /// The authenticated identity, once an auth plugin has found one.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RequestInfo;

    /// A plugin with only `on_request`, as most are.
    struct Deny;

    #[async_trait]
    impl Plugin for Deny {
        async fn on_request(&self, _call: &mut RequestCall<'_>) -> Decision {
            Ok(Flow::Respond(Reply::error(403, "forbidden", "no")))
        }
    }

    #[tokio::test]
    async fn the_default_step_is_on_request_awaited() {
        let mut req = RequestHeader::build("GET", b"/a", None).expect("head");
        let mut ctx = PluginCtx::default();
        let mut call = RequestCall::new(&mut req, RequestInfo::new("r", "/a"), &mut ctx);
        let Step::Later(f) = Deny.request_step(&mut call) else {
            panic!("the default step awaits on_request");
        };
        assert!(matches!(f.await, Ok(Flow::Respond(r)) if r.status == 403));
    }

    /// A plugin that never waits: `request_now` alone.
    struct DenyNow;

    impl Plugin for DenyNow {
        fn request_now(&self, _call: &mut RequestCall<'_>) -> Option<Decision> {
            Some(Ok(Flow::Respond(Reply::error(403, "forbidden", "no"))))
        }
    }

    #[tokio::test]
    async fn request_now_is_the_step_and_on_request_alike() {
        let mut req = RequestHeader::build("GET", b"/a", None).expect("head");
        let mut ctx = PluginCtx::default();
        let mut call = RequestCall::new(&mut req, RequestInfo::new("r", "/a"), &mut ctx);
        let Step::Now(d) = DenyNow.request_step(&mut call) else {
            panic!("a request_now decision is taken at once");
        };
        assert!(matches!(d, Ok(Flow::Respond(r)) if r.status == 403));
        let d = DenyNow.on_request(&mut call).await;
        assert!(matches!(d, Ok(Flow::Respond(r)) if r.status == 403));
    }
}
