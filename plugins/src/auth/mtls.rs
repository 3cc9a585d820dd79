//! `mtls`: the caller is the client certificate that the TLS listener verified against
//! `server.tls.client_ca`. The consumer name comes from the certificate's subject CN or
//! one of its SANs; optional allow-lists restrict which certificates may pass.
//!
//! No certificate (a plain-HTTP request, or a TLS client that sent none) → 401; a
//! certificate without the configured name field → 401; a certificate outside the
//! allow-lists → 403. A certificate from another CA never reaches this plugin: the TLS
//! handshake refuses it. The plugin has no dependency (nothing to fail open or closed).
//!
//! ```yaml
//! - { name: mtls, consumer_from: cn, allowed_consumers: [billing, reporting] }
//! ```

use crate::auth::Forwarding;
use crate::{
    BuildCtx, ClientCert, CredentialKind, Decision, Factory, Flow, Identity, Plugin, Reply,
    RequestCall, San, SettingsError,
};
use async_trait::async_trait;
use http::HeaderValue;
use prometheus::IntCounter;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// Which field of the certificate names the consumer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerFrom {
    /// The subject's common name.
    #[default]
    Cn,
    /// The first DNS name among the subject alternative names.
    SanDns,
    /// The first URI among the subject alternative names (e.g. a SPIFFE ID).
    SanUri,
    /// The first e-mail address among the subject alternative names.
    SanEmail,
}

/// Client-certificate authentication.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MtlsSettings {
    /// Where the consumer name comes from: `cn` (default), `san_dns`, `san_uri` or
    /// `san_email`. A certificate without that field is refused (401).
    #[serde(default)]
    consumer_from: ConsumerFrom,
    /// Only these consumer names may pass (403 otherwise). Consumers listed here are
    /// known names and may appear as metric labels.
    #[serde(default)]
    allowed_consumers: Vec<String>,
    /// Only certificates whose whole subject is one of these (RFC 4514 form, as in
    /// `CN=alice,O=Example`) may pass.
    #[serde(default)]
    allowed_subjects: Vec<String>,
    /// Only certificates whose SHA-256 fingerprint is one of these (hex, with or
    /// without `:`, any case) may pass.
    #[serde(default)]
    allowed_fingerprints: Vec<String>,
    /// The older spelling of `forward_claims.sub`: the header that carries the
    /// consumer name (empty: none).
    #[serde(default)]
    consumer_header: Option<String>,
    /// Identity fields sent upstream as headers (field → header): `sub` (the
    /// consumer) or a claim (default `{sub: X-User-Id, scope: X-Scopes}`; a
    /// certificate carries no scopes). Every client-sent spelling of these headers
    /// (`X_User_Id` too) is removed, whatever the outcome.
    #[serde(default)]
    forward_claims: Option<std::collections::BTreeMap<String, String>>,
}

pub struct Mtls {
    from: ConsumerFrom,
    consumers: Vec<String>,
    subjects: Vec<String>,
    fingerprints: Vec<String>,
    forward: Forwarding,
    requests: IntCounter,
    missing: IntCounter,
    bad_certificate: IntCounter,
    not_allowed: IntCounter,
}

/// Lower-case hex without separators.
fn normalise_fingerprint(s: &str) -> String {
    s.chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase()
}

impl Mtls {
    pub fn new(s: MtlsSettings, cx: &BuildCtx<'_>) -> Result<Self, SettingsError> {
        let mut fingerprints = Vec::with_capacity(s.allowed_fingerprints.len());
        for (i, f) in s.allowed_fingerprints.iter().enumerate() {
            let n = normalise_fingerprint(f);
            if n.len() != 64 || !n.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(SettingsError::at(
                    format!("allowed_fingerprints[{i}]"),
                    "a SHA-256 fingerprint is 64 hex digits (`:` between bytes allowed)",
                ));
            }
            fingerprints.push(n);
        }
        let forward = Forwarding::parse(
            s.forward_claims.as_ref(),
            &[("sub", "consumer_header", s.consumer_header.as_deref())],
        )?;
        let m = &cx.shared.metrics;
        let failure = |r: &str| m.auth_failures.with_label_values(&[r]);
        Ok(Self {
            from: s.consumer_from,
            consumers: s.allowed_consumers,
            subjects: s.allowed_subjects,
            fingerprints,
            forward,
            requests: m
                .auth_requests
                .with_label_values(&[CredentialKind::Mtls.as_str()]),
            missing: failure("missing"),
            bad_certificate: failure("bad_certificate"),
            not_allowed: failure("not_allowed"),
        })
    }

    /// The consumer name the certificate gives, per `consumer_from`.
    fn consumer(&self, cert: &ClientCert) -> Option<String> {
        let san = |pick: fn(&San) -> Option<&String>| cert.sans.iter().find_map(pick).cloned();
        match self.from {
            ConsumerFrom::Cn => cert.common_name.clone(),
            ConsumerFrom::SanDns => san(|s| match s {
                San::Dns(v) => Some(v),
                _ => None,
            }),
            ConsumerFrom::SanUri => san(|s| match s {
                San::Uri(v) => Some(v),
                _ => None,
            }),
            ConsumerFrom::SanEmail => san(|s| match s {
                San::Email(v) => Some(v),
                _ => None,
            }),
        }
        .filter(|c| !c.is_empty())
    }

    /// Whether the allow-lists (if any) let this certificate pass.
    fn allowed(&self, cert: &ClientCert, consumer: &str) -> bool {
        if self.consumers.is_empty() && self.subjects.is_empty() && self.fingerprints.is_empty() {
            return true;
        }
        self.consumers.iter().any(|c| c == consumer)
            || self.subjects.contains(&cert.subject)
            || self.fingerprints.contains(&cert.fingerprint)
    }

    fn field(&self) -> &'static str {
        match self.from {
            ConsumerFrom::Cn => "subject common name",
            ConsumerFrom::SanDns => "DNS subject alternative name",
            ConsumerFrom::SanUri => "URI subject alternative name",
            ConsumerFrom::SanEmail => "e-mail subject alternative name",
        }
    }
}

/// 401 with a challenge (RFC 9110 asks for one; no scheme is registered for TLS client
/// certificates, so this one only tells what is expected).
fn unauthorized(message: String) -> Flow {
    Flow::Respond(
        Reply::error(401, "unauthorized", message)
            .with_header(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("ClientCertificate"),
            )
            .blocked_as("auth"),
    )
}

impl Mtls {
    /// The request phase: it never waits.
    fn admit(&self, call: &mut RequestCall<'_>) -> Decision {
        self.requests.inc();
        self.forward.strip(call.req);
        let Some(cert) = call.info.client_cert() else {
            self.missing.inc();
            return Ok(unauthorized(
                "a client certificate is required (connect over TLS with one)".into(),
            ));
        };
        let Some(consumer) = self.consumer(cert) else {
            self.bad_certificate.inc();
            return Ok(unauthorized(format!(
                "the client certificate has no {}",
                self.field()
            )));
        };
        if !self.allowed(cert, &consumer) {
            self.not_allowed.inc();
            return Ok(Flow::Respond(
                Reply::error(
                    403,
                    "forbidden",
                    "this client certificate may not use this route",
                )
                .blocked_as("auth"),
            ));
        }
        let mut id = Identity::new(consumer, CredentialKind::Mtls);
        id.configured = !self.consumers.is_empty();
        id.claims.insert("subject".into(), cert.subject.clone());
        id.claims
            .insert("fingerprint".into(), cert.fingerprint.clone());
        // a name that is not a valid header value is simply not forwarded
        self.forward.set(call.req, &id);
        call.set_identity(id);
        Ok(Flow::Continue)
    }
}

#[async_trait]
impl Plugin for Mtls {
    fn sets_identity(&self) -> bool {
        true
    }

    /// Decides without waiting: no future per request.
    fn request_now(&self, call: &mut RequestCall<'_>) -> Option<Decision> {
        Some(self.admit(call))
    }
}

impl Factory for Mtls {
    const NAME: &'static str = "mtls";
    const SUMMARY: &'static str = "Client certificate (verified by the TLS listener against \
        `server.tls.client_ca`) as the caller; consumer from CN or a SAN; none: 401, not \
        allowed: 403";
    type Settings = MtlsSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc::auth(vec![(
            "mutualTLS".into(),
            serde_json::json!({ "type": "mutualTLS", "description": "A TLS client certificate that the gateway's listener verifies." }),
        )])
    }

    fn build(s: MtlsSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(Mtls::new(s, cx)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PluginCtx, RequestCall, RequestInfo, Shared, TlsConn};
    use pingora_http::RequestHeader;

    fn plugin(v: serde_json::Value) -> Result<Mtls, SettingsError> {
        let shared = Shared::dry();
        let cx = BuildCtx {
            shared: &shared,
            base_dir: std::path::Path::new("."),
            route: Some("r"),
        };
        Mtls::new(crate::parse_settings(&v)?, &cx)
    }

    fn cert() -> ClientCert {
        ClientCert {
            common_name: Some("alice".into()),
            sans: vec![
                San::Ip("127.0.0.1".parse().unwrap()),
                San::Dns("alice.example".into()),
                San::Uri("spiffe://example/alice".into()),
            ],
            subject: "CN=alice,O=Example".into(),
            fingerprint: "ab".repeat(32),
        }
    }

    fn info(conn: &Arc<TlsConn>) -> RequestInfo<'_> {
        RequestInfo {
            tls: true,
            tls_conn: Some(conn),
            ..RequestInfo::new("r", "/")
        }
    }

    async fn run(p: &Mtls, cert: Option<&ClientCert>) -> (Option<u16>, PluginCtx, RequestHeader) {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("x-user-id", "forged").unwrap();
        let mut ctx = PluginCtx::default();
        let conn = Arc::new(TlsConn {
            cert: cert.cloned(),
            ..TlsConn::default()
        });
        let flow = p
            .on_request(&mut RequestCall::new(&mut req, info(&conn), &mut ctx))
            .await
            .unwrap();
        let status = match flow {
            Flow::Continue => None,
            Flow::Respond(r) => Some(r.status),
        };
        (status, ctx, req)
    }

    #[tokio::test]
    async fn consumer_from_each_field() {
        let c = cert();
        for (from, want) in [
            ("cn", Some("alice")),
            ("san_dns", Some("alice.example")),
            ("san_uri", Some("spiffe://example/alice")),
            ("san_email", None),
        ] {
            let p = plugin(serde_json::json!({ "consumer_from": from })).unwrap();
            let (status, ctx, req) = run(&p, Some(&c)).await;
            match want {
                Some(w) => {
                    assert_eq!(status, None, "{from}");
                    let id = ctx.identity.unwrap();
                    assert_eq!(id.consumer, w);
                    assert_eq!(id.credential, CredentialKind::Mtls);
                    assert_eq!(req.headers["x-user-id"], w);
                }
                None => {
                    assert_eq!(status, Some(401), "{from}");
                    assert!(req.headers.get("x-user-id").is_none());
                }
            }
        }
    }

    #[tokio::test]
    async fn no_certificate_is_401_and_allow_lists_403() {
        let p = plugin(serde_json::json!({})).unwrap();
        assert_eq!(run(&p, None).await.0, Some(401));

        let c = cert();
        let p = plugin(serde_json::json!({ "allowed_consumers": ["bob"] })).unwrap();
        assert_eq!(run(&p, Some(&c)).await.0, Some(403));
        let p = plugin(serde_json::json!({ "allowed_consumers": ["bob", "alice"] })).unwrap();
        let (status, ctx, _) = run(&p, Some(&c)).await;
        assert_eq!(status, None);
        assert!(ctx.identity.unwrap().configured);
        let p = plugin(serde_json::json!({ "allowed_subjects": ["CN=alice,O=Example"] })).unwrap();
        assert_eq!(run(&p, Some(&c)).await.0, None);
        let colons = vec!["AB"; 32].join(":");
        let p = plugin(serde_json::json!({ "allowed_fingerprints": [colons] })).unwrap();
        assert_eq!(run(&p, Some(&c)).await.0, None);
        let p = plugin(serde_json::json!({ "allowed_fingerprints": ["cd".repeat(32)] })).unwrap();
        assert_eq!(run(&p, Some(&c)).await.0, Some(403));
    }

    #[test]
    fn bad_options_are_located() {
        let e = plugin(serde_json::json!({ "allowed_fingerprints": ["ab".repeat(32), "xyz"] }))
            .err()
            .unwrap();
        assert_eq!(e.path, "allowed_fingerprints[1]");
        let e = plugin(serde_json::json!({ "consumer_from": "dn" }))
            .err()
            .unwrap();
        assert_eq!(e.path, "consumer_from");
        let e = plugin(serde_json::json!({ "consumer_header": "bad header" }))
            .err()
            .unwrap();
        assert_eq!(e.path, "consumer_header");
    }
}
