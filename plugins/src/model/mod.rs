//! The plugin model: phases ([`Plugin`]), per-request state ([`PluginCtx`]), the
//! request's [`Identity`], answers ([`Reply`]) and typed failures ([`PluginFailure`]),
//! state that outlives reloads ([`Shared`]), calls to upstream pools ([`UpstreamCalls`]),
//! and how a plugin is declared and built
//! from its settings ([`PluginSpec`]).

mod admin_action;
mod api_doc;
mod background;
mod call;
mod ctx;
mod identity;
mod instance;
mod phase;
mod reply;
mod shared;
mod spec;
mod stage;
mod upstream_calls;

pub use admin_action::{AdminAction, AdminActionError, AdminRequest};
pub use api_doc::{
    bearer_with_scopes, component_key, ApiAnswer, ApiDoc, ApiEndpoint, AUTH_ANSWERS,
    DEPENDENCY_ANSWER, POLICY_ANSWER,
};
pub use background::spawn_with_runtime;
pub use call::{BodyCall, ChunkCall, ClientCert, Decision, RequestCall, RequestInfo, San, TlsConn};
pub use ctx::{BodyBytes, OwnValues, PluginCtx};
pub use identity::{CredentialKind, Identity};
pub use instance::Instance;
pub use phase::{Flow, Plugin, Step, Waiting};
pub use reply::{FailureKind, PluginFailure, Reply, ReplyBody};
pub use shared::{PluginMetrics, Shared};
pub use spec::{parse as parse_settings, BuildCtx, Factory, PluginSpec, SettingsError};
pub use stage::Stage;
pub use upstream_calls::{
    NoUpstreamCalls, UpstreamCallError, UpstreamCalls, UpstreamRef, UpstreamRequest,
    UpstreamResponse,
};
