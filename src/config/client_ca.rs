//! The TLS listener's client CA and CRL files (`server.tls.client_ca`, `client_crl`):
//! their errors, and the CRL check the validator runs (the listener, `tls_listener`,
//! builds its verifier from the same files).

use super::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateRevocationListDer;
use std::path::{Path, PathBuf};

/// Why the client-certificate settings cannot be used: the field at fault
/// (`client_ca`, `client_crl`; none for the verifier as a whole) and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("server.tls{}: {problem}", field.map(|f| format!(".{f}")).unwrap_or_default())]
pub struct TlsFileError {
    pub field: Option<&'static str>,
    #[source]
    pub problem: FileProblem,
}

/// What is wrong with a client CA or CRL file.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` holds no PEM certificate", .0.display())]
    NoCa(PathBuf),
    #[error("`{}`: {detail}", path.display())]
    BadCa { path: PathBuf, detail: String },
    #[error("`{}` holds no PEM CRL (`-----BEGIN X509 CRL-----`)", .0.display())]
    NoCrl(PathBuf),
    #[error("`{}`: {detail}", path.display())]
    BadCrl { path: PathBuf, detail: String },
    #[error("the client certificate verifier refused the settings: {0}")]
    Verifier(String),
}

impl TlsFileError {
    /// A problem of `client_ca`.
    pub fn ca(problem: FileProblem) -> Self {
        Self {
            field: Some("client_ca"),
            problem,
        }
    }
    /// A problem of `client_crl`.
    pub fn crl(problem: FileProblem) -> Self {
        Self {
            field: Some("client_crl"),
            problem,
        }
    }
    /// The verifier refuses the CA and CRL files together.
    pub fn verifier(detail: String) -> Self {
        Self {
            field: None,
            problem: FileProblem::Verifier(detail),
        }
    }
}

/// The path of `client_crl`, relative to routes.yaml's directory `base`.
pub fn crl_path(tls: &TlsConfig, base: &Path) -> Option<PathBuf> {
    tls.client_crl.as_deref().map(|f| base.join(f))
}

/// The bytes of a client CA or CRL file; `field` says which ([`TlsFileError::ca`],
/// [`TlsFileError::crl`]).
pub fn read(path: &Path, field: fn(FileProblem) -> TlsFileError) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| {
        field(FileProblem::Read {
            path: path.to_path_buf(),
            source,
        })
    })
}

/// The CRLs of a PEM file, each checked to parse as a CRL (`check` and the listener).
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsFileError> {
    use x509_parser::prelude::FromDer;
    let pem = read(path, TlsFileError::crl)?;
    let bad = |detail: String| {
        TlsFileError::crl(FileProblem::BadCrl {
            path: path.to_path_buf(),
            detail,
        })
    };
    let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if crls.is_empty() {
        return Err(TlsFileError::crl(FileProblem::NoCrl(path.to_path_buf())));
    }
    for (i, c) in crls.iter().enumerate() {
        x509_parser::revocation_list::CertificateRevocationList::from_der(c.as_ref())
            .map_err(|e| bad(format!("CRL {} does not parse: {e}", i + 1)))?;
    }
    Ok(crls)
}
