//! The TLS listener's client CA and CRL files (`server.tls.client_ca`, `client_crl`):
//! their errors, and the CRL check the validator runs (the listener, `tls_listener`,
//! builds its verifier from the same files).

use super::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateRevocationListDer;
use std::path::{Path, PathBuf};

/// Why the client-certificate settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("server.tls.{field}: cannot read `{}`: {source}", path.display())]
    Read {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("server.tls.client_ca: `{}` holds no PEM certificate", .0.display())]
    NoCa(PathBuf),
    #[error("server.tls.client_ca: `{}`: {detail}", path.display())]
    BadCa { path: PathBuf, detail: String },
    #[error("server.tls.client_crl: `{}` holds no PEM CRL (`-----BEGIN X509 CRL-----`)", .0.display())]
    NoCrl(PathBuf),
    #[error("server.tls.client_crl: `{}`: {detail}", path.display())]
    BadCrl { path: PathBuf, detail: String },
    #[error("server.tls: the client certificate verifier refused the settings: {0}")]
    Verifier(String),
}

/// The path of `client_crl`, relative to routes.yaml's directory `base`.
pub fn crl_path(tls: &TlsConfig, base: &Path) -> Option<PathBuf> {
    tls.client_crl.as_deref().map(|f| base.join(f))
}

/// The CRLs of a PEM file, each checked to parse as a CRL (`check` and the listener).
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsFileError> {
    use x509_parser::prelude::FromDer;
    let pem = std::fs::read(path).map_err(|source| TlsFileError::Read {
        field: "client_crl",
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |detail: String| TlsFileError::BadCrl {
        path: path.to_path_buf(),
        detail,
    };
    let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if crls.is_empty() {
        return Err(TlsFileError::NoCrl(path.to_path_buf()));
    }
    for (i, c) in crls.iter().enumerate() {
        x509_parser::revocation_list::CertificateRevocationList::from_der(c.as_ref())
            .map_err(|e| bad(format!("CRL {} does not parse: {e}", i + 1)))?;
    }
    Ok(crls)
}
