//! The gateway's plugins: the plugin model ([`Plugin`] and its phases, the request's
//! [`Identity`], [`Shared`] state that outlives reloads, typed settings with located
//! errors) and every built-in plugin, each configured in routes.yaml by `name` plus
//! its own fields, per route or globally.
//!
//! Writing a plugin: see `docs/plugins/writing-a-plugin.md`. In short, a module holds a
//! settings struct (serde + schemars, `deny_unknown_fields`), a type implementing
//! [`Plugin`] and a [`Factory`]; one line in [`registry`] makes it available.

pub mod auth;
mod model;
pub mod policy;
pub mod registry;
pub mod wasm;

pub use auth::api_key::ApiKey;
pub use auth::basic::BasicAuth;
pub use auth::jwt::Jwt;
pub use auth::mtls::Mtls;
pub use auth::oauth2_introspection::Introspection;
pub use auth::rbac::Rbac;
pub use auth::token::Token;
pub use model::*;
pub use policy::body_limit::BodyLimit;
pub use policy::concurrency::ConcurrencyLimit;
pub use policy::cors::Cors;
pub use policy::headers::{HeaderOps, Headers, RequestHeaders, ResponseHeaders};
pub use policy::ip_filter::{IpFilter, IpRestriction};
pub use policy::rate_limit::RateLimit;
pub use policy::validate::Validate;
pub use registry::{api_doc, build, entry_schema, find, PluginError, BUILT_IN};
