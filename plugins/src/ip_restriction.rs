//! `ip_restriction`: allow or deny clients by address (CIDR). A client in `deny` is
//! refused; when `allow` is given, only clients in it pass. Refused → 403.
//!
//! ```yaml
//! - { name: ip_restriction, allow: [10.0.0.0/8, 127.0.0.1/32], deny: [10.9.0.0/16] }
//! ```

use crate::{
    BuildCtx, Factory, Flow, Plugin, PluginCtx, PluginFailure, Reply, RequestInfo, SettingsError,
};
use async_trait::async_trait;
use ipnet::IpNet;
use pingora_http::RequestHeader;
use schemars::JsonSchema;
use serde::Deserialize;
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
}

pub struct IpRestriction {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

fn nets(field: &str, list: &[String]) -> Result<Vec<IpNet>, SettingsError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    SettingsError::at(
                        format!("{field}[{i}]"),
                        format!("`{s}` is not an IP address or CIDR block"),
                    )
                })
        })
        .collect()
}

impl IpRestriction {
    pub fn new(s: IpSettings) -> Result<Self, SettingsError> {
        if s.allow.is_empty() && s.deny.is_empty() {
            return Err(SettingsError::whole("give `allow`, `deny` or both"));
        }
        Ok(Self {
            allow: nets("allow", &s.allow)?,
            deny: nets("deny", &s.deny)?,
        })
    }

    fn permits(&self, ip: Option<std::net::IpAddr>) -> bool {
        let Some(ip) = ip else {
            return self.allow.is_empty() && self.deny.is_empty();
        };
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

#[async_trait]
impl Plugin for IpRestriction {
    fn name(&self) -> &'static str {
        "ip_restriction"
    }
    async fn on_request(
        &self,
        _req: &mut RequestHeader,
        info: &RequestInfo<'_>,
        _ctx: &mut PluginCtx,
    ) -> Result<Flow, PluginFailure> {
        Ok(if self.permits(info.client_ip) {
            Flow::Continue
        } else {
            Flow::Respond(
                Reply::error(403, "forbidden", "your address may not use this route")
                    .blocked_as("ip_restriction"),
            )
        })
    }
}

impl Factory for IpRestriction {
    const NAME: &'static str = "ip_restriction";
    const SUMMARY: &'static str = "Allow or deny clients by address (CIDR); refused: 403";
    type Settings = IpSettings;
    fn build(s: IpSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(IpRestriction::new(s)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_and_deny() {
        let p = IpRestriction::new(IpSettings {
            allow: vec!["10.0.0.0/8".into(), "127.0.0.1".into()],
            deny: vec!["10.9.0.0/16".into()],
        })
        .unwrap();
        assert!(p.permits(Some("10.1.2.3".parse().unwrap())));
        assert!(!p.permits(Some("10.9.2.3".parse().unwrap())));
        assert!(p.permits(Some("127.0.0.1".parse().unwrap())));
        assert!(p.permits(Some("::ffff:127.0.0.1".parse().unwrap())));
        assert!(!p.permits(Some("192.168.1.1".parse().unwrap())));
        assert!(IpRestriction::new(IpSettings {
            allow: vec!["nope".into()],
            deny: vec![]
        })
        .is_err());
    }
}
