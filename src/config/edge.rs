//! routes.yaml's edge policies: what the gateway refuses or drops so that every upstream
//! reads a request the way the gateway did (docs/security.md).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A character whose percent-encoding in a path upstreams read differently from the
/// gateway (a `%2F` is one segment for the router, a `/` for FastAPI or nginx). A path
/// carrying one is refused `400 ambiguous_path` unless the route (`allow_encoded`) or
/// the server (`server.allow_encoded`) allows it. An encoded NUL is always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EncodedChar {
    /// `%2F` (`/`).
    Slash,
    /// `%5C` (`\`), and a raw `\`, which some servers read as `/`.
    Backslash,
    /// `%3B` (`;`), and a raw `;`, which Java servers read as the start of path
    /// parameters (`/admin;x/users` is `/admin/users` to Tomcat and Spring).
    Semicolon,
    /// `%25` (`%`): decoded twice, `%252F` becomes `/`.
    Percent,
    /// `%3F` (`?`).
    QuestionMark,
    /// `%23` (`#`).
    Hash,
}

impl EncodedChar {
    pub const ALL: [EncodedChar; 6] = [
        EncodedChar::Slash,
        EncodedChar::Backslash,
        EncodedChar::Semicolon,
        EncodedChar::Percent,
        EncodedChar::QuestionMark,
        EncodedChar::Hash,
    ];

    /// Its bit in an [`crate::router::EncodedSet`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The name used in routes.yaml.
    pub const fn name(self) -> &'static str {
        match self {
            EncodedChar::Slash => "slash",
            EncodedChar::Backslash => "backslash",
            EncodedChar::Semicolon => "semicolon",
            EncodedChar::Percent => "percent",
            EncodedChar::QuestionMark => "question_mark",
            EncodedChar::Hash => "hash",
        }
    }
}

/// What happens to a request header whose name contains `_` (`X_User_Id`), which
/// CGI, WSGI, PHP and others fold together with `X-User-Id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnderscoreHeaders {
    /// Removed before plugins and upstreams see the request (nginx's default).
    #[default]
    Drop,
    /// The request is refused `400 underscore_header`.
    Reject,
    /// Forwarded as they are. Identity headers set by auth plugins are still protected:
    /// every spelling of them is removed.
    Keep,
}
