//! `ip_filter` (and its older name `ip_restriction`): allow or deny clients by address
//! (CIDR). A client in `deny` is refused; when `allow` is given, only clients in it
//! pass. Behind a load balancer, `trusted_proxies` names the proxies whose
//! `X-Forwarded-For` gives the client address. Refused → 403.
//!
//! ```yaml
//! - { name: ip_filter, allow: [10.0.0.0/8, 127.0.0.1/32], deny: [10.9.0.0/16] }
//! ```

use super::client_addr::{canonical, nets, TrustedProxies};
use crate::{BuildCtx, Decision, Factory, Flow, Plugin, Reply, RequestCall, SettingsError};
use async_trait::async_trait;
use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::Arc;

/// Client address lists.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpSettings {
    /// Only these addresses or CIDR blocks may pass (empty: everyone not denied).
    #[serde(default)]
    allow: Vec<String>,
    /// These addresses or CIDR blocks are refused (checked first).
    #[serde(default)]
    deny: Vec<String>,
    /// Proxies whose `X-Forwarded-For` gives the client address (addresses or CIDR);
    /// empty: the TCP peer is the client.
    #[serde(default)]
    trusted_proxies: Vec<String>,
}

pub struct IpFilter {
    name: &'static str,
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    proxies: TrustedProxies,
}

/// `ip_restriction`: the older name of `ip_filter`, same settings.
pub struct IpRestriction;

impl IpFilter {
    pub fn new(name: &'static str, s: IpSettings) -> Result<Self, SettingsError> {
        if s.allow.is_empty() && s.deny.is_empty() {
            return Err(SettingsError::whole("give `allow`, `deny` or both"));
        }
        Ok(Self {
            name,
            allow: nets("allow", &s.allow)?,
            deny: nets("deny", &s.deny)?,
            proxies: TrustedProxies::parse("trusted_proxies", &s.trusted_proxies)?,
        })
    }

    fn permits(&self, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else {
            return self.allow.is_empty() && self.deny.is_empty();
        };
        let ip = canonical(ip);
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

impl IpFilter {
    /// The request phase: it never waits.
    fn admit(&self, call: &mut RequestCall<'_>) -> Decision {
        let ip = self.proxies.client_ip(call.info.client_ip, call.req);
        Ok(if self.permits(ip) {
            Flow::Continue
        } else {
            Flow::Respond(
                Reply::error(403, "forbidden", "your address may not use this route")
                    .blocked_as(self.name),
            )
        })
    }
}

#[async_trait]
impl Plugin for IpFilter {
    fn stage(&self) -> crate::Stage {
        crate::Stage::Admit
    }

    /// Decides without waiting: no future per request.
    fn request_now(&self, call: &mut RequestCall<'_>) -> Option<Decision> {
        Some(self.admit(call))
    }
}

impl Factory for IpFilter {
    const NAME: &'static str = "ip_filter";
    const SUMMARY: &'static str =
        "Allow or deny clients by address (CIDR), X-Forwarded-For from trusted proxies; refused: 403";
    type Settings = IpSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc::answers([crate::POLICY_ANSWER])
    }
    fn build(s: IpSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(IpFilter::new(Self::NAME, s)?))
    }
}

impl Factory for IpRestriction {
    const NAME: &'static str = "ip_restriction";
    const SUMMARY: &'static str = "The older name of `ip_filter` (same settings)";
    type Settings = IpSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc::answers([crate::POLICY_ANSWER])
    }
    fn build(s: IpSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(IpFilter::new(Self::NAME, s)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{PluginCtx, RequestInfo};
    use pingora_http::RequestHeader;

    fn settings(allow: &[&str], deny: &[&str], trusted: &[&str]) -> IpSettings {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        IpSettings {
            allow: v(allow),
            deny: v(deny),
            trusted_proxies: v(trusted),
        }
    }

    #[test]
    fn allow_and_deny() {
        let p = IpFilter::new(
            "ip_filter",
            settings(&["10.0.0.0/8", "127.0.0.1"], &["10.9.0.0/16"], &[]),
        )
        .unwrap();
        assert!(p.permits(Some("10.1.2.3".parse().unwrap())));
        assert!(!p.permits(Some("10.9.2.3".parse().unwrap())));
        assert!(p.permits(Some("127.0.0.1".parse().unwrap())));
        assert!(p.permits(Some("::ffff:127.0.0.1".parse().unwrap())));
        assert!(!p.permits(Some("192.168.1.1".parse().unwrap())));
        assert!(IpFilter::new("ip_filter", settings(&["nope"], &[], &[])).is_err());
    }

    #[tokio::test]
    async fn forwarded_for_from_a_trusted_proxy() {
        let p = IpFilter::new(
            "ip_filter",
            settings(&[], &["203.0.113.0/24"], &["127.0.0.1"]),
        )
        .unwrap();
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("x-forwarded-for", "203.0.113.9").unwrap();
        let info = RequestInfo {
            client_ip: "127.0.0.1".parse().ok(),
            ..RequestInfo::new("r", "/")
        };
        let mut ctx = PluginCtx::default();
        let f = p
            .on_request(&mut RequestCall::new(&mut req, info, &mut ctx))
            .await
            .unwrap();
        assert!(matches!(f, Flow::Respond(r) if r.status == 403));
    }
}
