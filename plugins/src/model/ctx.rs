//! Per-request state shared by a route's plugins.

use super::{Identity, Reply};
use http::{HeaderName, HeaderValue};

/// State shared by a route's plugins for one request.
#[derive(Default)]
pub struct PluginCtx {
    /// The authenticated identity, once an auth plugin has found one.
    pub identity: Option<Identity>,
    /// The request's id (`X-Request-Id`, the client's when valid, else the gateway's).
    pub request_id: Option<http::HeaderValue>,
    /// Headers added to the response whatever it is (proxied, or written by the
    /// gateway: an error, a plugin reply, a fallback), e.g. rate-limit headers.
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// Per-request values of individual plugins, by type (a concurrency permit held
    /// until the request ends, a CORS origin to echo...).
    pub extensions: http::Extensions,
    /// An answer a plugin's response phase gives instead of the one under way (the
    /// upstream's, or one the gateway writes itself): the gateway sends its head and
    /// body in place of that answer's, which it drops (see [`crate::Plugin::on_response`]).
    /// Set from the response-body phase, once part of the answer has gone, the gateway
    /// ends the stream instead.
    pub replacement: Option<Box<Reply>>,
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

    /// Adds a header to whatever response this request gets.
    pub fn add_response_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.response_headers.push((name, value));
    }
}
