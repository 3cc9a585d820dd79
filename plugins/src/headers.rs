//! `request_headers` and `response_headers`: set, append and remove headers.
//!
//! ```yaml
//! - { name: request_headers, set: { x-api-version: "1" }, add: { via: gateway }, remove: [x-debug] }
//! ```
//! `remove` runs first, then `set` (replaces), then `add` (appends).

use crate::{BuildCtx, Factory, Plugin, PluginCtx, SettingsError};
use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Header edits: `remove` runs first, then `set` (replaces), then `add` (appends).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderSettings {
    /// Headers set, replacing any value.
    #[serde(default)]
    set: BTreeMap<String, String>,
    /// Headers appended.
    #[serde(default)]
    add: BTreeMap<String, String>,
    /// Headers removed.
    #[serde(default)]
    remove: Vec<String>,
}

/// Compiled header edits.
#[derive(Debug, Default)]
pub struct HeaderOps {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

fn pair(k: &str, v: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(k.as_bytes())
        .map_err(|_| format!("`{k}` is not a valid header name"))?;
    let value = HeaderValue::from_str(v)
        .map_err(|_| format!("the value of `{k}` is not a valid header value"))?;
    Ok((name, value))
}

impl HeaderOps {
    pub fn from_settings(s: HeaderSettings) -> Result<Self, String> {
        if s.set.is_empty() && s.add.is_empty() && s.remove.is_empty() {
            return Err("give at least one of `set`, `add`, `remove`".into());
        }
        Ok(Self {
            set: s
                .set
                .iter()
                .map(|(k, v)| pair(k, v))
                .collect::<Result<_, _>>()?,
            add: s
                .add
                .iter()
                .map(|(k, v)| pair(k, v))
                .collect::<Result<_, _>>()?,
            remove: s
                .remove
                .iter()
                .map(|k| {
                    HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("`{k}` is not a valid header name"))
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

macro_rules! apply_ops {
    ($ops:expr, $h:expr) => {{
        for k in &$ops.remove {
            $h.remove_header(k);
        }
        for (k, v) in &$ops.set {
            // only fails on invalid names, which were checked at build time
            let _ = $h.insert_header(k.clone(), v.clone());
        }
        for (k, v) in &$ops.add {
            let _ = $h.append_header(k.clone(), v.clone());
        }
    }};
}

/// Edits the request sent upstream.
pub struct RequestHeaders(pub HeaderOps);

#[async_trait]
impl Plugin for RequestHeaders {
    fn name(&self) -> &'static str {
        "request_headers"
    }
    fn on_upstream_request(&self, req: &mut RequestHeader, _ctx: &mut PluginCtx) {
        apply_ops!(self.0, req);
    }
}

/// Edits the response sent to the client.
pub struct ResponseHeaders(pub HeaderOps);

#[async_trait]
impl Plugin for ResponseHeaders {
    fn name(&self) -> &'static str {
        "response_headers"
    }
    fn on_response(&self, resp: &mut ResponseHeader, _ctx: &mut PluginCtx) {
        apply_ops!(self.0, resp);
    }
}

impl Factory for RequestHeaders {
    const NAME: &'static str = "request_headers";
    const SUMMARY: &'static str = "Set, append and remove headers of the request sent upstream";
    type Settings = HeaderSettings;
    fn build(s: HeaderSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(RequestHeaders(
            HeaderOps::from_settings(s).map_err(SettingsError::whole)?,
        )))
    }
}

impl Factory for ResponseHeaders {
    const NAME: &'static str = "response_headers";
    const SUMMARY: &'static str =
        "Set, append and remove headers of the response sent to the client";
    type Settings = HeaderSettings;
    fn build(s: HeaderSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(ResponseHeaders(
            HeaderOps::from_settings(s).map_err(SettingsError::whole)?,
        )))
    }
}
