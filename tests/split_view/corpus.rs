//! The generated corpus: request variants aimed at the guarded path
//! `/api/v1/admin/users`, in families (the rows of the matrix). Every path variant is
//! sent over HTTP/1.1 and h2c without credentials; header variants are sent with and
//! without a valid API key; a few controls check that the harness itself sees what it
//! should (a valid key reaches the guarded handler, no key is refused, the public
//! handler answers).

use std::collections::HashSet;

pub const GUARDED: &str = "/api/v1/admin/users";
/// The forged identity values a client sends; no guarded handler may ever see one.
pub const FORGED: &str = "forged-admin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cred {
    /// No credential.
    None,
    /// A key the gateway does not know.
    Invalid,
    /// A valid key (consumer `alice`).
    Valid,
}

impl Cred {
    pub fn label(self) -> &'static str {
        match self {
            Cred::None => "none",
            Cred::Invalid => "invalid",
            Cred::Valid => "valid",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    H1,
    H2c,
}

impl Proto {
    pub fn label(self) -> &'static str {
        match self {
            Proto::H1 => "h1",
            Proto::H2c => "h2c",
        }
    }
}

/// What a control variant must give (the harness's own sanity check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Guarded,
    Public,
    Refused,
}

/// How the request is put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Wire {
    /// `GET <target>` with these extra header lines (raw bytes, in order).
    Get {
        target: Vec<u8>,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// A whole HTTP/1.1 byte stream (smuggling attempts); the harness appends a
    /// final `Connection: close` request to the public path.
    Raw(Vec<u8>),
    /// h2c: every field of the HEADERS frame (pseudo-headers included), in order.
    H2Fields(Vec<(Vec<u8>, Vec<u8>)>),
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub family: &'static str,
    /// What the variant is, readable (the target as sent, with non-printable bytes escaped).
    pub name: String,
    pub proto: Proto,
    pub cred: Cred,
    pub wire: Wire,
    pub expect: Option<Expect>,
}

/// Printable form of raw bytes.
pub fn show(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'|' => s.push_str("\\x7c"),
            0x21..=0x7e => s.push(c as char),
            b' ' => s.push_str("\\x20"),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

use crate::heads::{forged_headers, h1_header_lines, h2_tricks, smuggling};
use crate::paths::path_variants;

/// The whole corpus, deduplicated, in a stable order.
pub fn corpus() -> Vec<Variant> {
    let mut out: Vec<Variant> = Vec::new();
    let b = |s: &str| s.as_bytes().to_vec();
    let h2_base = |path: &[u8]| {
        vec![
            (b(":method"), b("GET")),
            (b(":scheme"), b("http")),
            (b(":authority"), b("127.0.0.1")),
            (b(":path"), path.to_vec()),
        ]
    };
    // controls
    let key = |c: Cred| -> Vec<(Vec<u8>, Vec<u8>)> {
        match c {
            Cred::None => vec![],
            Cred::Invalid => vec![(b("X-API-Key"), b("ak_nobody_0000000000"))],
            Cred::Valid => vec![(b("X-API-Key"), b(super::ALICE_KEY))],
        }
    };
    for proto in [Proto::H1, Proto::H2c] {
        for (cred, target, expect) in [
            (Cred::Valid, GUARDED, Expect::Guarded),
            (Cred::None, GUARDED, Expect::Refused),
            (Cred::Invalid, GUARDED, Expect::Refused),
            (Cred::None, "/api/v1/public", Expect::Public),
        ] {
            let wire = match proto {
                Proto::H1 => Wire::Get {
                    target: b(target),
                    headers: key(cred),
                },
                Proto::H2c => {
                    let mut f = h2_base(target.as_bytes());
                    f.extend(
                        key(cred)
                            .into_iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v)),
                    );
                    Wire::H2Fields(f)
                }
            };
            out.push(Variant {
                family: "control",
                name: target.to_string(),
                proto,
                cred,
                wire,
                expect: Some(expect),
            });
        }
    }
    // path variants, no credential, both protocols
    for (family, target) in path_variants() {
        for proto in [Proto::H1, Proto::H2c] {
            let wire = match proto {
                Proto::H1 => Wire::Get {
                    target: target.clone(),
                    headers: vec![],
                },
                Proto::H2c => Wire::H2Fields(h2_base(&target)),
            };
            out.push(Variant {
                family,
                name: show(&target),
                proto,
                cred: Cred::None,
                wire,
                expect: None,
            });
        }
    }
    // identity headers: guarded path with and without a valid key, public path without
    for (name, fields) in forged_headers() {
        for (cred, target) in [
            (Cred::None, GUARDED),
            (Cred::Valid, GUARDED),
            (Cred::None, "/api/v1/public"),
        ] {
            for proto in [Proto::H1, Proto::H2c] {
                let mut headers = key(cred);
                headers.extend(fields.iter().cloned());
                let wire = match proto {
                    Proto::H1 => Wire::Get {
                        target: b(target),
                        headers,
                    },
                    Proto::H2c => {
                        let mut f = h2_base(target.as_bytes());
                        f.extend(
                            headers
                                .into_iter()
                                .map(|(k, v)| (k.to_ascii_lowercase(), v)),
                        );
                        Wire::H2Fields(f)
                    }
                };
                out.push(Variant {
                    family: "identity-header",
                    name: format!("{name} on {target}"),
                    proto,
                    cred,
                    wire,
                    expect: None,
                });
            }
        }
    }
    for (name, line) in h1_header_lines() {
        for cred in [Cred::None, Cred::Valid] {
            let mut raw = format!("GET {GUARDED} HTTP/1.1\r\nHost: t\r\n").into_bytes();
            if cred == Cred::Valid {
                raw.extend_from_slice(format!("X-API-Key: {}\r\n", super::ALICE_KEY).as_bytes());
            }
            raw.extend_from_slice(&line);
            raw.extend_from_slice(b"\r\n");
            out.push(Variant {
                family: "identity-header",
                name: format!("{name} on {GUARDED}"),
                proto: Proto::H1,
                cred,
                wire: Wire::Raw(raw),
                expect: None,
            });
        }
    }
    for (name, raw) in smuggling() {
        out.push(Variant {
            family: "smuggling",
            name: name.to_string(),
            proto: Proto::H1,
            cred: Cred::None,
            wire: Wire::Raw(raw),
            expect: None,
        });
    }
    for (name, fields) in h2_tricks() {
        out.push(Variant {
            family: "h2-fields",
            name: name.to_string(),
            proto: Proto::H2c,
            cred: Cred::None,
            wire: Wire::H2Fields(fields),
            expect: None,
        });
    }
    let mut seen = HashSet::new();
    out.retain(|v| seen.insert((v.proto, v.cred, v.wire.clone())));
    out
}
