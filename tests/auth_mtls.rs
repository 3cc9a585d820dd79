//! mTLS through a real gateway: client certificates verified on the TLS listener
//! against `server.tls.client_ca` and read by the `mtls` plugin; and upstream mTLS, a
//! backend that accepts the gateway only because of the pool's client certificate.
//!
//! A certificate from another CA is refused by the TLS handshake itself (the request
//! never reaches HTTP), whether the route has the `mtls` plugin or not.
#![allow(clippy::unwrap_used)]

mod common;
mod wasm_common;
use common::pki::Ca;
use common::*;

use pingora_core::tls::{
    CertificateDer, PrivateKeyDer, RootCertStore, ServerConfig, TlsAcceptor, WebPkiClientVerifier,
};
use rcgen::{Certificate, CertificateParams, DnType, KeyPair, SanType};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A certificate and its key, PEM.
struct Issued {
    cert: Certificate,
    key: KeyPair,
}

/// Issues a certificate named `cn` with the SANs `sans` (DNS names, or URIs).
fn issue(ca: &Ca, cn: &str, sans: &[&str], client: bool) -> Issued {
    let mut p = CertificateParams::new(
        sans.iter()
            .filter(|s| !s.contains("://"))
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for s in sans.iter().filter(|s| s.contains("://")) {
        p.subject_alt_names
            .push(SanType::URI(rcgen::Ia5String::try_from(*s).unwrap()));
    }
    p.distinguished_name
        .push(DnType::OrganizationName, "Example");
    p.distinguished_name.push(DnType::CommonName, cn);
    let (cert, key) = ca.sign(p, client);
    Issued { cert, key }
}

impl Issued {
    /// Writes `<name>.crt` and `<name>.key`; returns their paths.
    fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let c = dir.join(format!("{name}.crt"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, self.cert.pem()).unwrap();
        std::fs::write(&k, self.key.serialize_pem()).unwrap();
        (c, k)
    }

    fn identity(&self) -> reqwest::Identity {
        let pem = format!("{}{}", self.cert.pem(), self.key.serialize_pem());
        reqwest::Identity::from_pem(pem.as_bytes()).unwrap()
    }
}

fn write_ca(ca: &Ca, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(format!("{name}.pem"));
    std::fs::write(&p, ca.cert.pem()).unwrap();
    p
}

/// An HTTPS client trusting `ca`, presenting `id` if given, reaching `localhost` on
/// 127.0.0.1.
fn client(ca: &Ca, id: Option<reqwest::Identity>, port: u16) -> reqwest::Client {
    let mut b = ca.client_builder(port, Duration::from_secs(10));
    if let Some(id) = id {
        b = b.identity(id);
    }
    b.build().unwrap()
}

struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    alice: Issued,
    mallory: Issued,
    server_crt: PathBuf,
    server_key: PathBuf,
    ca_pem: PathBuf,
}

/// A proxy-wasm filter (WAT) that copies the request's protocol and the client
/// certificate's properties into request headers for the upstream.
const PEER_FILTER: &str = r#"
  (func (export "proxy_on_context_create") (param i32 i32))
  (func $copy (param $pp i32) (param $pl i32) (param $hp i32) (param $hl i32)
    (if (i32.eqz (call $prop (local.get $pp) (local.get $pl) (i32.const 0) (i32.const 4)))
      (then (drop (call $add (i32.const 0) (local.get $hp) (local.get $hl)
        (i32.load (i32.const 0)) (i32.load (i32.const 4)))))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $copy @"request\00protocol" @"x-wasm-protocol")
    (call $copy @"connection\00subject_peer_certificate" @"x-wasm-subject")
    (call $copy @"connection\00uri_san_peer_certificate" @"x-wasm-spiffe")
    (call $copy @"connection\00sha256_peer_certificate_digest" @"x-wasm-digest")
    (call $copy @"connection\00tls_version" @"x-wasm-tls-version")
    (call $copy @"connection\00requested_server_name" @"x-wasm-sni")
    (call $copy @"destination\00address" @"x-wasm-destination")
    (if (i32.eqz (call $prop @"connection\00mtls" (i32.const 0) (i32.const 4)))
      (then
        (if (i32.load8_u (i32.load (i32.const 0)))
          (then (drop (call $add (i32.const 0) @"x-wasm-mtls" @"yes")))
          (else (drop (call $add (i32.const 0) @"x-wasm-mtls" @"no"))))))
    (i32.const 0))
"#;

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("clients and server CA", vec![]);
    let other = Ca::new("another CA", vec![]);
    let server = issue(&ca, "localhost", &["localhost"], false);
    let (server_crt, server_key) = server.write(dir.path(), "server");
    let ca_pem = write_ca(&ca, dir.path(), "ca");
    let alice = issue(&ca, "alice", &["spiffe://example/alice"], true);
    wasm_common::write_filter(dir.path(), "peer.wasm", PEER_FILTER);
    let mallory = issue(&other, "alice", &["spiffe://example/alice"], true);
    Pki {
        dir,
        ca,
        alice,
        mallory,
        server_crt,
        server_key,
        ca_pem,
    }
}

fn table(p: &Pki, tls_port: u16, up: std::net::SocketAddr, client_auth: &str) -> String {
    format!(
        r#"version: 1
server:
  tls:
    listen: "127.0.0.1:{tls_port}"
    cert: "{}"
    key: "{}"
    client_ca: "{}"
    client_auth: {client_auth}
upstreams:
  u: {{ targets: [{{ addr: "{up}" }}] }}
routes:
  - name: secure
    match: {{ path_prefix: /secure }}
    upstream: u
    plugins: [{{ name: mtls }}]
  - name: spiffe
    match: {{ path_prefix: /spiffe }}
    upstream: u
    plugins: [{{ name: mtls, consumer_from: san_uri, allowed_consumers: ["spiffe://example/bob"] }}]
  - name: open
    match: {{ path_prefix: /open }}
    upstream: u
  - name: wasm
    match: {{ path_prefix: /wasm }}
    upstream: u
    plugins: [{{ name: wasm, module: "{}" }}]
"#,
        p.server_crt.display(),
        p.server_key.display(),
        p.ca_pem.display(),
        p.dir.path().join("peer.wasm").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_on_the_tls_listener() {
    let p = pki();
    let up = Echo::start("u").await;
    let tls_port = free_port();
    let gw = Gateway::start(&table(&p, tls_port, up.addr, "optional"));
    let base = format!("https://localhost:{tls_port}");

    // a good certificate: the consumer is its CN, sent upstream and logged
    let alice = client(&p.ca, Some(p.alice.identity()), tls_port);
    let r = alice
        .get(format!("{base}/secure"))
        .header("x-user-id", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "negotiated by ALPN");
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["headers"]["x-user-id"], "alice", "{b}");
    // the consumer from a SAN, outside the allow-list
    let r = alice.get(format!("{base}/spiffe")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "forbidden");

    // no certificate: 401 on the mtls route, the other route on the same listener works
    let anon = client(&p.ca, None, tls_port);
    let r = anon.get(format!("{base}/secure")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"], "unauthorized");
    let r = anon.get(format!("{base}/open")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // a wasm filter reads the certificate as Envoy's properties name it
    let b = get_json(&alice, &format!("{base}/wasm")).await;
    let h = &b["headers"];
    assert_eq!(h["x-wasm-mtls"], "yes", "{b}");
    assert_eq!(h["x-wasm-protocol"], "HTTP/2");
    assert_eq!(h["x-wasm-spiffe"], "spiffe://example/alice");
    assert!(
        h["x-wasm-subject"].as_str().unwrap().contains("CN=alice"),
        "{b}"
    );
    assert_eq!(h["x-wasm-digest"].as_str().unwrap().len(), 64, "{b}");
    // what the handshake negotiated, and the listener's address
    assert_eq!(h["x-wasm-tls-version"], "TLSv1.3", "{b}");
    assert_eq!(h["x-wasm-sni"], "localhost", "{b}");
    assert_eq!(h["x-wasm-destination"], format!("127.0.0.1:{tls_port}"));
    for (who, proto) in [(&anon, None), (&reqwest::Client::new(), Some("HTTP/1.1"))] {
        let url = match proto {
            None => format!("{base}/wasm"),
            Some(_) => gw.url("/wasm"),
        };
        let b = get_json(who, &url).await;
        let h = &b["headers"];
        assert_eq!(h["x-wasm-mtls"], "no", "{b}");
        assert!(h.get("x-wasm-subject").is_none(), "{b}");
        assert!(h.get("x-wasm-spiffe").is_none(), "{b}");
        if let Some(p) = proto {
            assert_eq!(h["x-wasm-protocol"], p, "{b}");
            // plain HTTP: no TLS version; the server name is empty, as in Envoy
            assert!(h.get("x-wasm-tls-version").is_none(), "{b}");
            assert_eq!(h["x-wasm-sni"], "", "{b}");
            assert_eq!(h["x-wasm-destination"], format!("127.0.0.1:{}", gw.port));
        } else {
            assert_eq!(h["x-wasm-sni"], "localhost", "{b}");
        }
    }
    // plain HTTP has no certificate either
    let r = reqwest::get(gw.url("/secure")).await.unwrap();
    assert_eq!(r.status(), 401);

    // a certificate from another CA (same CN) fails the handshake, on any route
    let mallory = client(&p.ca, Some(p.mallory.identity()), tls_port);
    for path in ["/secure", "/open"] {
        let r = mallory.get(format!("{base}{path}")).send().await;
        assert!(r.is_err(), "{path}: {:?}", r.map(|r| r.status()));
    }

    assert_eq!(
        gw.metric("gateway_auth_requests_total{method=\"mtls\"}")
            .await,
        Some(4.0)
    );
    assert_eq!(
        gw.metric("gateway_auth_failures_total{reason=\"missing\"}")
            .await,
        Some(2.0)
    );
    assert_eq!(
        gw.metric("gateway_auth_failures_total{reason=\"not_allowed\"}")
            .await,
        Some(1.0)
    );
    assert!(
        gw.metric("gateway_auth_failures_total{reason=\"bad_certificate\"}")
            .await
            .unwrap_or(0.0)
            >= 2.0
    );
    assert_eq!(
        gw.metric("gateway_requests_blocked_total{reason=\"auth\"}")
            .await,
        Some(3.0)
    );
    let logs = wait_until(Duration::from_secs(5), || async {
        gw.logs().contains("\"user_id\":\"alice\"")
    })
    .await;
    assert!(logs.is_some(), "{}", gw.logs());
    drop(p.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_refuse_clients_without_one() {
    let p = pki();
    let up = Echo::start("u").await;
    let tls_port = free_port();
    let _gw = Gateway::start(&table(&p, tls_port, up.addr, "required"));
    let base = format!("https://localhost:{tls_port}");
    let anon = client(&p.ca, None, tls_port);
    assert!(anon.get(format!("{base}/open")).send().await.is_err());
    let alice = client(&p.ca, Some(p.alice.identity()), tls_port);
    let r = alice.get(format!("{base}/open")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// An HTTPS echo backend that requires a client certificate signed by `client_ca`.
async fn mtls_backend(server: &Issued, client_ca: &Ca) -> std::net::SocketAddr {
    pingora_core::tls::install_default_crypto_provider();
    let mut roots = RootCertStore::empty();
    roots.add(client_ca.cert.der().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let key = PrivateKeyDer::try_from(server.key.serialize_der()).unwrap();
    let cfg = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![CertificateDer::from(server.cert.der().to_vec())], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = echo_app("backend", Duration::ZERO);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_mtls_presents_the_pool_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let backend_ca = Ca::new("backend CA", vec![]);
    let server = issue(&backend_ca, "backend.test", &["backend.test"], false);
    let gateway_id = issue(&backend_ca, "api-gateway", &[], true);
    let (gw_crt, gw_key) = gateway_id.write(dir.path(), "gateway");
    let ca_pem = write_ca(&backend_ca, dir.path(), "backend-ca");
    let addr = mtls_backend(&server, &backend_ca).await;

    let gw = Gateway::start(&format!(
        r#"version: 1
upstreams:
  with_cert:
    targets: [{{ addr: "{addr}" }}]
    host: backend.test
    tls: {{ client_cert: "{}", client_key: "{}", ca: "{}" }}
  without_cert:
    targets: [{{ addr: "{addr}" }}]
    host: backend.test
    tls: {{ ca: "{}" }}
routes:
  - {{ name: with, match: {{ path_prefix: /with }}, upstream: with_cert }}
  - {{ name: without, match: {{ path_prefix: /without }}, upstream: without_cert }}
  - {{ name: flow-with, match: {{ path: /flow/with }}, pipeline: [{{ upstream: with_cert, path: /step }}] }}
  - {{ name: flow-without, match: {{ path: /flow/without }}, pipeline: [{{ upstream: without_cert, path: /step }}] }}
"#,
        gw_crt.display(),
        gw_key.display(),
        ca_pem.display(),
        ca_pem.display()
    ));
    let r = reqwest::get(gw.url("/with/x")).await.unwrap();
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["upstream"], "backend");
    assert_eq!(b["headers"]["host"], "backend.test");
    // the same backend refuses the pool that has no client certificate
    let r = reqwest::get(gw.url("/without/x")).await.unwrap();
    assert_eq!(r.status(), 502);
    let refused = wait_until(Duration::from_secs(5), || async {
        gw.logs().contains("CertificateRequired")
    })
    .await;
    assert!(refused.is_some(), "{}", gw.logs());

    // flow steps present the pool's certificate too, and verify `host`'s certificate
    let c = reqwest::Client::new();
    let r = c
        .post(gw.url("/flow/with"))
        .json(&serde_json::json!({"prompt": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["result"]["upstream"], "backend", "{b}");
    assert_eq!(b["result"]["path"], "/step", "{b}");
    let r = c
        .post(gw.url("/flow/without"))
        .json(&serde_json::json!({"prompt": "x"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
}

fn check(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    std::fs::write(&routes, text).unwrap();
    let out = std::process::Command::new(gateway_bin())
        .arg("check")
        .arg(&routes)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout)
}

#[test]
fn bad_tls_settings_are_refused_at_their_place() {
    let err = check(
        r#"version: 1
server:
  tls: { listen: "127.0.0.1:8443", cert: /c, key: /k, client_auth: required }
upstreams:
  a:
    targets: [{ addr: "127.0.0.1:9" }]
    tls: { client_cert: /x.crt }
  b:
    targets: [{ addr: "127.0.0.1:9" }]
    tls: { ca: /ca.pem }
routes: []
"#,
    );
    assert!(err.contains("server.tls.client_auth"), "{err}");
    assert!(err.contains("upstreams.a.tls.client_cert"), "{err}");
    assert!(err.contains("upstreams.b.tls.ca"), "{err}");
    let err = check(
        r#"version: 1
upstreams:
  c:
    targets: [{ addr: "127.0.0.1:9" }]
    tls: { client_crt: /x.crt }
routes: []
"#,
    );
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("unknown field `client_crt`"), "{err}");
}
