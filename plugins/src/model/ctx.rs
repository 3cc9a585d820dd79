//! Per-request state shared by a route's plugins.

use super::{Identity, Reply};
use http::{HeaderName, HeaderValue};
use std::any::Any;

/// State shared by a route's plugins for one request.
#[derive(Default)]
pub struct PluginCtx {
    /// The authenticated identity, once an auth plugin has found one.
    pub identity: Option<Identity>,
    /// The request's id (`X-Request-Id`, the client's when valid, else the gateway's).
    pub request_id: Option<http::HeaderValue>,
    /// When the gateway began reading the request (set by the gateway).
    pub started: Option<std::time::Instant>,
    /// The upstream target of the request's latest try, once the gateway picked one.
    pub upstream: Option<std::net::SocketAddr>,
    /// The body bytes read from the client and sent to it, set by the gateway before
    /// the log phase ([`crate::Plugin::on_log`]); `None` before.
    pub body_bytes: Option<BodyBytes>,
    /// Headers added to the response whatever it is (proxied, or written by the
    /// gateway: an error, a plugin reply, a fallback), e.g. rate-limit headers.
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// Per-request values one plugin publishes for others, by type (one per type: a
    /// plugin's own state goes in [`PluginCtx::own`], where two entries of one plugin on
    /// a route each keep theirs).
    pub extensions: http::Extensions,
    /// An answer a plugin's response phase gives instead of the one under way (the
    /// upstream's, or one the gateway writes itself): the gateway sends its head and
    /// body in place of that answer's, which it drops (see [`crate::Plugin::on_response`]).
    /// Set from the response-body phase, once part of the answer has gone, the gateway
    /// ends the stream instead.
    pub replacement: Option<Box<Reply>>,
    /// Each plugin's own value for this request (Kong's `kong.ctx.plugin`):
    /// [`PluginCtx::own`].
    pub own: OwnValues,
}

/// A request's body sizes on the client's side ([`PluginCtx::body_bytes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodyBytes {
    /// Request body bytes read from the client.
    pub read: u64,
    /// Response body bytes sent to the client.
    pub sent: u64,
}

/// The plugins' own values of a request, by their place in the chain.
#[derive(Default)]
pub struct OwnValues {
    /// Inline for the first few places: most chains are short, so setting a value
    /// allocates only its box.
    values: smallvec::SmallVec<[Option<Box<dyn Any + Send + Sync>>; 4]>,
    /// The place in the chain of the plugin whose phase runs now.
    at: usize,
}

impl std::fmt::Debug for PluginCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginCtx")
            .field("identity", &self.identity)
            .field("response_headers", &self.response_headers.len())
            .finish_non_exhaustive()
    }
}

impl PluginCtx {
    /// The consumer name for logs (`user_id`), or `None` when anonymous.
    pub fn consumer(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| i.consumer.as_str())
    }

    /// Tells the context which plugin of the chain runs next (its place in the route's
    /// list). The gateway calls it before each plugin phase; plugins never need to.
    pub fn enter(&mut self, place: usize) {
        self.own.at = place;
    }

    /// This plugin's own value for this request (one per plugin entry: two entries of
    /// one plugin on a route have one each; dropped when the request ends), when it
    /// set one of type `T` with [`PluginCtx::set_own`]. Cheaper than `extensions` (no
    /// map, no `Clone`, no lock) for state a plugin keeps from phase to phase.
    pub fn own<T: Any + Send + Sync>(&mut self) -> Option<&mut T> {
        let o = &mut self.own;
        o.values.get_mut(o.at)?.as_mut()?.downcast_mut()
    }

    /// Sets this plugin's own value for this request (replacing any).
    pub fn set_own<T: Any + Send + Sync>(&mut self, value: T) {
        let o = &mut self.own;
        if o.values.len() <= o.at {
            o.values.resize_with(o.at + 1, || None);
        }
        if let Some(slot) = o.values.get_mut(o.at) {
            *slot = Some(Box::new(value));
        }
    }

    /// Takes this plugin's own value of type `T` out.
    pub fn take_own<T: Any + Send + Sync>(&mut self) -> Option<T> {
        let o = &mut self.own;
        let slot = o.values.get_mut(o.at)?;
        if !slot.as_ref()?.is::<T>() {
            return None;
        }
        slot.take()?.downcast().ok().map(|b| *b)
    }

    /// Adds a header to whatever response this request gets.
    pub fn add_response_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.response_headers.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::PluginCtx;

    #[test]
    fn each_place_in_the_chain_has_its_own_value() {
        let mut ctx = PluginCtx::default();
        ctx.enter(2);
        assert!(ctx.own::<u32>().is_none());
        ctx.set_own(7u32);
        ctx.enter(0);
        assert!(
            ctx.own::<u32>().is_none(),
            "another plugin's value is not ours"
        );
        ctx.set_own(String::from("zero"));
        ctx.enter(2);
        *ctx.own::<u32>().expect("set at 2") += 1;
        assert!(
            ctx.own::<String>().is_none(),
            "a value of another type is not found"
        );
        assert_eq!(ctx.take_own::<String>(), None);
        assert_eq!(ctx.take_own::<u32>(), Some(8));
        assert_eq!(ctx.take_own::<u32>(), None, "taken");
        ctx.enter(0);
        assert_eq!(ctx.own::<String>().map(|s| s.as_str()), Some("zero"));
    }
}
