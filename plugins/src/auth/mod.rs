//! Authentication and authorization plugins: `jwt`, `api_key`, `basic_auth`, `token`
//! (API key or basic credentials exchanged for a short-lived JWT plus a refresh
//! token) and `rbac`. Each sets [`crate::Identity`] on success; every refusal goes
//! through [`deny`] so 401/403 answers, their challenges and the failure metrics are
//! the same everywhere.

mod answer;
pub mod api_key;
pub mod basic;
mod duration;
mod forward;
pub mod jwt;
pub mod mtls;
pub mod oauth2_introspection;
pub mod rbac;
pub mod token;

pub use answer::{deny, Reason};
pub(crate) use duration::parse_duration;
pub(crate) use forward::{strip_folded, Forwarding};
