//! What the TLS listener learnt of a client connection in its handshake, for plugins
//! (the `mtls` plugin's certificate; the wasm filter's `connection.*` properties):
//! once the handshake is over, [`conn`] reads the negotiated version, the SNI name and
//! the verified client certificate ([`parse`]) into a [`TlsConn`] kept in the
//! connection's TLS digest: once per connection, not per request.

use gateway_plugins::{ClientCert, San, TlsConn};
use pingora_core::protocols::tls::TlsRef;
use pingora_core::tls::CertificateDer;
use pingora_proxy::Session;
use std::fmt::Write;
use std::sync::Arc;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

/// The TLS facts of the session's connection (none on plain HTTP).
pub(super) fn tls_conn(session: &Session) -> Option<Arc<TlsConn>> {
    let d = session.digest()?.ssl_digest.as_ref()?;
    d.extension.get::<Arc<TlsConn>>().cloned()
}

/// The TLS facts of a connection whose handshake just completed.
pub(crate) fn conn(tls: &TlsRef) -> TlsConn {
    TlsConn {
        // rustls names versions `TLSv1_3`; Envoy (and OpenSSL) `TLSv1.3`
        version: tls.version().map(|v| match v {
            "TLSv1_2" => "TLSv1.2",
            "TLSv1_3" => "TLSv1.3",
            other => other,
        }),
        sni: tls.server_name().map(str::to_ascii_lowercase),
        cert: tls.peer_certificate_der().and_then(parse),
    }
}

/// Reads a DER certificate: subject CN, SANs, subject (RFC 4514), SHA-256 fingerprint.
fn parse(der: &[u8]) -> Option<ClientCert> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(s) => sans.push(San::Dns((*s).to_owned())),
                GeneralName::URI(s) => sans.push(San::Uri((*s).to_owned())),
                GeneralName::RFC822Name(s) => sans.push(San::Email((*s).to_owned())),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        sans.push(San::Ip(v4.into()));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        sans.push(San::Ip(v6.into()));
                    }
                }
                _ => {}
            }
        }
    }
    let digest = pingora_core::tls::hash_certificate(&CertificateDer::from(der));
    let mut fingerprint = String::with_capacity(64);
    for b in digest {
        let _ = write!(fingerprint, "{b:02x}");
    }
    Some(ClientCert {
        common_name,
        sans,
        subject: rfc4514(subject),
        fingerprint,
    })
}

/// A distinguished name as RFC 4514 writes it: last RDN first, `,` between RDNs, `+`
/// inside one, short names for the usual attributes, special characters escaped.
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type();
                    let key = match oid.to_id_string().as_str() {
                        "2.5.4.3" => "CN".to_string(),
                        "2.5.4.7" => "L".to_string(),
                        "2.5.4.8" => "ST".to_string(),
                        "2.5.4.10" => "O".to_string(),
                        "2.5.4.11" => "OU".to_string(),
                        "2.5.4.6" => "C".to_string(),
                        "2.5.4.9" => "STREET".to_string(),
                        "0.9.2342.19200300.100.1.25" => "DC".to_string(),
                        "0.9.2342.19200300.100.1.1" => "UID".to_string(),
                        other => other.to_string(),
                    };
                    let value = match attr.as_str() {
                        Ok(s) => escape(s),
                        Err(_) => {
                            let mut h = String::from("#");
                            for b in attr.attr_value().as_bytes() {
                                let _ = write!(h, "{b:02x}");
                            }
                            h
                        }
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_names_and_fingerprint() {
        let mut p = rcgen::CertificateParams::new(vec!["alice.example".to_string()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CountryName, "FR");
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example, Inc");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        p.subject_alt_names.push(rcgen::SanType::URI(
            rcgen::Ia5String::try_from("spiffe://example/alice").unwrap(),
        ));
        p.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            rcgen::Ia5String::try_from("alice@example.org").unwrap(),
        ));
        p.subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let c = parse(cert.der()).unwrap();
        assert_eq!(c.common_name.as_deref(), Some("alice"));
        assert_eq!(c.subject, "CN=alice,O=Example\\, Inc,C=FR");
        assert_eq!(
            c.sans,
            vec![
                San::Dns("alice.example".into()),
                San::Uri("spiffe://example/alice".into()),
                San::Email("alice@example.org".into()),
                San::Ip("127.0.0.1".parse().unwrap()),
            ]
        );
        assert_eq!(c.fingerprint.len(), 64);
        assert!(parse(b"not a certificate").is_none());
    }
}
