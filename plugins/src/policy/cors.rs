//! `cors`: cross-origin requests. A preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) from an allowed origin is answered by the gateway
//! (204); answers to allowed origins carry `Access-Control-Allow-Origin` (and the
//! credentials and expose headers), on proxied answers and the gateway's own errors
//! alike; every answer of the route says `Vary: Origin`. Put `cors` before plugins
//! that may refuse (auth, limits) so that their answers carry the headers too.
//!
//! ```yaml
//! - { name: cors, allow_origins: ["https://app.example.com", "https://*.example.org"], allow_credentials: true, max_age: 10m }
//! ```

use super::units::Period;
use crate::{
    BuildCtx, Decision, Factory, Flow, Plugin, PluginCtx, Reply, RequestCall, SettingsError,
};
use async_trait::async_trait;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderValue, Method};
use pingora_http::ResponseHeader;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}

fn default_max_age() -> Period {
    Period(Duration::from_secs(600))
}

/// CORS settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Allowed origins: exact (`https://app.example.com`), a suffix
    /// (`https://*.example.com`, `*.example.com` for any scheme), or `*` for any.
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for (default GET, HEAD, POST, PUT, PATCH, DELETE).
    #[serde(default = "default_methods")]
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for (default: whatever it asks).
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers the browser lets scripts read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Whether cookies and credentials may be sent (the origin is then echoed, never `*`).
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight answer (default `10m`).
    #[serde(default = "default_max_age")]
    pub max_age: Period,
}

/// An `allow_origins` entry that is refused (lower-cased as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum OriginError {
    #[error("`{0}`: a suffix looks like `https://*.example.com`")]
    BadSuffix(String),
    #[error(
        "`{0}`: an origin looks like `https://app.example.com` (or `https://*.example.com`, `*`)"
    )]
    BadOrigin(String),
}

/// One allowed-origin entry.
#[derive(Debug, Clone)]
enum OriginRule {
    Any,
    Exact(String),
    /// `scheme` (when given) and a host ending with `.suffix`.
    Suffix {
        scheme: Option<String>,
        suffix: String,
    },
}

impl OriginRule {
    fn parse(s: &str) -> Result<Self, OriginError> {
        let s = s.trim().to_ascii_lowercase();
        if s == "*" {
            return Ok(Self::Any);
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((sc, rest)) => (Some(sc.to_string()), rest.to_string()),
            None => (None, s.clone()),
        };
        if let Some(suffix) = rest.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') || suffix.contains('/') {
                return Err(OriginError::BadSuffix(s));
            }
            return Ok(Self::Suffix {
                scheme,
                suffix: suffix.to_string(),
            });
        }
        if scheme.is_none() || rest.is_empty() || rest.contains('*') || rest.contains('/') {
            return Err(OriginError::BadOrigin(s));
        }
        Ok(Self::Exact(s))
    }

    fn matches(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(o) => o == origin,
            Self::Suffix { scheme, suffix } => {
                let Some((sc, hostport)) = origin.split_once("://") else {
                    return false;
                };
                if scheme.as_deref().is_some_and(|s| s != sc) {
                    return false;
                }
                let host = if suffix.contains(':') {
                    hostport
                } else {
                    hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
                };
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }
}

/// The `Access-Control-Allow-Origin` value for this request (kept until the response;
/// the entry's own value: with two `cors` entries on a route, a global one and the
/// route's, each decorates answers by its own decision and settings).
struct Allowed(HeaderValue);

pub struct Cors {
    origins: Vec<OriginRule>,
    methods: Vec<Method>,
    methods_value: HeaderValue,
    headers_value: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
}

fn joined(field: &str, list: &[String]) -> Result<Option<HeaderValue>, SettingsError> {
    if list.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&list.join(", "))
        .map(Some)
        .map_err(|_| SettingsError::at(field, "not valid in a header"))
}

impl Cors {
    pub fn new(s: CorsSettings) -> Result<Self, SettingsError> {
        if s.allow_origins.is_empty() {
            return Err(SettingsError::at(
                "allow_origins",
                "give at least one origin",
            ));
        }
        let origins = s
            .allow_origins
            .iter()
            .enumerate()
            .map(|(i, o)| {
                OriginRule::parse(o)
                    .map_err(|e| SettingsError::at(format!("allow_origins[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let methods = s
            .allow_methods
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| {
                    SettingsError::at(
                        format!("allow_methods[{i}]"),
                        format!("`{m}` is not a method"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let methods_value = joined(
            "allow_methods",
            &methods.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        )?
        .unwrap_or_else(|| HeaderValue::from_static("GET"));
        Ok(Self {
            origins,
            methods,
            methods_value,
            headers_value: joined("allow_headers", &s.allow_headers)?,
            expose: joined("expose_headers", &s.expose_headers)?,
            credentials: s.allow_credentials,
            max_age: HeaderValue::from(s.max_age.0.as_secs()),
        })
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, if allowed.
    fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        let o = origin.to_str().ok()?.to_ascii_lowercase();
        let rule = self.origins.iter().find(|r| r.matches(&o))?;
        Some(match rule {
            OriginRule::Any if !self.credentials => HeaderValue::from_static("*"),
            _ => origin.clone(),
        })
    }
}

impl Cors {
    /// The request phase: it never waits.
    fn admit(&self, call: &mut RequestCall<'_>) -> Decision {
        let Some(origin) = call.header(ORIGIN) else {
            return Ok(Flow::Continue);
        };
        let allowed = self.allow(origin);
        let preflight = call.method() == Method::OPTIONS;
        let asked = call.req.headers.get(ACCESS_CONTROL_REQUEST_METHOD);
        if let Some(v) = &allowed {
            call.ctx.set_own(Allowed(v.clone()));
        }
        let (true, Some(asked)) = (preflight, asked) else {
            return Ok(Flow::Continue);
        };
        let method_ok =
            Method::from_bytes(asked.as_bytes()).is_ok_and(|m| self.methods.contains(&m));
        if allowed.is_none() || !method_ok {
            call.ctx.take_own::<Allowed>();
            return Ok(Flow::Respond(
                Reply::error(403, "forbidden", "cross-origin request not allowed")
                    .blocked_as("cors"),
            ));
        }
        let mut reply = Reply::empty(204)
            .with_header(ACCESS_CONTROL_ALLOW_METHODS, self.methods_value.clone())
            .with_header(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        let headers = self.headers_value.clone().or_else(|| {
            call.req
                .headers
                .get(ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned()
        });
        if let Some(h) = headers {
            reply = reply.with_header(ACCESS_CONTROL_ALLOW_HEADERS, h);
        }
        Ok(Flow::Respond(reply))
    }
}

#[async_trait]
impl Plugin for Cors {
    fn stage(&self) -> crate::Stage {
        crate::Stage::Admit
    }

    fn answers_preflight(&self) -> bool {
        true
    }

    /// Decides without waiting: no future per request.
    fn request_now(&self, call: &mut RequestCall<'_>) -> Option<Decision> {
        Some(self.admit(call))
    }

    fn on_response(&self, resp: &mut ResponseHeader, ctx: &mut PluginCtx) {
        let listed = resp.headers.get_all(VARY).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|p| p.trim() == "*" || p.trim().eq_ignore_ascii_case("origin"))
            })
        });
        if !listed {
            let _ = resp.append_header(VARY, HeaderValue::from_static("Origin"));
        }
        let Some(origin) = ctx.own::<Allowed>().map(|a| a.0.clone()) else {
            return;
        };
        let _ = resp.insert_header(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials {
            let _ = resp.insert_header(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(e) = &self.expose {
            let _ = resp.insert_header(ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
}

impl Factory for Cors {
    const NAME: &'static str = "cors";
    const SUMMARY: &'static str =
        "Cross-origin requests: preflights answered by the gateway, allow headers on every answer";
    type Settings = CorsSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc::answers([crate::POLICY_ANSWER])
    }

    fn build(s: CorsSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(Cors::new(s)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn origins_exact_suffix_and_any() {
        let r = |s| OriginRule::parse(s).unwrap();
        assert!(r("https://app.example.com").matches("https://app.example.com"));
        assert!(!r("https://app.example.com").matches("http://app.example.com"));
        let suf = r("https://*.example.com");
        assert!(suf.matches("https://a.example.com"));
        assert!(suf.matches("https://a.b.example.com:8443"));
        assert!(!suf.matches("https://example.com"));
        assert!(!suf.matches("https://badexample.com"));
        assert!(!suf.matches("http://a.example.com"));
        assert!(r("*.example.com").matches("http://a.example.com"));
        assert!(r("*").matches("https://anything"));
        assert_eq!(
            OriginRule::parse("app.example.com").err(),
            Some(OriginError::BadOrigin("app.example.com".into()))
        );
        assert!(OriginRule::parse("https://*").is_err());
    }

    /// A global entry allowing one origin and a route's entry allowing another, with
    /// credentials: each decorates answers by its own decision.
    #[tokio::test]
    async fn two_entries_each_decorate_by_their_own_decision() {
        let entry = |origin: &str, credentials: bool| {
            Cors::new(CorsSettings {
                allow_origins: vec![origin.to_string()],
                allow_methods: default_methods(),
                allow_headers: Vec::new(),
                expose_headers: Vec::new(),
                allow_credentials: credentials,
                max_age: default_max_age(),
            })
            .unwrap()
        };
        let chain = [
            entry("https://a.example", false),
            entry("https://b.example", true),
        ];
        let mut req = pingora_http::RequestHeader::build("GET", b"/x", None).unwrap();
        req.insert_header("origin", "https://a.example").unwrap();
        let mut ctx = PluginCtx::default();
        for (i, p) in chain.iter().enumerate() {
            ctx.enter(i);
            let info = crate::RequestInfo::new("r", "/x");
            let d = p
                .on_request(&mut RequestCall::new(&mut req, info, &mut ctx))
                .await;
            assert!(matches!(d, Ok(Flow::Continue)));
        }
        let mut resp = ResponseHeader::build(200, None).unwrap();
        for (i, p) in chain.iter().enumerate() {
            ctx.enter(i);
            p.on_response(&mut resp, &mut ctx);
        }
        assert_eq!(
            resp.headers["access-control-allow-origin"],
            "https://a.example"
        );
        assert!(
            resp.headers
                .get("access-control-allow-credentials")
                .is_none(),
            "credentials are the second entry's, which did not allow this origin"
        );
    }
}
