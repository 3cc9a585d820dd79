//! Admin actions: operations a plugin offers on the admin API (purging a cache,
//! reading its figures) without the gateway's core naming the plugin. A plugin
//! registers a handler in [`crate::Shared`] under its own name and an action name; the
//! admin API serves it at `/admin/plugins/{plugin}/{action}` (bearer token as every
//! admin endpoint), passing the method and the JSON body, and answers with the JSON the
//! handler returns.

use std::sync::Arc;

/// One call of an admin action.
#[derive(Debug, Clone)]
pub struct AdminRequest {
    /// `GET`, `POST` or `DELETE`: the handler says which it takes.
    pub method: http::Method,
    /// The JSON body (`null` when the request had none).
    pub body: serde_json::Value,
}

/// Why an admin action refused a call; the admin API answers 400 or 405.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminActionError {
    /// The body is not what the action takes (400 `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// The action is called with another method (405; the methods it takes).
    #[error("this action takes {0}")]
    Method(&'static str),
}

/// A registered action: the request in, a JSON answer (200) or a refusal out.
pub type AdminAction =
    Arc<dyn Fn(AdminRequest) -> Result<serde_json::Value, AdminActionError> + Send + Sync>;
