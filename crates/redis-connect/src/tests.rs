#![allow(clippy::unwrap_used)]

use super::*;

fn ca_pem() -> String {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

fn files(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> TlsFiles {
    TlsFiles {
        ca: ca.map(Path::to_path_buf),
        cert: cert.map(Path::to_path_buf),
        key: key.map(Path::to_path_buf),
    }
}

#[test]
fn plain_urls_ignore_the_tls_files() {
    let f = files(Some(Path::new("/nonexistent/ca.pem")), None, None);
    assert!(client("redis://127.0.0.1:6379/", &f).is_ok());
    assert!(matches!(
        client("not a url", &TlsFiles::default()),
        Err(ConnectError::Url(_))
    ));
}

#[test]
fn tls_urls_are_recognised() {
    assert!(is_tls("rediss://h:1/"));
    assert!(is_tls("  REDISS://h:1/"));
    assert!(!is_tls("redis://h:1/"));
    assert!(!is_tls("redis"));
}

#[test]
fn a_missing_ca_file_is_named() {
    let f = files(Some(Path::new("/nonexistent/ca.pem")), None, None);
    let e = client("rediss://localhost:6380/", &f).unwrap_err();
    assert!(
        matches!(
            e,
            ConnectError::Read {
                var: CA_FILE_ENV,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("REDIS_CA_FILE") && msg.contains("/nonexistent/ca.pem"),
        "{msg}"
    );
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ca.pem");
    std::fs::write(&p, "hello\n").unwrap();
    let e = client("rediss://localhost:6380/", &files(Some(&p), None, None)).unwrap_err();
    assert!(matches!(e, ConnectError::NoCertificate { .. }), "{e}");
}

#[test]
fn a_good_ca_file_makes_a_client() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ca.pem");
    std::fs::write(&p, ca_pem()).unwrap();
    assert!(client("rediss://localhost:6380/", &files(Some(&p), None, None)).is_ok());
}

#[test]
fn a_client_certificate_needs_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.pem");
    std::fs::write(&p, ca_pem()).unwrap();
    let e = client("rediss://localhost:6380/", &files(None, Some(&p), None)).unwrap_err();
    assert!(
        matches!(
            e,
            ConnectError::Incomplete {
                given: CERT_FILE_ENV,
                ..
            }
        ),
        "{e}"
    );
    let k = dir.path().join("k.pem");
    std::fs::write(&k, "not a key").unwrap();
    let e = client("rediss://localhost:6380/", &files(None, Some(&p), Some(&k))).unwrap_err();
    assert!(
        matches!(
            e,
            ConnectError::BadPem {
                var: KEY_FILE_ENV,
                ..
            }
        ),
        "{e}"
    );
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    assert!(client("rediss://localhost:6380/", &files(None, Some(&p), Some(&k))).is_ok());
}

#[test]
fn empty_variables_count_as_unset() {
    let f = TlsFiles::from_lookup(|k| (k == CA_FILE_ENV).then(|| " ".to_string()));
    assert!(f.is_empty());
}
