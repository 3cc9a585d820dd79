//! Where a plugin belongs in a chain: Kong's `PRIORITY` and pingora's
//! `HttpModule::order`, as named stages. The chain still runs in the order routes.yaml
//! lists it (the contract: global plugins first, then the route's); the gateway reads
//! the stages to refuse an order that opens a hole, never to reorder silently.

/// A plugin's request-phase stage, in the order a chain should take them
/// ([`super::Plugin::stage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Decides from the connection and the request line alone (`ip_filter`, `cors`).
    Admit,
    /// Finds who is calling and sets the identity (`jwt`, `api_key`, ...).
    Authenticate,
    /// Decides on that identity (`rbac`).
    Authorize,
    /// Counts and limits (`rate_limit`, `concurrency_limit`, `body_limit`).
    Limit,
    /// Checks or rewrites requests and answers (`headers`, `validate`, `compress`).
    Transform,
    /// Answers from responses stored for earlier requests (`cache`): it must come after
    /// every plugin that refuses callers, or a stored answer would reach a caller those
    /// plugins refuse.
    Serve,
}

impl Stage {
    /// Whether plugins of this stage refuse requests on who or where the caller is:
    /// none of them may come after a [`Stage::Serve`] plugin in a chain.
    pub fn guards_access(self) -> bool {
        matches!(self, Stage::Admit | Stage::Authenticate | Stage::Authorize)
    }

    /// The stage's name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Admit => "admit",
            Stage::Authenticate => "authenticate",
            Stage::Authorize => "authorize",
            Stage::Limit => "limit",
            Stage::Transform => "transform",
            Stage::Serve => "serve",
        }
    }
}
