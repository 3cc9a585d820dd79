//! routes.yaml `upstreams.<name>.tls`: `false` (plain HTTP), `true` (TLS), or an object
//! that turns TLS on with a client certificate (upstream mTLS) and/or a CA to verify
//! the targets.

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// TLS towards the targets: `false` (default), `true`, or settings (TLS on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum UpstreamTls {
    /// `true`: TLS; `false`: plain HTTP.
    Enabled(bool),
    /// TLS with these settings.
    Settings(UpstreamTlsSettings),
}

impl Default for UpstreamTls {
    fn default() -> Self {
        UpstreamTls::Enabled(false)
    }
}

/// TLS settings towards the targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSettings {
    /// PEM certificate chain the gateway presents to the targets (upstream mTLS);
    /// give `client_key` with it.
    pub client_cert: Option<String>,
    /// PEM private key of `client_cert` (PKCS#8, PKCS#1 or SEC1).
    pub client_key: Option<String>,
    /// PEM bundle of the CAs that sign the targets' certificates, instead of the
    /// system roots. Needs `host` on the upstream: it is the name checked in the
    /// certificate (without `host` no certificate is verified).
    pub ca: Option<String>,
}

impl UpstreamTls {
    /// Whether the gateway speaks TLS to the targets.
    pub fn enabled(&self) -> bool {
        match self {
            UpstreamTls::Enabled(b) => *b,
            UpstreamTls::Settings(_) => true,
        }
    }

    /// The settings, when given as an object.
    pub fn settings(&self) -> Option<&UpstreamTlsSettings> {
        match self {
            UpstreamTls::Settings(s) => Some(s),
            _ => None,
        }
    }

    /// TLS on or off as an `https://`/`http://` override says: on keeps the settings.
    pub fn set_enabled(&mut self, on: bool) {
        if !on {
            *self = UpstreamTls::Enabled(false);
        } else if !self.enabled() {
            *self = UpstreamTls::Enabled(true);
        }
    }
}

impl From<bool> for UpstreamTls {
    fn from(b: bool) -> Self {
        UpstreamTls::Enabled(b)
    }
}

// by hand rather than `untagged`, so that a bad field inside the object is reported
// at its own path (`tls.client_cert`) instead of "did not match any variant"
impl<'de> Deserialize<'de> for UpstreamTls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UpstreamTls;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`true`, `false` or { client_cert, client_key, ca }")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<UpstreamTls, E> {
                Ok(UpstreamTls::Enabled(b))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<UpstreamTls, A::Error> {
                UpstreamTlsSettings::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(UpstreamTls::Settings)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bool_or_settings() {
        let t: UpstreamTls = serde_yaml::from_str("true").unwrap();
        assert!(t.enabled());
        let t: UpstreamTls = serde_yaml::from_str("false").unwrap();
        assert!(!t.enabled());
        let t: UpstreamTls = serde_yaml::from_str("{ client_cert: a, client_key: b }").unwrap();
        assert!(t.enabled());
        assert_eq!(t.settings().unwrap().client_cert.as_deref(), Some("a"));
        let e = serde_yaml::from_str::<UpstreamTls>("{ client_crt: a }").unwrap_err();
        assert!(e.to_string().contains("unknown field `client_crt`"), "{e}");
        assert!(serde_yaml::from_str::<UpstreamTls>("yes please").is_err());
        let mut t = UpstreamTls::Settings(UpstreamTlsSettings::default());
        t.set_enabled(true);
        assert!(t.settings().is_some());
        t.set_enabled(false);
        assert!(!t.enabled());
    }
}
