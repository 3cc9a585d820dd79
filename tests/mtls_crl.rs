//! `server.tls.client_crl` through a real gateway: a CA, two client certificates and
//! CRLs made by the test (rcgen). The good certificate gets 200, the revoked one fails
//! the TLS handshake; a new CRL file (revoking the other one) applies on reload without
//! a restart; a bad CRL file is refused at its line by `api-gateway check` and by a
//! reload, and the previous lists keep applying.
#![allow(clippy::unwrap_used)]

mod common;
use common::pki::Ca;
use common::*;

use rcgen::{
    CertificateParams, CertificateRevocationListParams, DnType, KeyIdMethod, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

struct Client {
    serial: u64,
    pem: String,
}

/// The test CA, which signs CRLs too.
fn crl_ca() -> Ca {
    let usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ca::new("crl test CA", usages)
}

// what the CRL tests issue: certificates with a serial, clients and CRLs (the test
// crate's own impl of the shared CA)
impl Ca {
    fn issue(&self, cn: &str, serial: u64, client: bool) -> (String, String) {
        let names = if client {
            vec![]
        } else {
            vec!["localhost".to_string()]
        };
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        let (cert, key) = self.sign(p, client);
        (cert.pem(), key.serialize_pem())
    }

    fn client(&self, cn: &str, serial: u64) -> Client {
        let (c, k) = self.issue(cn, serial, true);
        Client {
            serial,
            pem: format!("{c}{k}"),
        }
    }

    /// A CRL revoking `revoked`, numbered `number`.
    fn crl(&self, number: u64, revoked: &[&Client]) -> String {
        let p = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from(c.serial),
                    revocation_time: rcgen::date_time_ymd(2024, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        p.signed_by(&self.cert, &self.key).unwrap().pem().unwrap()
    }
}

/// A status for one request over a new TLS connection presenting `id`; `None` when
/// the handshake (or the request on it) fails.
async fn status(ca: &Ca, id: &Client, port: u16) -> Option<u16> {
    let c = ca
        .client_builder(port, Duration::from_secs(5))
        .identity(reqwest::Identity::from_pem(id.pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = c
        .get(format!("https://localhost:{port}/open"))
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Writes the file whole under a temporary name, then renames it over `name`.
fn replace(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_client_certificate_fails_the_handshake_and_a_new_crl_applies_on_reload() {
    let ca = crl_ca();
    let alice = ca.client("alice", 1001);
    let bob = ca.client("bob", 1002);
    let dir = tempfile::tempdir().unwrap();
    let (server_crt, server_key) = ca.issue("localhost", 1, false);
    let crt = write(dir.path(), "server.crt", &server_crt);
    let key = write(dir.path(), "server.key", &server_key);
    let ca_pem = write(dir.path(), "ca.pem", &ca.cert.pem());
    write(dir.path(), "clients.crl", &ca.crl(1, &[&bob]));
    let up = Echo::start("u").await;
    let tls_port = free_port();
    // `client_crl` is relative to routes.yaml (line 8)
    let routes = format!(
        "version: 1\nserver:\n  tls:\n    listen: \"127.0.0.1:{tls_port}\"\n    cert: \"{crt}\"\n    key: \"{key}\"\n    client_ca: \"{ca_pem}\"\n    client_crl: clients.crl\n    client_auth: required\nupstreams:\n  u: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - name: open\n    match: {{ path_prefix: /open }}\n    upstream: u\n",
        up.addr
    );
    let config = dir.path().join("routes.yaml");
    std::fs::write(&config, &routes).unwrap();
    let gw = Gateway::spawn(dir, config.clone(), &[]);
    let dir = gw.dir.path().to_path_buf();

    assert_eq!(status(&ca, &alice, tls_port).await, Some(200));
    assert_eq!(status(&ca, &bob, tls_port).await, None, "bob is revoked");
    assert!(
        gw.metric("gateway_auth_failures_total{reason=\"bad_certificate\"}")
            .await
            .unwrap_or(0.0)
            >= 1.0
    );

    // the CA and CRL files are in the first fingerprint: no reload without an edit
    // (the 1 s content check would see a file missing from it)
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        gw.metric("gateway_config_reloads_total{result=\"success\"}")
            .await,
        None,
        "{}",
        gw.logs()
    );

    // a new CRL revokes alice instead: the watcher reloads, the next handshakes use it
    replace(&dir, "clients.crl", &ca.crl(2, &[&alice]));
    let swapped = wait_until(Duration::from_secs(10), || async {
        status(&ca, &alice, tls_port).await.is_none()
            && status(&ca, &bob, tls_port).await == Some(200)
    })
    .await;
    assert!(
        swapped.is_some(),
        "the new CRL applies; log:\n{}",
        gw.logs()
    );

    // a bad CRL: `check` names its line, the reload is refused, the lists stay
    std::fs::write(
        dir.join("clients.crl"),
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    let out = Command::new(gateway_bin())
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 8")
            && err.contains("server.tls.client_crl")
            && err.contains("clients.crl"),
        "{err}"
    );
    let r = gw.admin_reload().await;
    assert!(
        r.status().is_client_error() || r.status().is_server_error(),
        "{}",
        r.status()
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("client_crl"), "{body}");
    assert_eq!(status(&ca, &alice, tls_port).await, None);
    assert_eq!(status(&ca, &bob, tls_port).await, Some(200));

    // a missing file: refused the same way
    std::fs::remove_file(dir.join("clients.crl")).unwrap();
    let out = Command::new(gateway_bin())
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 8") && err.contains("cannot read"),
        "{err}"
    );
}
