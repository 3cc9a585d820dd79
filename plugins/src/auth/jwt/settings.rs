//! `jwt` settings.

use jsonwebtoken::Algorithm;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A signature algorithm a token may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    pub fn algorithm(self) -> Algorithm {
        match self {
            Alg::HS256 => Algorithm::HS256,
            Alg::HS384 => Algorithm::HS384,
            Alg::HS512 => Algorithm::HS512,
            Alg::RS256 => Algorithm::RS256,
            Alg::RS384 => Algorithm::RS384,
            Alg::RS512 => Algorithm::RS512,
            Alg::PS256 => Algorithm::PS256,
            Alg::PS384 => Algorithm::PS384,
            Alg::PS512 => Algorithm::PS512,
            Alg::ES256 => Algorithm::ES256,
            Alg::ES384 => Algorithm::ES384,
            Alg::EdDSA => Algorithm::EdDSA,
        }
    }
}

/// One value or a list.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

fn default_leeway() -> String {
    "30s".into()
}
fn default_refresh() -> String {
    "5m".into()
}
fn default_refetch() -> String {
    "30s".into()
}
fn default_roles_claim() -> String {
    "roles".into()
}
fn default_consumer_claim() -> String {
    "sub".into()
}
fn default_max_len() -> usize {
    8192
}
fn default_forward() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("sub".to_string(), "X-User-Id".to_string()),
        ("scope".to_string(), "X-Scopes".to_string()),
    ])
}

/// Verifies a bearer JWT (`Authorization: Bearer <token>`): signature with a key
/// pinned to its algorithms, `exp` (required), `nbf`, `iat`, `iss`, `aud`, and the
/// required scopes. At least one key source is needed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Environment variable holding the HMAC secret (HS256/384/512).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A PEM public key (RSA, EC or Ed25519), relative to routes.yaml.
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// A JWKS document (`{"keys": [...]}`) on disk, relative to routes.yaml; re-read on
    /// every reload.
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// A JWKS URL: fetched at start, refreshed every `jwks_refresh`, refetched on an
    /// unknown `kid` (at most once per `jwks_refetch_interval`). When the endpoint is
    /// down the keys already fetched keep working.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often the JWKS URL is fetched again.
    #[serde(default = "default_refresh")]
    pub jwks_refresh: String,
    /// Shortest time between two fetches caused by an unknown `kid`.
    #[serde(default = "default_refetch")]
    pub jwks_refetch_interval: String,
    /// Accepted algorithms (default: every algorithm of each key's type). Each key only
    /// accepts the algorithms of its own type (and its JWK `alg`, when given).
    #[serde(default)]
    pub algorithms: Option<Vec<Alg>>,
    /// Scopes the token must all carry (from `scope`, space separated, or `scp`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Accepted `iss` values; when given, `iss` is required.
    #[serde(default)]
    pub issuer: Option<OneOrMany>,
    /// Accepted `aud` values (one must match); when given, `aud` is required.
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway")]
    pub leeway: String,
    /// Claim holding the roles (an array or a space-separated string; dots walk into
    /// objects: `realm_access.roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Claim naming the consumer (the access log's `user_id`).
    #[serde(default = "default_consumer_claim")]
    pub consumer_claim: String,
    /// Claims forwarded upstream as headers (claim → header). `scope` forwards the
    /// scopes found in `scope` or `scp`, space separated. Client-sent copies of these
    /// headers are always removed.
    #[serde(default = "default_forward")]
    pub forward_claims: BTreeMap<String, String>,
    /// Longest accepted token, in bytes; longer ones are refused unread.
    #[serde(default = "default_max_len")]
    pub max_token_length: usize,
}
