//! The TLS listener's settings (`server.tls`): certificate and key, HTTP/2 by ALPN, and
//! client certificates (mTLS) when `client_ca` is given. Client certificates are
//! verified during the handshake against `client_ca` (a certificate that does not
//! verify fails the handshake, counted as `gateway_auth_failures_total{reason=
//! "bad_certificate"}`); a verified one is read once per connection and kept in the
//! connection's TLS digest, where the `mtls` plugin finds it.

use crate::config::{ClientAuth, TlsConfig};
use async_trait::async_trait;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use pingora_core::tls::{
    CertificateDer, ClientCertVerified, ClientCertVerifier, DigitallySignedStruct,
    HandshakeSignatureValid, RootCertStore, RusTlsError, SignatureScheme, UnixTime,
    WebPkiClientVerifier,
};
use prometheus::IntCounter;
use std::any::Any;
use std::sync::Arc;

/// The TLS listener's settings. `bad_certificates` counts client certificates refused
/// by the handshake.
pub fn settings(tls: &TlsConfig, bad_certificates: IntCounter) -> Result<TlsSettings, String> {
    let files = [&tls.cert, &tls.key].into_iter().chain(&tls.client_ca);
    for f in files {
        std::fs::metadata(f).map_err(|e| format!("server.tls: cannot read `{f}`: {e}"))?;
    }
    let mut t = match &tls.client_ca {
        None => TlsSettings::intermediate(&tls.cert, &tls.key)
            .map_err(|e| format!("server.tls: {e}"))?,
        Some(ca) => {
            let mut t = TlsSettings::with_callbacks(Box::new(KeepClientCert))
                .map_err(|e| format!("server.tls: {e}"))?;
            t.set_certificate_chain_file(&tls.cert)
                .map_err(|e| format!("server.tls.cert: {e}"))?;
            t.set_private_key_file(&tls.key)
                .map_err(|e| format!("server.tls.key: {e}"))?;
            let v = verifier(ca, tls.client_auth, bad_certificates)
                .map_err(|e| format!("server.tls.client_ca: {e}"))?;
            t.set_client_cert_verifier(v);
            t
        }
    };
    t.enable_h2();
    Ok(t)
}

/// Verifies client certificates against the CAs of `ca_file`.
fn verifier(
    ca_file: &str,
    mode: ClientAuth,
    bad: IntCounter,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    pingora_core::tls::install_default_crypto_provider();
    let mut roots = RootCertStore::empty();
    pingora_core::tls::load_ca_file_into_store(ca_file, &mut roots)
        .map_err(|e| format!("`{ca_file}`: {e}"))?;
    if roots.is_empty() {
        return Err(format!("`{ca_file}` holds no PEM certificate"));
    }
    let b = WebPkiClientVerifier::builder(Arc::new(roots));
    let b = match mode {
        ClientAuth::Optional => b.allow_unauthenticated(),
        ClientAuth::Required => b,
    };
    let inner = b.build().map_err(|e| e.to_string())?;
    Ok(Arc::new(Counted { inner, bad }))
}

/// After a handshake, reads the verified client certificate into the TLS digest.
struct KeepClientCert;

#[async_trait]
impl TlsAccept for KeepClientCert {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let cert = crate::proxy::parse_client_cert(tls.peer_certificate_der()?)?;
        Some(Arc::new(cert))
    }
}

/// The WebPKI verifier, counting the certificates it refuses.
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn ClientCertVerifier>,
    bad: IntCounter,
}

impl ClientCertVerifier for Counted {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, RusTlsError> {
        let r = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &r {
            self.bad.inc();
            tracing::debug!(error = %e, "client certificate refused in the TLS handshake");
        }
        r
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RusTlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RusTlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
