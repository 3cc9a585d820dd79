//! The harness's pieces: the valid credentials, the gateway configurations, sending one
//! variant, classifying what answered, and the property checks.

use super::*;

/// The valid key (consumer `alice`).
pub const ALICE_KEY: &str = "ak_split_view_alice_5b1f0c";
/// The identity the gateway forwards for it (`X-User-Id`), and its scopes (`X-Scopes`,
/// where the plugin forwards them).
pub const ALICE: &str = "alice";
pub const ALICE_SCOPES: &str = "users:read";

/// The second configuration: every policy of issue 17 relaxed, to show what each one
/// keeps out (and that the harness sees a split view when there is one).
pub(crate) const RELAXED: &str = "server:\n  allow_encoded: [slash, backslash, semicolon, percent, question_mark, hash]\n  underscore_headers: keep\n";

/// How the admin route is guarded: `api_key` (the corpus's `X-API-Key`), or `jwt`
/// (HS256; the harness sends a bearer token for alice in place of her key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    ApiKey,
    Jwt,
}

pub(crate) const JWT_SECRET: &str = "split-view-jwt-secret-0123456789abcdef";

/// The bearer tokens that stand in for the keys: alice's (valid for an hour), and one
/// signed with another secret for any other key.
pub(crate) struct Tokens {
    valid: Vec<u8>,
    invalid: Vec<u8>,
}

impl Tokens {
    pub(crate) fn new() -> Self {
        let exp = jsonwebtoken::get_current_timestamp() + 3600;
        let claims = serde_json::json!({"sub": ALICE, "scope": ALICE_SCOPES, "exp": exp});
        let sign = |secret: &str| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
            .into_bytes()
        };
        Tokens {
            valid: sign(JWT_SECRET),
            invalid: sign("another-secret-0123456789abcdef0123"),
        }
    }

    /// `Authorization: Bearer ...` for the key `key`.
    fn bearer(&self, key: &[u8]) -> Vec<u8> {
        let t = if key == ALICE_KEY.as_bytes() {
            &self.valid
        } else {
            &self.invalid
        };
        [b"Bearer ".as_slice(), t].concat()
    }
}

pub(crate) fn table(upstream: u16, server: &str, guard: Guard) -> String {
    let plugin = match guard {
        Guard::ApiKey => "{ name: api_key, keys_file: keys.yaml }",
        Guard::Jwt => "{ name: jwt, secret_env: SPLIT_VIEW_JWT_SECRET, algorithms: [HS256] }",
    };
    format!(
        r#"version: 1
{server}upstreams:
  app: {{ targets: [{{ addr: "127.0.0.1:{upstream}" }}] }}
routes:
  - name: admin
    match: {{ path_prefix: /api/v1/admin }}
    upstream: app
    plugins: [{plugin}]
  - name: public
    match: {{ path_prefix: /api/v1 }}
    upstream: app
"#
    )
}

pub(crate) fn start_gateway(upstream: u16, server: &str, guard: Guard) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let sha = hex::encode(Sha256::digest(ALICE_KEY.as_bytes()));
    std::fs::write(
        dir.path().join("keys.yaml"),
        format!("consumers:\n  - {{ name: {ALICE}, key_sha256: \"{sha}\", roles: [admin], scopes: [{ALICE_SCOPES}] }}\n"),
    )
    .unwrap();
    let config = dir.path().join("routes.yaml");
    std::fs::write(&config, table(upstream, server, guard)).unwrap();
    Gateway::spawn(
        dir,
        config,
        &[
            ("ACCESS_LOG", "off"),
            ("LOG_LEVEL", "warn"),
            ("SPLIT_VIEW_JWT_SECRET", JWT_SECRET),
        ],
    )
}

/// How one answer is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// The gateway answered itself (its JSON error), or refused the stream/connection.
    Refused,
    /// Forwarded; the unguarded handler ran.
    Unguarded,
    /// Forwarded; the upstream server answered without running a handler (its own
    /// 400/404/405, a redirect).
    UpstreamOther,
    /// The guarded handler ran.
    Guarded,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub class: Class,
    pub status: u16,
    /// The gateway's error kind, the path the handler saw, or how the exchange ended.
    pub detail: String,
    /// Identity values the handler saw (`X-User-Id` as its framework exposes it).
    pub ids: Vec<String>,
    pub scopes: Vec<String>,
    /// A guarded handler's answer appears anywhere on the connection.
    pub guarded_anywhere: bool,
    /// The answer carried `X-Request-ID`.
    pub request_id: Option<bool>,
}

pub(crate) fn classify(a: &client::Answer) -> Outcome {
    let mut handler = None;
    let mut path = String::new();
    let mut ids = Vec::new();
    let mut scopes = Vec::new();
    for line in a.body.lines() {
        if let Some(h) = line.strip_prefix("handler=") {
            if handler.is_some() {
                break;
            }
            handler = Some(h.to_string());
        } else if handler.is_some() {
            if let Some(p) = line.strip_prefix("path=") {
                path = p.to_string();
            } else if let Some(v) = line.strip_prefix("user_id=") {
                if !v.is_empty() {
                    ids.push(v.to_string());
                }
            } else if let Some(v) = line.strip_prefix("scopes=") {
                if !v.is_empty() {
                    scopes.push(v.to_string());
                }
            }
        }
    }
    let guarded_anywhere = a.raw.contains("handler=guarded") || a.body.contains("handler=guarded");
    let (class, detail) = match handler.as_deref() {
        Some("guarded") => (Class::Guarded, path),
        Some(_) => (Class::Unguarded, path),
        None => {
            let json: serde_json::Value =
                serde_json::from_str(&a.body).unwrap_or(serde_json::Value::Null);
            let gw_error = json.get("request_id").is_some();
            match json.get("error").and_then(|e| e.as_str()) {
                Some(kind) if gw_error => (Class::Refused, kind.to_string()),
                _ if a.status == 0 => (
                    Class::Refused,
                    a.ended.clone().unwrap_or_else(|| "no answer".into()),
                ),
                // no X-Request-ID: the HTTP engine's bare answer, never forwarded
                _ if a.request_id == Some(false) => (
                    Class::Refused,
                    format!("bare {} (no JSON, no X-Request-ID)", a.status),
                ),
                _ => (Class::UpstreamOther, format!("upstream {}", a.status)),
            }
        }
    };
    Outcome {
        class,
        status: a.status,
        detail,
        ids,
        scopes,
        guarded_anywhere,
        request_id: a.request_id,
    }
}

pub(crate) fn send(v: &Variant, port: u16, jwt: Option<&Tokens>) -> client::Answer {
    const END: &[u8] = b"GET /api/v1/end HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    // with a jwt guard, the key becomes a bearer token
    let cred = |(k, val): &(Vec<u8>, Vec<u8>)| -> (Vec<u8>, Vec<u8>) {
        match jwt {
            Some(t) if k.eq_ignore_ascii_case(b"x-api-key") => {
                let name: &[u8] = if k[0].is_ascii_uppercase() {
                    b"Authorization"
                } else {
                    b"authorization"
                };
                (name.to_vec(), t.bearer(val))
            }
            _ => (k.clone(), val.clone()),
        }
    };
    match &v.wire {
        Wire::Get { target, headers } => {
            let mut b = b"GET ".to_vec();
            b.extend_from_slice(target);
            b.extend_from_slice(format!(" HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n").as_bytes());
            for (k, val) in headers.iter().map(cred) {
                b.extend_from_slice(&k);
                b.extend_from_slice(b": ");
                b.extend_from_slice(&val);
                b.extend_from_slice(b"\r\n");
            }
            b.extend_from_slice(b"Connection: close\r\n\r\n");
            client::h1(port, &b)
        }
        Wire::Raw(raw) => {
            let mut b = raw.clone();
            if let Some(t) = jwt {
                let key = format!("X-API-Key: {ALICE_KEY}");
                if let Some(at) = b.windows(key.len()).position(|w| w == key.as_bytes()) {
                    let line = [
                        b"Authorization: ".as_slice(),
                        &t.bearer(ALICE_KEY.as_bytes()),
                    ]
                    .concat();
                    b.splice(at..at + key.len(), line);
                }
            }
            b.extend_from_slice(END);
            client::h1(port, &b)
        }
        Wire::H2Fields(fields) => {
            let fields: Vec<_> = fields.iter().map(cred).collect();
            client::h2(port, &fields)
        }
    }
}

/// What broke a property (or the harness's own control).
#[derive(Debug, Clone)]
pub struct Violation {
    pub stack: &'static str,
    pub variant: usize,
    pub what: String,
}

pub(crate) fn check(stack: &'static str, i: usize, v: &Variant, o: &Outcome) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut bad = |what: String| {
        out.push(Violation {
            stack,
            variant: i,
            what,
        })
    };
    if (o.class == Class::Guarded || o.guarded_anywhere) && v.cred != Cred::Valid {
        bad(format!(
            "WALK-AROUND: the guarded handler ran with credentials: {} (it saw path {}, identity {:?})",
            v.cred.label(),
            o.detail,
            o.ids
        ));
    }
    if o.class == Class::Guarded
        && v.cred == Cred::Valid
        && (o.ids != [ALICE.to_string()]
            || !(o.scopes.is_empty() || o.scopes == [ALICE_SCOPES.to_string()]))
    {
        bad(format!(
            "IDENTITY: the guarded handler saw X-User-Id {:?}, X-Scopes {:?} (the gateway set {ALICE:?}, {ALICE_SCOPES:?})",
            o.ids, o.scopes
        ));
    }
    out
}

pub(crate) fn control_failure(v: &Variant, o: &Outcome) -> Option<String> {
    let want = v.expect?;
    let ok = match want {
        // forwarded answers carry X-Request-ID (this also checks the h2c client's
        // reading of it)
        Expect::Guarded => {
            o.class == Class::Guarded && o.ids == [ALICE.to_string()] && o.request_id == Some(true)
        }
        Expect::Public => o.class == Class::Unguarded && o.request_id == Some(true),
        Expect::Refused => o.class == Class::Refused && o.status == 401,
    };
    (!ok).then(|| {
        format!(
            "{:?} expected, got {:?} {} ({})",
            want, o.class, o.status, o.detail
        )
    })
}
