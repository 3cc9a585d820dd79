//! The TLS listener's settings (`server.tls`): certificate and key, HTTP/2 by ALPN, and
//! client certificates (mTLS) when `client_ca` is given. Client certificates are
//! verified during the handshake against `client_ca` and, when given, the revocation
//! lists of `client_crl` (a certificate that does not verify, or is revoked, fails the
//! handshake, counted as `gateway_auth_failures_total{reason="bad_certificate"}`); a
//! verified one is read once per connection and kept in the connection's TLS digest,
//! where the `mtls` plugin finds it.
//!
//! The listener itself is fixed at start-up, but its client-certificate verifier is
//! rebuilt on every reload from the contents of the start-up `client_ca` and
//! `client_crl` files ([`ClientVerifier::reload`]): a new CRL applies to the next
//! handshakes without a restart.

pub use crate::config::{crl_path, load_crls, FileProblem, TlsFileError};
use crate::config::{ClientAuth, TlsConfig};
use crate::gateway::Gateway;
use arc_swap::ArcSwap;
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
use rustls::pki_types::pem::PemObject;
use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the TLS listener cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("server.tls: cannot read `{path}`: {source}")]
    Missing {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// pingora refuses the certificate and key (or cannot set up TLS).
    #[error("server.tls: {0}")]
    Settings(#[source] Box<pingora_error::Error>),
    #[error("server.tls.cert: {0}")]
    Cert(#[source] Box<pingora_error::Error>),
    #[error("server.tls.key: {0}")]
    Key(#[source] Box<pingora_error::Error>),
    #[error(transparent)]
    ClientCa(#[from] TlsFileError),
}

/// The TLS listener's settings; registers the client-certificate verifier with the
/// gateway (rebuilt on reload; its files are watched, `reload::watch_config_files`).
pub fn listener(gw: &Gateway, tls: &TlsConfig) -> Result<TlsSettings, ListenerError> {
    let bad_certificates = gw
        .plugins
        .metrics
        .auth_failures
        .with_label_values(&["bad_certificate"]);
    let base = crate::config::base_dir(&gw.config_path.display().to_string()).to_path_buf();
    let (settings, verifier) = settings(tls, &base, bad_certificates)?;
    if let Some(v) = verifier {
        let _ = gw.client_verifier.set(v);
    }
    Ok(settings)
}

/// The TLS listener's settings, and the client-certificate verifier when `client_ca`
/// is given. `bad_certificates` counts client certificates refused by the handshake.
pub fn settings(
    tls: &TlsConfig,
    base: &Path,
    bad_certificates: IntCounter,
) -> Result<(TlsSettings, Option<Arc<ClientVerifier>>), ListenerError> {
    let files = [&tls.cert, &tls.key].into_iter().chain(&tls.client_ca);
    for f in files {
        std::fs::metadata(f).map_err(|source| ListenerError::Missing {
            path: f.clone(),
            source,
        })?;
    }
    let mut verifier = None;
    // every TLS connection keeps what its handshake negotiated, for plugins
    let mut t =
        TlsSettings::with_callbacks(Box::new(KeepConnInfo)).map_err(ListenerError::Settings)?;
    t.set_certificate_chain_file(&tls.cert)
        .map_err(ListenerError::Cert)?;
    t.set_private_key_file(&tls.key)
        .map_err(ListenerError::Key)?;
    if let Some(ca) = &tls.client_ca {
        let v = ClientVerifier::new(
            PathBuf::from(ca),
            crl_path(tls, base),
            tls.client_auth,
            bad_certificates,
        )?;
        let v = Arc::new(v);
        t.set_client_cert_verifier(v.clone());
        verifier = Some(v);
    }
    t.enable_h2();
    Ok((t, verifier))
}

/// Verifies client certificates against the CAs of `ca` and the CRLs of `crl`; the
/// WebPKI verifier inside is rebuilt from the files' current contents by
/// [`ClientVerifier::reload`]. Counts the certificates it refuses.
#[derive(Debug)]
pub struct ClientVerifier {
    ca: PathBuf,
    crl: Option<PathBuf>,
    mode: ClientAuth,
    current: ArcSwap<Built>,
    /// The CA names sent to clients (from the start-up `client_ca`; advisory).
    hints: Vec<rustls::DistinguishedName>,
    bad: IntCounter,
}

#[derive(Debug)]
struct Built(Arc<dyn ClientCertVerifier>);

impl ClientVerifier {
    fn new(
        ca: PathBuf,
        crl: Option<PathBuf>,
        mode: ClientAuth,
        bad: IntCounter,
    ) -> Result<Self, TlsFileError> {
        let inner = build(&ca, crl.as_deref(), mode)?;
        Ok(Self {
            hints: inner.root_hint_subjects().to_vec(),
            current: ArcSwap::from_pointee(Built(inner)),
            ca,
            crl,
            mode,
            bad,
        })
    }

    /// Re-reads `client_ca` and `client_crl` and verifies the next handshakes with
    /// them; on error the previous ones keep applying.
    pub fn reload(&self) -> Result<(), TlsFileError> {
        let inner = build(&self.ca, self.crl.as_deref(), self.mode)?;
        self.current.store(Arc::new(Built(inner)));
        Ok(())
    }
}

/// The WebPKI verifier of the CAs of `ca_file` and the CRLs of `crl_file`: only the
/// client's own certificate is checked for revocation, and one whose CA has no CRL in
/// the file is refused (unknown status fails closed); a CRL past its next update still
/// applies.
fn build(
    ca_file: &Path,
    crl_file: Option<&Path>,
    mode: ClientAuth,
) -> Result<Arc<dyn ClientCertVerifier>, TlsFileError> {
    pingora_core::tls::install_default_crypto_provider();
    let mut roots = RootCertStore::empty();
    let pem = crate::config::client_ca::read(ca_file, TlsFileError::ca)?;
    let bad_ca = |detail: String| {
        TlsFileError::ca(FileProblem::BadCa {
            path: ca_file.to_path_buf(),
            detail,
        })
    };
    for c in CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| bad_ca(format!("not PEM: {e}")))?;
        roots.add(c).map_err(|e| bad_ca(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsFileError::ca(FileProblem::NoCa(ca_file.to_path_buf())));
    }
    let mut b = WebPkiClientVerifier::builder(Arc::new(roots));
    if let Some(f) = crl_file {
        b = b
            .with_crls(load_crls(f)?)
            .only_check_end_entity_revocation();
    }
    let b = match mode {
        ClientAuth::Optional => b.allow_unauthenticated(),
        ClientAuth::Required => b,
    };
    b.build().map_err(|e| match crl_file {
        Some(f) => TlsFileError::crl(FileProblem::BadCrl {
            path: f.to_path_buf(),
            detail: e.to_string(),
        }),
        None => TlsFileError::verifier(e.to_string()),
    })
}

/// After a handshake, keeps its version, SNI name and verified client certificate in
/// the TLS digest (an `Arc<TlsConn>`, which each request's plugins share).
struct KeepConnInfo;

#[async_trait]
impl TlsAccept for KeepConnInfo {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        Some(Arc::new(Arc::new(crate::proxy::tls_conn_of(tls))))
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mode == ClientAuth::Required
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, RusTlsError> {
        let r = self
            .current
            .load()
            .0
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
        self.current
            .load()
            .0
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RusTlsError> {
        self.current
            .load()
            .0
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().0.supported_verify_schemes()
    }
}
