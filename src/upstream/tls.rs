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
fn pem_certs(path: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|e| format!("`{path}` is not PEM: {e}"))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        x509_parser::certificate::X509Certificate::from_der(&pem.contents)
            .map_err(|e| format!("`{path}`: a certificate does not parse: {e}"))?;
        out.push(pem.contents);
    }
    if out.is_empty() {
        return Err(format!("`{path}` holds no PEM certificate"));
    }
    Ok(out)
}

fn client_cert_key(cert: &str, key: &str) -> Result<CertKey, String> {
    let certs = pem_certs(cert)?;
    let (_, key_der) = pingora_core::tls::load_certs_and_key_files(cert, key)
        .map_err(|e| format!("cannot read `{cert}` or `{key}`: {e}"))?
        .ok_or_else(|| format!("`{key}` holds no PKCS#8, PKCS#1 or SEC1 private key"))?;
    let key_bytes = key_der.secret_der().to_vec();
    // pingora turns the bytes back into a key for every new connection: check now
    // that it can, and that the key goes with the certificate
    let again = PrivateKeyDer::try_from(key_bytes.clone())
        .map_err(|e| format!("`{key}`: unusable private key: {e}"))?;
    pingora_core::tls::install_default_crypto_provider();
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(
            certs.iter().cloned().map(CertificateDer::from).collect(),
            again,
        )
        .map_err(|e| format!("`{cert}` and `{key}` cannot be used together: {e}"))?;
    Ok(CertKey::new(certs, key_bytes))
}

/// Loads a pool's TLS settings; `None` when they add nothing to plain `tls: true`.
pub fn load(s: &UpstreamTlsSettings) -> Result<Option<PeerTls>, String> {
    // pingora's connection reuse key covers the client certificate by serial number
    // only, and not the CA: the group key keeps pools with other material apart
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let (client, step_identity) = match (&s.client_cert, &s.client_key) {
        (Some(c), Some(k)) => {
            let ck =
                client_cert_key(c, k).map_err(|e| format!("tls.client_cert/client_key: {e}"))?;
            ck.leaf().borrow_raw_cert().hash(&mut hasher);
            let id = step_identity(c, k).map_err(|e| format!("tls.client_cert/client_key: {e}"))?;
            (Some(Arc::new(ck)), Some(id))
        }
        (None, None) => (None, None),
        _ => return Err("tls: give both `client_cert` and `client_key`".into()),
    };
    let mut step_roots = Vec::new();
    let ca = match &s.ca {
        None => None,
        Some(path) => {
            let ders = pem_certs(path).map_err(|e| format!("tls.ca: {e}"))?;
            ders.hash(&mut hasher);
            for d in &ders {
                step_roots
                    .push(reqwest::Certificate::from_der(d).map_err(|e| format!("tls.ca: {e}"))?);
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
fn step_identity(cert: &str, key: &str) -> Result<reqwest::Identity, String> {
    let mut pem = std::fs::read(cert).map_err(|e| format!("cannot read `{cert}`: {e}"))?;
    pem.push(b'\n');
    pem.extend(std::fs::read(key).map_err(|e| format!("cannot read `{key}`: {e}"))?);
    reqwest::Identity::from_pem(&pem).map_err(|e| format!("`{cert}` and `{key}`: {e}"))
}
