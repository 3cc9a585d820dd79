//! `rbac`: the route needs any or all of given roles or scopes of the identity set by
//! an earlier auth plugin, optionally per method. No identity → 401; missing rights →
//! 403 whose message names what was missing.
//!
//! ```yaml
//! - { name: jwt, secret_env: JWT_SECRET }
//! - name: rbac
//!   any_roles: [admin, editor]
//!   methods: { DELETE: { all_roles: [admin] }, POST: { all_scopes: [write] } }
//! ```

use super::{deny, Reason};
use crate::{
    BuildCtx, Decision, Factory, Flow, Identity, Plugin, PluginMetrics, RequestCall, SettingsError,
};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a request needs. Every list given must be satisfied.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// At least one of these roles.
    #[serde(default)]
    pub any_roles: Vec<String>,
    /// All of these roles.
    #[serde(default)]
    pub all_roles: Vec<String>,
    /// At least one of these scopes.
    #[serde(default)]
    pub any_scopes: Vec<String>,
    /// All of these scopes.
    #[serde(default)]
    pub all_scopes: Vec<String>,
}

/// Role- and scope-based access control.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RbacSettings {
    /// At least one of these roles (every method not in `methods`).
    #[serde(default)]
    pub any_roles: Vec<String>,
    /// All of these roles (every method not in `methods`).
    #[serde(default)]
    pub all_roles: Vec<String>,
    /// At least one of these scopes (every method not in `methods`).
    #[serde(default)]
    pub any_scopes: Vec<String>,
    /// All of these scopes (every method not in `methods`).
    #[serde(default)]
    pub all_scopes: Vec<String>,
    /// Rules by method (`GET`, `POST`...), replacing the default rule for that method.
    #[serde(default)]
    pub methods: BTreeMap<String, Rule>,
}

impl Rule {
    fn is_empty(&self) -> bool {
        self.any_roles.is_empty()
            && self.all_roles.is_empty()
            && self.any_scopes.is_empty()
            && self.all_scopes.is_empty()
    }

    /// What `id` lacks: (missing roles, missing scopes); both empty when allowed.
    fn missing(&self, id: &Identity) -> (Vec<String>, Vec<String>) {
        let mut roles: Vec<String> = self
            .all_roles
            .iter()
            .filter(|r| !id.has_role(r))
            .cloned()
            .collect();
        if !self.any_roles.is_empty() && !self.any_roles.iter().any(|r| id.has_role(r)) {
            roles.push(format!("one of {}", self.any_roles.join("|")));
        }
        let mut scopes: Vec<String> = self
            .all_scopes
            .iter()
            .filter(|s| !id.has_scope(s))
            .cloned()
            .collect();
        if !self.any_scopes.is_empty() && !self.any_scopes.iter().any(|s| id.has_scope(s)) {
            scopes.push(format!("one of {}", self.any_scopes.join("|")));
        }
        (roles, scopes)
    }
}

pub struct Rbac {
    default: Rule,
    methods: Vec<(http::Method, Rule)>,
    metrics: PluginMetrics,
}

impl Rbac {
    /// The request phase: it never waits.
    fn admit(&self, call: &mut RequestCall<'_>) -> Decision {
        let rule = self
            .methods
            .iter()
            .find(|(m, _)| m == call.method())
            .map(|(_, r)| r)
            .unwrap_or(&self.default);
        if rule.is_empty() {
            return Ok(Flow::Continue);
        }
        let Some(id) = call.identity() else {
            return Ok(Flow::Respond(deny(
                &self.metrics,
                Reason::Missing,
                Some("Bearer realm=\"api\"".into()),
                "authentication required",
            )));
        };
        let (roles, scopes) = rule.missing(id);
        if roles.is_empty() && scopes.is_empty() {
            return Ok(Flow::Continue);
        }
        let mut parts = Vec::new();
        if !roles.is_empty() {
            parts.push(format!("missing role: {}", roles.join(", ")));
        }
        if !scopes.is_empty() {
            parts.push(format!("missing scope: {}", scopes.join(", ")));
        }
        let reply = deny(
            &self.metrics,
            Reason::InsufficientScope,
            None,
            parts.join("; "),
        )
        .with_details(serde_json::json!({"missing_roles": roles, "missing_scopes": scopes}));
        Ok(Flow::Respond(reply))
    }
}

#[async_trait]
impl Plugin for Rbac {
    fn needs_identity(&self) -> bool {
        true
    }

    /// Decides without waiting: no future per request.
    fn request_now(&self, call: &mut RequestCall<'_>) -> Option<Decision> {
        Some(self.admit(call))
    }
}

impl Factory for Rbac {
    const NAME: &'static str = "rbac";
    const SUMMARY: &'static str =
        "Require any/all of given roles or scopes (optionally per method); 403 naming what is missing";
    type Settings = RbacSettings;

    fn api_doc(_s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        crate::ApiDoc::answers([crate::POLICY_ANSWER])
    }

    fn build(s: RbacSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        let default = Rule {
            any_roles: s.any_roles,
            all_roles: s.all_roles,
            any_scopes: s.any_scopes,
            all_scopes: s.all_scopes,
        };
        let mut methods = Vec::with_capacity(s.methods.len());
        for (m, rule) in s.methods {
            let method = http::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| SettingsError::at(format!("methods.{m}"), "not an HTTP method"))?;
            methods.push((method, rule));
        }
        if default.is_empty() && methods.iter().all(|(_, r)| r.is_empty()) {
            return Err(SettingsError::whole(
                "give at least one of `any_roles`, `all_roles`, `any_scopes`, `all_scopes`, `methods`",
            ));
        }
        Ok(Arc::new(Rbac {
            default,
            methods,
            metrics: cx.shared.metrics.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::CredentialKind;

    #[test]
    fn missing_is_named() {
        let rule = Rule {
            any_roles: vec!["admin".into(), "editor".into()],
            all_scopes: vec!["read".into(), "write".into()],
            ..Default::default()
        };
        let mut id = Identity::new("a", CredentialKind::Jwt);
        id.scopes = vec!["read".into()];
        let (roles, scopes) = rule.missing(&id);
        assert_eq!(roles, ["one of admin|editor"]);
        assert_eq!(scopes, ["write"]);
        id.roles = vec!["editor".into()];
        id.scopes.push("write".into());
        assert_eq!(rule.missing(&id), (vec![], vec![]));
    }
}
