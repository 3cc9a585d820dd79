//! TLS material towards a pool's targets (`upstreams.<name>.tls` settings): the client
//! certificate the gateway presents (upstream mTLS) and the CAs that verify the
//! targets. Loaded and checked when the route table is loaded, so that a bad file
//! refuses the table instead of failing connections later. The same material serves
//! pingora's peers (proxied requests) and the HTTP client of flow steps.

use crate::config::UpstreamTlsSettings;
use pingora_core::protocols::tls::CaType;
use pingora_core::tls::{CertificateDer, ClientConfig, PrivateKeyDer, RootCertStore};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::utils::tls::{parse_x509, CertKey, WrappedX509};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use x509_parser::prelude::FromDer;

/// A certificate or key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not PEM: {source}")]
    NotPem {
        path: String,
        #[source]
        source: x509_parser::error::PEMError,
    },
    #[error("`{path}`: a certificate does not parse: {source}")]
    BadCertificate {
        path: String,
        #[source]
        source: x509_parser::nom::Err<x509_parser::error::X509Error>,
    },
    #[error("`{0}` holds no PEM certificate")]
    NoCertificate(String),
    #[error("cannot read `{cert}` or `{key}`: {source}")]
    ReadPair {
        cert: String,
        key: String,
        #[source]
        source: Box<pingora_error::Error>,
    },
    #[error("`{0}` holds no PKCS#8, PKCS#1 or SEC1 private key")]
    NoKey(String),
    #[error("`{key}`: unusable private key: {reason}")]
    BadKey { key: String, reason: &'static str },
    #[error("`{cert}` and `{key}` cannot be used together: {source}")]
    Mismatch {
        cert: String,
        key: String,
        #[source]
        source: rustls::Error,
    },
    /// reqwest refuses the certificate and key (flow steps' client).
    #[error("`{cert}` and `{key}`: {source}")]
    Identity {
        cert: String,
        key: String,
        #[source]
        source: reqwest::Error,
    },
    /// reqwest refuses a CA certificate (flow steps' client).
    #[error("{0}")]
    CaCertificate(#[source] reqwest::Error),
}

/// Why a pool's `tls` settings are refused; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.client_cert/client_key: {0}")]
    ClientIdentity(#[source] TlsFileError),
    #[error("tls: give both `client_cert` and `client_key`")]
    HalfPair,
    #[error("tls.ca: {0}")]
    Ca(#[source] TlsFileError),
}

fn read(path: &str) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        path: path.to_string(),
        source,
    })
}

/// A pool's TLS material, ready to put on each [`HttpPeer`] and on a step client.
pub struct PeerTls {
    client: Option<Arc<CertKey>>,
    ca: Option<Arc<CaType>>,
    /// Keeps pooled connections of pools with different material apart.
    group_key: u64,
    /// The client certificate and key for the flow steps' HTTP client.
    step_identity: Option<reqwest::Identity>,
    /// The CAs for the flow steps' HTTP client (empty: the system's roots).
    step_roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("client_cert", &self.client.is_some())
            .field("ca", &self.ca.as_ref().map(|c| c.len()))
            .finish()
    }
}

impl PeerTls {
    /// Sets the client certificate and CA on a peer.
    pub fn apply(&self, peer: &mut HttpPeer) {
        peer.client_cert_key = self.client.clone();
        peer.options.ca = self.ca.clone();
        peer.group_key = self.group_key;
    }

    /// Identifies the material (equal keys: same certificate and CAs).
    pub fn group_key(&self) -> u64 {
        self.group_key
    }

    /// Sets the client certificate and CAs on a flow step's HTTP client.
    pub fn apply_to_client(&self, mut b: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if let Some(id) = &self.step_identity {
            b = b.identity(id.clone());
        }
        if !self.step_roots.is_empty() {
            b = b.tls_built_in_root_certs(false);
            for c in &self.step_roots {
                b = b.add_root_certificate(c.clone());
            }
        }
        b
    }
}

/// The DER certificates of a PEM file, each checked to parse.
fn pem_certs(path: &str) -> Result<Vec<Vec<u8>>, TlsFileError> {
    let bytes = read(path)?;
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|source| TlsFileError::NotPem {
            path: path.to_string(),
            source,
        })?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        x509_parser::certificate::X509Certificate::from_der(&pem.contents).map_err(|source| {
            TlsFileError::BadCertificate {
                path: path.to_string(),
                source,
            }
        })?;
        out.push(pem.contents);
    }
    if out.is_empty() {
        return Err(TlsFileError::NoCertificate(path.to_string()));
    }
    Ok(out)
}

fn client_cert_key(cert: &str, key: &str) -> Result<CertKey, TlsFileError> {
    let certs = pem_certs(cert)?;
    let (_, key_der) = pingora_core::tls::load_certs_and_key_files(cert, key)
        .map_err(|source| TlsFileError::ReadPair {
            cert: cert.to_string(),
            key: key.to_string(),
            source,
        })?
        .ok_or_else(|| TlsFileError::NoKey(key.to_string()))?;
    let key_bytes = key_der.secret_der().to_vec();
    // pingora turns the bytes back into a key for every new connection: check now
    // that it can, and that the key goes with the certificate
    let again =
        PrivateKeyDer::try_from(key_bytes.clone()).map_err(|reason| TlsFileError::BadKey {
            key: key.to_string(),
            reason,
        })?;
    pingora_core::tls::install_default_crypto_provider();
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(
            certs.iter().cloned().map(CertificateDer::from).collect(),
            again,
        )
        .map_err(|source| TlsFileError::Mismatch {
            cert: cert.to_string(),
            key: key.to_string(),
            source,
        })?;
    Ok(CertKey::new(certs, key_bytes))
}

/// Loads a pool's TLS settings; `None` when they add nothing to plain `tls: true`.
pub fn load(s: &UpstreamTlsSettings) -> Result<Option<PeerTls>, TlsError> {
    // pingora's connection reuse key covers the client certificate by serial number
    // only, and not the CA: the group key keeps pools with other material apart
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let (client, step_identity) = match (&s.client_cert, &s.client_key) {
        (Some(c), Some(k)) => {
            let ck = client_cert_key(c, k).map_err(TlsError::ClientIdentity)?;
            ck.leaf().borrow_raw_cert().hash(&mut hasher);
            let id = step_identity(c, k).map_err(TlsError::ClientIdentity)?;
            (Some(Arc::new(ck)), Some(id))
        }
        (None, None) => (None, None),
        _ => return Err(TlsError::HalfPair),
    };
    let mut step_roots = Vec::new();
    let ca = match &s.ca {
        None => None,
        Some(path) => {
            let ders = pem_certs(path).map_err(TlsError::Ca)?;
            ders.hash(&mut hasher);
            for d in &ders {
                step_roots.push(
                    reqwest::Certificate::from_der(d)
                        .map_err(|e| TlsError::Ca(TlsFileError::CaCertificate(e)))?,
                );
            }
            let list: Vec<WrappedX509> = ders
                .into_iter()
                .map(|d| WrappedX509::new(d, parse_x509))
                .collect();
            Some(Arc::<CaType>::from(list))
        }
    };
    if client.is_none() && ca.is_none() {
        return Ok(None);
    }
    Ok(Some(PeerTls {
        client,
        ca,
        group_key: hasher.finish(),
        step_identity,
        step_roots,
    }))
}

/// The client identity for reqwest: the certificate chain and key, PEM.
fn step_identity(cert: &str, key: &str) -> Result<reqwest::Identity, TlsFileError> {
    let mut pem = read(cert)?;
    pem.push(b'\n');
    pem.extend(read(key)?);
    reqwest::Identity::from_pem(&pem).map_err(|source| TlsFileError::Identity {
        cert: cert.to_string(),
        key: key.to_string(),
        source,
    })
}
