//! A test CA (rcgen) that signs server and client certificates, and an HTTPS client
//! that trusts it and reaches `localhost` on 127.0.0.1, for the mTLS tests.

use std::time::Duration;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub struct Ca {
    pub cert: Certificate,
    pub key: KeyPair,
}

impl Ca {
    /// A self-signed CA named `name`, with the key usages `usages` (none: rcgen's).
    pub fn new(name: &str, usages: Vec<KeyUsagePurpose>) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = usages;
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// Signs `p` with a fresh key, as a client (`ClientAuth`) or a server
    /// (`ServerAuth`) certificate.
    pub fn sign(&self, mut p: CertificateParams, client: bool) -> (Certificate, KeyPair) {
        p.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert, key)
    }

    /// A client builder trusting this CA that reaches `localhost` on 127.0.0.1:`port`.
    pub fn client_builder(&self, port: u16, timeout: Duration) -> reqwest::ClientBuilder {
        let root = reqwest::Certificate::from_pem(self.cert.pem().as_bytes()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(root)
            .resolve("localhost", ([127, 0, 0, 1], port).into())
            .timeout(timeout)
    }
}
