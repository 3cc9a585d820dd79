//! The one place a Redis client is made, for every Redis use of the repository: the
//! gateway's job store, the `rate_limit` and `token` plugins, and api-enrichment's
//! cache.
//!
//! - `redis://…` is used as is (the TLS variables below are ignored).
//! - `rediss://…` is TLS (rustls). The server's certificate is verified against the
//!   system roots, or against the PEM bundle of `REDIS_CA_FILE` when it is set (then the
//!   system roots are not used). `REDIS_CERT_FILE` and `REDIS_KEY_FILE` (given together)
//!   are the client certificate chain and key the client presents (Redis'
//!   `tls-auth-clients`).
//!
//! The files are read when the client is made (at start-up, or when a plugin is built
//! on reload): a missing, unreadable or non-PEM file is an error that names the
//! variable and the file. Nothing is connected here; the callers connect on first use,
//! and a server whose certificate does not verify fails that connection (the callers'
//! fail-open or fail-closed behaviour applies, as for any unreachable Redis).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// The CA bundle that verifies a `rediss://` server (instead of the system roots).
pub const CA_FILE_ENV: &str = "REDIS_CA_FILE";
/// The client certificate chain presented to a `rediss://` server.
pub const CERT_FILE_ENV: &str = "REDIS_CERT_FILE";
/// The private key of [`CERT_FILE_ENV`].
pub const KEY_FILE_ENV: &str = "REDIS_KEY_FILE";

/// The TLS files of a `rediss://` connection, as named by the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `REDIS_CA_FILE`: PEM CA bundle; `None` = the system roots.
    pub ca: Option<PathBuf>,
    /// `REDIS_CERT_FILE`: PEM client certificate chain.
    pub cert: Option<PathBuf>,
    /// `REDIS_KEY_FILE`: PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From a lookup of environment variables (an empty value counts as unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let path = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            ca: path(CA_FILE_ENV),
            cert: path(CERT_FILE_ENV),
            key: path(KEY_FILE_ENV),
        }
    }

    /// Whether no file is named (a `rediss://` client then uses the system roots).
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

/// Why a Redis client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not a Redis URL.
    #[error("not a Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// A TLS file could not be read.
    #[error("{var}: cannot read `{}`: {source}", path.display())]
    Read {
        var: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A certificate file holds no PEM certificate.
    #[error("{var}: `{}` holds no PEM certificate", path.display())]
    NoCertificate { var: &'static str, path: PathBuf },
    /// A file is not valid PEM of the expected kind.
    #[error("{var}: `{}` is not a usable PEM file: {detail}", path.display())]
    BadPem {
        var: &'static str,
        path: PathBuf,
        detail: String,
    },
    /// Only one of the client certificate and its key is given.
    #[error("{given} is set but {missing} is not: a client certificate needs both")]
    Incomplete {
        given: &'static str,
        missing: &'static str,
    },
    /// The redis crate refused the TLS settings.
    #[error("TLS settings refused: {0}")]
    Tls(#[source] redis::RedisError),
}

/// Whether `url` asks for TLS (`rediss://`).
pub fn is_tls(url: &str) -> bool {
    url.trim_start()
        .get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("rediss://"))
}

/// A client for `url` with the TLS files of the process environment.
pub fn client_from_env(url: &str) -> Result<redis::Client, ConnectError> {
    client(url, &TlsFiles::from_env())
}

/// A client for `url`; `tls` applies to a `rediss://` URL only. Opens nothing.
pub fn client(url: &str, tls: &TlsFiles) -> Result<redis::Client, ConnectError> {
    if !is_tls(url) || tls.is_empty() {
        return redis::Client::open(url).map_err(ConnectError::Url);
    }
    let root_cert = tls
        .ca
        .as_deref()
        .map(|p| certificates(CA_FILE_ENV, p))
        .transpose()?;
    let client_tls = match (&tls.cert, &tls.key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConnectError::Incomplete {
                given: CERT_FILE_ENV,
                missing: KEY_FILE_ENV,
            })
        }
        (None, Some(_)) => {
            return Err(ConnectError::Incomplete {
                given: KEY_FILE_ENV,
                missing: CERT_FILE_ENV,
            })
        }
        (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
            client_cert: certificates(CERT_FILE_ENV, c)?,
            client_key: private_key(k)?,
        }),
    };
    // the URL is checked first, so that a bad URL is reported as one
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(ConnectError::Url)?;
    redis::Client::build_with_tls(
        info,
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(ConnectError::Tls)
}

fn read(var: &'static str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::Read {
        var,
        path: path.to_path_buf(),
        source,
    })
}

/// The file's bytes, checked to hold at least one PEM certificate.
fn certificates(var: &'static str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    let pem = read(var, path)?;
    let mut n = 0usize;
    for c in CertificateDer::pem_slice_iter(&pem) {
        c.map_err(|e| ConnectError::BadPem {
            var,
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        n += 1;
    }
    if n == 0 {
        return Err(ConnectError::NoCertificate {
            var,
            path: path.to_path_buf(),
        });
    }
    Ok(pem)
}

/// The file's bytes, checked to hold a PEM private key (its content is never printed).
fn private_key(path: &Path) -> Result<Vec<u8>, ConnectError> {
    let pem = read(KEY_FILE_ENV, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| ConnectError::BadPem {
        var: KEY_FILE_ENV,
        path: path.to_path_buf(),
        detail: match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no private key found".to_string(),
            _ => "the private key does not parse".to_string(),
        },
    })?;
    Ok(pem)
}

#[cfg(test)]
mod tests;
