//! Header transforms: `headers` edits the request sent upstream and the response sent
//! to the client in one entry; `request_headers` and `response_headers` are the
//! one-sided forms (kept for existing tables).
//!
//! ```yaml
//! - name: headers
//!   request: { set: { x-api-version: "1" }, rename: { x-user: x-consumer }, remove: [x-debug] }
//!   response: { add: { via: gateway }, remove: [server] }
//! - { name: request_headers, set: { x-api-version: "1" }, add: { via: gateway }, remove: [x-debug] }
//! ```
//! Order: `remove`, then `rename`, then `set` (replaces), then `add` (appends).

use crate::{BuildCtx, Factory, Plugin, PluginCtx, SettingsError};
use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Header edits, in this order: `remove`, `rename`, `set` (replaces), `add` (appends).
#[derive(Deserialize, JsonSchema, Default)]
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
    /// Headers renamed (`old: new`), every value kept; absent ones are left alone.
    #[serde(default)]
    rename: BTreeMap<String, String>,
}

/// Compiled header edits.
#[derive(Debug, Default)]
pub struct HeaderOps {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
    rename: Vec<(HeaderName, HeaderName)>,
}

fn name(field: &str, k: &str) -> Result<HeaderName, SettingsError> {
    HeaderName::from_bytes(k.as_bytes())
        .map_err(|_| SettingsError::at(field, format!("`{k}` is not a valid header name")))
}

fn pairs(
    field: &str,
    m: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, SettingsError> {
    m.iter()
        .map(|(k, v)| {
            let at = format!("{field}.{k}");
            Ok((
                name(&at, k)?,
                HeaderValue::from_str(v).map_err(|_| {
                    SettingsError::at(
                        &at,
                        format!("the value of `{k}` is not a valid header value"),
                    )
                })?,
            ))
        })
        .collect()
}

impl HeaderOps {
    /// Compiles edits; option paths start with `prefix` (`request.`, or empty).
    pub fn compile(s: &HeaderSettings, prefix: &str) -> Result<Self, SettingsError> {
        Ok(Self {
            set: pairs(&format!("{prefix}set"), &s.set)?,
            add: pairs(&format!("{prefix}add"), &s.add)?,
            remove: s
                .remove
                .iter()
                .enumerate()
                .map(|(i, k)| name(&format!("{prefix}remove[{i}]"), k))
                .collect::<Result<_, _>>()?,
            rename: s
                .rename
                .iter()
                .map(|(from, to)| {
                    let at = format!("{prefix}rename.{from}");
                    Ok((name(&at, from)?, name(&at, to)?))
                })
                .collect::<Result<_, SettingsError>>()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.add.is_empty()
            && self.remove.is_empty()
            && self.rename.is_empty()
    }

    /// One-sided settings must edit something.
    pub fn from_settings(s: HeaderSettings) -> Result<Self, SettingsError> {
        let ops = Self::compile(&s, "")?;
        if ops.is_empty() {
            return Err(SettingsError::whole(
                "give at least one of `set`, `add`, `remove`, `rename`",
            ));
        }
        Ok(ops)
    }
}

macro_rules! apply_ops {
    ($ops:expr, $h:expr) => {{
        for k in &$ops.remove {
            $h.remove_header(k);
        }
        for (from, to) in &$ops.rename {
            let values: Vec<HeaderValue> = $h.headers.get_all(from).iter().cloned().collect();
            if !values.is_empty() {
                $h.remove_header(from);
                $h.remove_header(to);
                for v in values {
                    // only fails on invalid names, which were checked at build time
                    let _ = $h.append_header(to.clone(), v);
                }
            }
        }
        for (k, v) in &$ops.set {
            let _ = $h.insert_header(k.clone(), v.clone());
        }
        for (k, v) in &$ops.add {
            let _ = $h.append_header(k.clone(), v.clone());
        }
    }};
}

impl HeaderOps {
    pub fn apply_request(&self, h: &mut RequestHeader) {
        apply_ops!(self, h);
    }
    pub fn apply_response(&self, h: &mut ResponseHeader) {
        apply_ops!(self, h);
    }
}

/// Edits the request sent upstream.
pub struct RequestHeaders(pub HeaderOps);

#[async_trait]
impl Plugin for RequestHeaders {
    fn on_upstream_request(&self, req: &mut RequestHeader, _ctx: &mut PluginCtx) {
        self.0.apply_request(req);
    }
}

/// Edits the response sent to the client.
pub struct ResponseHeaders(pub HeaderOps);

#[async_trait]
impl Plugin for ResponseHeaders {
    fn on_response(&self, resp: &mut ResponseHeader, _ctx: &mut PluginCtx) {
        self.0.apply_response(resp);
    }
}

impl Factory for RequestHeaders {
    const NAME: &'static str = "request_headers";
    const SUMMARY: &'static str =
        "Set, append, rename and remove headers of the request sent upstream";
    type Settings = HeaderSettings;
    fn build(s: HeaderSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(RequestHeaders(HeaderOps::from_settings(s)?)))
    }
}

impl Factory for ResponseHeaders {
    const NAME: &'static str = "response_headers";
    const SUMMARY: &'static str =
        "Set, append, rename and remove headers of the response sent to the client";
    type Settings = HeaderSettings;
    fn build(s: HeaderSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(ResponseHeaders(HeaderOps::from_settings(s)?)))
    }
}

/// Request and response edits in one entry.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeadersSettings {
    /// Edits of the request sent upstream.
    #[serde(default)]
    request: HeaderSettings,
    /// Edits of the response sent to the client (also the gateway's own answers).
    #[serde(default)]
    response: HeaderSettings,
}

/// `headers`: both sides.
pub struct Headers {
    request: HeaderOps,
    response: HeaderOps,
}

#[async_trait]
impl Plugin for Headers {
    fn on_upstream_request(&self, req: &mut RequestHeader, _ctx: &mut PluginCtx) {
        self.request.apply_request(req);
    }
    fn on_response(&self, resp: &mut ResponseHeader, _ctx: &mut PluginCtx) {
        self.response.apply_response(resp);
    }
}

impl Factory for Headers {
    const NAME: &'static str = "headers";
    const SUMMARY: &'static str =
        "Add, set, remove and rename headers of the request and of the response";
    type Settings = HeadersSettings;
    fn build(s: HeadersSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        let request = HeaderOps::compile(&s.request, "request.")?;
        let response = HeaderOps::compile(&s.response, "response.")?;
        if request.is_empty() && response.is_empty() {
            return Err(SettingsError::whole("give `request` or `response` edits"));
        }
        Ok(Arc::new(Headers { request, response }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn remove_rename_set_add() {
        let s: HeaderSettings = crate::parse_settings(&serde_json::json!({
            "remove": ["x-debug"],
            "rename": {"x-user": "x-consumer"},
            "set": {"x-v": "1"},
            "add": {"via": "gw"}
        }))
        .unwrap();
        let ops = HeaderOps::from_settings(s).unwrap();
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        r.append_header("x-debug", "1").unwrap();
        r.append_header("x-user", "a").unwrap();
        r.append_header("x-user", "b").unwrap();
        r.append_header("via", "proxy").unwrap();
        ops.apply_request(&mut r);
        assert!(r.headers.get("x-debug").is_none());
        assert!(r.headers.get("x-user").is_none());
        let c: Vec<_> = r.headers.get_all("x-consumer").iter().collect();
        assert_eq!(c, ["a", "b"]);
        assert_eq!(r.headers["x-v"], "1");
        assert_eq!(r.headers.get_all("via").iter().count(), 2);

        let e = HeaderOps::compile(
            &crate::parse_settings(&serde_json::json!({"rename": {"ok": "bad name"}})).unwrap(),
            "request.",
        )
        .err()
        .unwrap();
        assert_eq!(e.path, "request.rename.ok");
    }
}
