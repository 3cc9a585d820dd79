//! The request's identity, set by an authentication plugin and read by later plugins
//! (rbac, rate_limit keyed by consumer), the access log (`user_id`), metrics and
//! upstream headers.

use std::collections::BTreeMap;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Jwt,
    ApiKey,
    Basic,
    OAuth2,
    Mtls,
}

impl CredentialKind {
    /// The `method` label of `gateway_auth_requests_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Jwt => "jwt",
            CredentialKind::ApiKey => "api_key",
            CredentialKind::Basic => "basic",
            CredentialKind::OAuth2 => "oauth2",
            CredentialKind::Mtls => "mtls",
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The consumer's name (a JWT `sub`, a key file's `name`, a certificate's CN...).
    pub consumer: String,
    pub credential: CredentialKind,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// Claims chosen for forwarding or later checks, as strings.
    pub claims: BTreeMap<String, String>,
    /// Whether `consumer` is a name configured in the gateway (a key file, an htpasswd
    /// file): only those are used as metric labels, so label cardinality stays bounded.
    pub configured: bool,
}

impl Identity {
    pub fn new(consumer: impl Into<String>, credential: CredentialKind) -> Self {
        Self {
            consumer: consumer.into(),
            credential,
            roles: Vec::new(),
            scopes: Vec::new(),
            claims: BTreeMap::new(),
            configured: false,
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}
