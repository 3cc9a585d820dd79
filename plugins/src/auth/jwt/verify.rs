//! Checking one token: key choice by `kid` and pinned algorithm, signature, time
//! claims (`exp` required, `nbf`, `iat` with leeway), `iss`, `aud`.

use super::jwks::JwksCache;
use super::keys::Key;
use crate::auth::Reason;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Keys verifying tokens for one plugin instance.
pub struct Verifier {
    /// Keys known at build (secret, PEM file, JWKS file).
    pub fixed: Vec<Key>,
    pub remote: Option<Arc<JwksCache>>,
    pub refetch_interval: Duration,
    /// The accepted algorithms (`None`: each key's own family).
    pub accepted: Option<Vec<Algorithm>>,
    /// One validation per algorithm (`algorithms` = that one only).
    pub validations: HashMap<Algorithm, Validation>,
    pub leeway: u64,
    pub max_len: usize,
    /// With one fixed key and no JWKS URL, the validation of every algorithm that key
    /// accepts: the token is checked in one pass, with no key choice to make.
    pub single: Option<Validation>,
}

/// A refusal: its reason and a message safe to send (never the token).
pub type Refusal = (Reason, String);

/// The outcome: claims, a refusal, or the key source unavailable (503).
pub enum Checked {
    Valid(Map<String, Value>),
    Refused(Refusal),
    Unavailable(String),
}

fn refused(r: Reason, m: impl Into<String>) -> Checked {
    Checked::Refused((r, m.into()))
}

/// The `alg` a header names, for a clear refusal of `none` and unknown names.
fn header_alg(token: &str) -> Option<String> {
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_owned)
}

/// Whether the header has `crit` (RFC 7515 §4.1.11): it names extensions the
/// recipient MUST understand, and this gateway implements none, so such a token is
/// refused. The JSON is parsed only when its bytes could hold the name (`crit`, or an
/// escape that could spell it).
fn has_crit(token: &str) -> bool {
    let Some(head) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head) else {
        return false; // refused later as malformed
    };
    let may = bytes.windows(4).any(|w| w == b"crit") || bytes.contains(&b'\\');
    may && serde_json::from_slice::<Map<String, Value>>(&bytes)
        .is_ok_and(|h| h.contains_key("crit"))
}

/// A header that does not parse: an algorithm we do not know (`none`), or garbage.
fn bad_header(token: &str) -> Checked {
    match header_alg(token) {
        Some(a) => refused(
            Reason::WrongAlgorithm,
            format!("algorithm `{}` is not accepted", a.escape_default()),
        ),
        None => refused(Reason::Malformed, "malformed token"),
    }
}

/// Maps a library error once a key was tried.
fn reason_of(e: &ErrorKind) -> Refusal {
    match e {
        ErrorKind::InvalidSignature => (Reason::BadSignature, "bad signature".into()),
        ErrorKind::ExpiredSignature => (Reason::Expired, "token expired".into()),
        ErrorKind::ImmatureSignature => (Reason::NotYetValid, "token not yet valid (nbf)".into()),
        ErrorKind::InvalidIssuer => (Reason::WrongIssuer, "issuer not accepted".into()),
        ErrorKind::InvalidAudience => (Reason::WrongAudience, "audience not accepted".into()),
        ErrorKind::InvalidAlgorithm => (
            Reason::WrongAlgorithm,
            "algorithm not accepted for this key".into(),
        ),
        ErrorKind::MissingRequiredClaim(c) => {
            (Reason::Malformed, format!("required claim `{c}` missing"))
        }
        ErrorKind::InvalidClaimFormat(c) => {
            (Reason::Malformed, format!("claim `{c}` has the wrong type"))
        }
        ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey => {
            (Reason::BadSignature, "bad signature".into())
        }
        _ => (Reason::Malformed, "malformed token".into()),
    }
}

impl Verifier {
    /// Checks `token` (the bearer credential) and returns its claims.
    pub async fn check(&self, token: &str) -> Checked {
        if token.len() > self.max_len {
            return refused(Reason::Malformed, "token too long");
        }
        let b64url = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
        if token.split('.').count() != 3 || !token.bytes().all(b64url) {
            return refused(Reason::Malformed, "malformed token");
        }
        if has_crit(token) {
            return refused(
                Reason::Malformed,
                "the token's header names critical extensions (crit) this gateway does not implement",
            );
        }
        if let (Some(v), [key]) = (&self.single, self.fixed.as_slice()) {
            return match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, v) {
                Ok(data) => self.check_iat(data.claims),
                Err(e) => match e.kind() {
                    ErrorKind::InvalidAlgorithm => refused(
                        Reason::WrongAlgorithm,
                        "algorithm not accepted for this key",
                    ),
                    ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_)
                        if jsonwebtoken::decode_header(token).is_err() =>
                    {
                        bad_header(token)
                    }
                    k => Checked::Refused(reason_of(k)),
                },
            };
        }
        let header = match jsonwebtoken::decode_header(token) {
            Ok(h) => h,
            Err(_) => return bad_header(token),
        };
        let Some(validation) = self.validations.get(&header.alg) else {
            return refused(
                Reason::WrongAlgorithm,
                format!("algorithm {:?} is not accepted", header.alg),
            );
        };
        let mut remote = self.remote.as_ref().map(|r| r.keys());
        let kid = header.kid.as_deref();
        // an unknown kid: fetch the JWKS again, at most once per interval
        if let (Some(kid), Some(cache)) = (kid, self.remote.as_ref()) {
            let known = |ks: &[Key]| ks.iter().any(|k| k.kid.as_deref() == Some(kid));
            if !known(&self.fixed)
                && !remote.as_deref().is_some_and(|r| known(r))
                && cache.refetch_for_unknown_kid(self.refetch_interval).await
            {
                remote = Some(cache.keys());
            }
        }
        if let Some(cache) = &self.remote {
            if !cache.is_loaded() && self.fixed.is_empty() {
                return Checked::Unavailable("no JWKS key fetched yet".into());
            }
        }
        let all: Vec<&Key> = self
            .fixed
            .iter()
            .chain(remote.as_deref().into_iter().flatten())
            .collect();
        let candidates: Vec<&Key> = match kid {
            Some(kid) if all.iter().any(|k| k.kid.as_deref() == Some(kid)) => all
                .into_iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            // a kid is only a hint for keys that have none (a secret, a PEM file)
            Some(_) => all.into_iter().filter(|k| k.kid.is_none()).collect(),
            None => all,
        };
        if candidates.is_empty() {
            return refused(Reason::UnknownKey, "no key for this token's `kid`");
        }
        let accepted = self.accepted.as_deref();
        let pinned: Vec<&Key> = candidates
            .into_iter()
            .filter(|k| k.allows(header.alg, accepted))
            .collect();
        if pinned.is_empty() {
            return refused(
                Reason::WrongAlgorithm,
                format!("algorithm {:?} is not accepted for this key", header.alg),
            );
        }
        let mut last = (Reason::BadSignature, "bad signature".to_string());
        for k in pinned {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, validation) {
                Ok(data) => return self.check_iat(data.claims),
                Err(e) => {
                    last = reason_of(e.kind());
                    if last.0 != Reason::BadSignature {
                        // the signature held (or the token is broken): no other key helps
                        break;
                    }
                }
            }
        }
        Checked::Refused(last)
    }

    /// `iat`, when present, is a number not in the future (beyond the leeway).
    fn check_iat(&self, claims: Map<String, Value>) -> Checked {
        match claims.get("iat") {
            None => Checked::Valid(claims),
            Some(v) => match v.as_f64() {
                None => refused(Reason::Malformed, "claim `iat` has the wrong type"),
                Some(iat) => {
                    let now = jsonwebtoken::get_current_timestamp() as f64;
                    if iat > now + self.leeway as f64 {
                        refused(Reason::NotYetValid, "token issued in the future (iat)")
                    } else {
                        Checked::Valid(claims)
                    }
                }
            },
        }
    }
}

/// The validation of tokens signed with `alg`.
pub fn validation(
    algs: &[Algorithm],
    leeway: u64,
    issuer: Option<&[String]>,
    audience: Option<&[String]>,
) -> Validation {
    let mut v = Validation::new(algs.first().copied().unwrap_or(Algorithm::HS256));
    v.algorithms = algs.to_vec();
    v.leeway = leeway;
    v.validate_exp = true;
    v.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(iss) = issuer {
        v.set_issuer(iss);
        required.push("iss");
    }
    match audience {
        Some(aud) => {
            v.set_audience(aud);
            required.push("aud");
        }
        None => v.validate_aud = false,
    }
    v.set_required_spec_claims(&required);
    v
}
