//! What a plugin adds to the OpenAPI description of the routes it is on: security
//! schemes, the answers it may give, headers on every answer, the request body it
//! accepts, and operations it answers itself. The gateway's OpenAPI builder asks each
//! plugin of a chain through [`crate::Factory::api_doc`] and never names one.

use serde_json::{Map, Value};

/// An answer a plugin may give instead of the upstream's (the gateway's JSON error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAnswer {
    pub status: u16,
    pub description: &'static str,
    /// Response headers it carries (`components.headers` names).
    pub headers: &'static [&'static str],
}

impl ApiAnswer {
    pub const fn new(
        status: u16,
        description: &'static str,
        headers: &'static [&'static str],
    ) -> Self {
        Self {
            status,
            description,
            headers,
        }
    }
}

/// The answers of a plugin that authenticates (401 with a challenge, 403 for a missing
/// scope or role).
pub const AUTH_ANSWERS: [ApiAnswer; 2] = [
    ApiAnswer::new(
        401,
        "No valid credential (`unauthorized`).",
        &["WWW-Authenticate"],
    ),
    ApiAnswer::new(
        403,
        "Authenticated, but a required scope or role is missing (`forbidden`).",
        &[],
    ),
];

/// A plugin whose dependency (Redis, an HTTP endpoint) can fail: 503.
pub const DEPENDENCY_ANSWER: ApiAnswer = ApiAnswer::new(
    503,
    "A plugin's dependency cannot answer (`dependency_unavailable`).",
    &["Retry-After"],
);

/// A policy refusal (403).
pub const POLICY_ANSWER: ApiAnswer =
    ApiAnswer::new(403, "Refused by the route's policy (`forbidden`).", &[]);

/// An operation a plugin answers itself, `POST <route path>/<suffix>`.
#[derive(Debug, Clone)]
pub struct ApiEndpoint {
    pub suffix: &'static str,
    pub summary: &'static str,
    /// The component schema of the required JSON body, if it takes one.
    pub request: Option<&'static str>,
    /// The schema of the 200 answer.
    pub ok: Value,
    /// Its other answers.
    pub answers: Vec<ApiAnswer>,
}

/// A plugin's contribution to the OpenAPI document of a route.
#[derive(Debug, Clone, Default)]
pub struct ApiDoc {
    /// The credentials it accepts: alternatives, each a security scheme component
    /// (name, scheme object). Every plugin of a chain must pass.
    pub security: Vec<(String, Value)>,
    /// Answers it may give.
    pub answers: Vec<ApiAnswer>,
    /// Response headers on every answer of the route (rate-limit headers).
    pub headers_everywhere: Vec<&'static str>,
    /// The JSON Schema the request body must match.
    pub request_body: Option<Value>,
    /// Operations it answers itself; they replace the route's own.
    pub endpoints: Vec<ApiEndpoint>,
    /// The tag (name, description) of those operations.
    pub tag: Option<(&'static str, &'static str)>,
    /// Component schemas they reference.
    pub schemas: Map<String, Value>,
}

impl ApiDoc {
    /// Only answers.
    pub fn answers(answers: impl IntoIterator<Item = ApiAnswer>) -> Self {
        Self {
            answers: answers.into_iter().collect(),
            ..Self::default()
        }
    }

    /// An authenticating plugin: its security schemes and [`AUTH_ANSWERS`].
    pub fn auth(security: Vec<(String, Value)>) -> Self {
        Self {
            security,
            answers: AUTH_ANSWERS.to_vec(),
            ..Self::default()
        }
    }

    /// Adds an answer.
    pub fn with(mut self, a: ApiAnswer) -> Self {
        self.answers.push(a);
        self
    }
}

/// A component name made of the characters OpenAPI allows (`[A-Za-z0-9._-]`).
pub fn component_key(parts: &[&str]) -> String {
    parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// "A ... Needs the scopes: a, b." and the scheme key with the scopes, for the bearer
/// schemes of `jwt` and `oauth2_introspection`.
pub fn bearer_with_scopes(
    base_key: &str,
    description: &str,
    scopes: &[String],
) -> (String, String) {
    let mut desc = description.to_string();
    if scopes.is_empty() {
        return (base_key.to_string(), desc);
    }
    desc.push_str(&format!(" Needs the scopes: {}.", scopes.join(", ")));
    (component_key(&[base_key, &scopes.join("-")]), desc)
}
