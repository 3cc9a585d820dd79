//! Verification keys and the algorithms each is pinned to.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an RSA, EC or Ed25519 public key in PEM: {0}")]
    Pem(#[source] jsonwebtoken::errors::Error),
    /// The entry is not a JWK.
    #[error("{0}")]
    NotJwk(#[source] serde_json::Error),
    /// A JWK whose key material does not make a key.
    #[error("{0}")]
    Unusable(#[source] jsonwebtoken::errors::Error),
    #[error("its `alg` does not fit its key type")]
    AlgMismatch,
}

/// A JWKS entry that was skipped, with its index in `keys`.
#[derive(Debug, thiserror::Error)]
#[error("keys[{index}]: {source}")]
pub struct SkippedKey {
    pub index: usize,
    #[source]
    pub source: KeyError,
}

/// Why a JWKS document (a file, or a download) gives no keys.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("no `keys` array")]
    NoKeys,
    #[error("no HTTP client")]
    NoClient,
    #[error("{0}")]
    Http(#[source] reqwest::Error),
    #[error("status {0}")]
    Status(reqwest::StatusCode),
    #[error("document larger than 1 MiB")]
    TooLarge,
}

/// A verification key: a token is checked with it only if its `alg` is of the key's
/// type, is the key's own JWK `alg` when it has one, and is among the route's
/// accepted algorithms. So `alg: none` and HS/RS key confusion never reach a verifier.
pub struct Key {
    pub kid: Option<String>,
    pub key: DecodingKey,
    /// The JWK's `alg`, when it named one.
    pub alg: Option<Algorithm>,
}

impl Key {
    /// Whether a token signed with `alg` may be verified with this key.
    pub fn allows(&self, alg: Algorithm, accepted: Option<&[Algorithm]>) -> bool {
        alg.family() == self.key.family()
            && self.alg.is_none_or(|a| a == alg)
            && accepted.is_none_or(|list| list.contains(&alg))
    }

    /// A key from a PEM public key (RSA, EC or Ed25519).
    pub fn from_pem(pem: &[u8]) -> Result<Key, KeyError> {
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(KeyError::Pem)?;
        Ok(Key {
            kid: None,
            key,
            alg: None,
        })
    }

    /// A key from a JWK; `None` for keys that are not for signatures or unsupported.
    pub fn from_jwk(jwk: &Jwk) -> Result<Option<Key>, KeyError> {
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            return Ok(None);
        }
        let alg = match jwk.common.key_algorithm {
            Some(a) => match a.to_string().parse::<Algorithm>() {
                Ok(a) => Some(a),
                Err(_) => return Ok(None), // an encryption algorithm: not for us
            },
            None => None,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(KeyError::Unusable)?;
        if alg.is_some_and(|a| a.family() != key.family()) {
            return Err(KeyError::AlgMismatch);
        }
        Ok(Some(Key {
            kid: jwk.common.key_id.clone(),
            key,
            alg,
        }))
    }
}

/// Parses a JWKS document; keys that cannot be used are skipped, with the reason.
pub fn parse_jwks(text: &[u8]) -> Result<(Vec<Key>, Vec<SkippedKey>), JwksError> {
    let doc: serde_json::Value = serde_json::from_slice(text).map_err(JwksError::NotJson)?;
    let list = doc
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or(JwksError::NoKeys)?;
    let mut keys = Vec::with_capacity(list.len());
    let mut skipped = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match serde_json::from_value::<Jwk>(v.clone())
            .map_err(KeyError::NotJwk)
            .and_then(|j| Key::from_jwk(&j))
        {
            Ok(Some(k)) => keys.push(k),
            Ok(None) => {}
            Err(source) => skipped.push(SkippedKey { index: i, source }),
        }
    }
    Ok((keys, skipped))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pinning() {
        let k = Key {
            kid: None,
            key: DecodingKey::from_secret(b"s"),
            alg: None,
        };
        assert!(k.allows(Algorithm::HS256, None));
        assert!(!k.allows(Algorithm::RS256, None));
        assert!(!k.allows(Algorithm::HS384, Some(&[Algorithm::HS256])));
        let (keys, skipped) = parse_jwks(
            br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"a"},{"kty":"RSA","n":"!!","e":"AQAB","kid":"b"},{"kty":"oct","k":"c2VjcmV0","alg":"RS256"}]}"#,
        )
        .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("a"));
        assert!(!keys[0].allows(Algorithm::HS512, None));
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(matches!(
            skipped[1],
            SkippedKey {
                index: 2,
                source: KeyError::AlgMismatch
            }
        ));
        assert_eq!(
            skipped[1].to_string(),
            "keys[2]: its `alg` does not fit its key type"
        );
    }
}
