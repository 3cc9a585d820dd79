//! The gateway's plugins: the [`Plugin`] trait with its phases, and every built-in
//! plugin, each configured per route in routes.yaml by `name` plus its own fields.
//!
//! Phases, in request order: [`Plugin::on_request`] (may answer and stop the chain),
//! [`Plugin::on_upstream_request`] (edit what goes upstream), [`Plugin::on_response`]
//! (edit what goes back). A plugin that answers in the request phase stops the later
//! plugins' request phases, and the gateway sends that answer as it is: the upstream
//! and response phases only run for proxied requests.

mod headers;
mod ip_restriction;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use serde::de::DeserializeOwned;
use std::net::IpAddr;
use std::sync::Arc;

pub use headers::{HeaderOps, RequestHeaders, ResponseHeaders};
pub use ip_restriction::IpRestriction;

/// What the gateway tells plugins about a request besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The matched route's name.
    pub route: &'a str,
    /// The TCP peer's address.
    pub client_ip: Option<IpAddr>,
    /// The normalised path.
    pub path: &'a str,
}

/// State shared by a route's plugins for one request.
#[derive(Debug, Default)]
pub struct PluginCtx {
    /// The authenticated consumer, once an auth plugin has found one.
    pub consumer: Option<String>,
}

/// A response a plugin gives instead of proxying.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: ReplyBody,
}

/// The body of a [`Reply`].
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// The gateway's JSON error (`{"error": kind, "message", "request_id"}`).
    Error { kind: &'static str, message: String },
    /// Bytes as they are.
    Raw(Bytes),
}

impl Reply {
    pub fn error(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Error {
                kind,
                message: message.into(),
            },
        }
    }
}

/// Whether the request goes on.
#[derive(Debug)]
pub enum Flow {
    Continue,
    Respond(Reply),
}

/// A plugin instance: built once per route table from its settings, shared by every
/// request of its route.
#[async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// The name used in routes.yaml.
    fn name(&self) -> &'static str;

    /// Request phase: check or change the client's request; may answer instead.
    async fn on_request(
        &self,
        _req: &mut RequestHeader,
        _info: &RequestInfo<'_>,
        _ctx: &mut PluginCtx,
    ) -> Flow {
        Flow::Continue
    }

    /// Edit the request that goes upstream.
    fn on_upstream_request(&self, _req: &mut RequestHeader, _ctx: &mut PluginCtx) {}

    /// Edit the response headers that go to the client.
    fn on_response(&self, _resp: &mut ResponseHeader, _ctx: &mut PluginCtx) {}
}

/// A plugin's settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("unknown plugin `{0}` (built-in: {known})", known = BUILT_IN.join(", "))]
    Unknown(String),
    #[error("plugin `{name}`: {message}")]
    Settings { name: String, message: String },
}

/// Names of the built-in plugins.
pub const BUILT_IN: &[&str] = &["request_headers", "response_headers", "ip_restriction"];

/// Builds a plugin from its name and settings (the route entry minus `name`).
pub fn build(
    name: &str,
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Result<Arc<dyn Plugin>, PluginError> {
    Ok(match name {
        "request_headers" => Arc::new(RequestHeaders(
            HeaderOps::from_settings(parse_settings(name, settings)?).map_err(|m| bad(name, m))?,
        )),
        "response_headers" => Arc::new(ResponseHeaders(
            HeaderOps::from_settings(parse_settings(name, settings)?).map_err(|m| bad(name, m))?,
        )),
        "ip_restriction" => {
            Arc::new(IpRestriction::new(parse_settings(name, settings)?).map_err(|m| bad(name, m))?)
        }
        other => return Err(PluginError::Unknown(other.to_string())),
    })
}

/// Checks a plugin's name and settings without keeping the result.
pub fn validate(
    name: &str,
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), PluginError> {
    build(name, settings).map(drop)
}

fn parse_settings<T: DeserializeOwned>(
    name: &str,
    s: &serde_json::Map<String, serde_json::Value>,
) -> Result<T, PluginError> {
    serde_json::from_value(serde_json::Value::Object(s.clone()))
        .map_err(|e| bad(name, e.to_string()))
}

fn bad(name: &str, message: impl Into<String>) -> PluginError {
    PluginError::Settings {
        name: name.to_string(),
        message: message.into(),
    }
}
