//! How a plugin is declared: a [`Factory`] names it, types its settings (which derive a
//! JSON Schema, merged into `docs/routes.schema.json`) and builds an instance from
//! them. Settings errors carry the path of the bad option inside the plugin entry
//! (`algorithms[1]`), so the gateway can point at its line and column.

use super::{ApiDoc, Plugin, Shared};
use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a plugin build may use besides its settings.
pub struct BuildCtx<'a> {
    /// Long-lived state (dry for `check` and validation).
    pub shared: &'a Arc<Shared>,
    /// The directory of routes.yaml: relative file paths in settings start here.
    pub base_dir: &'a Path,
    /// The route this instance serves (`None` for a global plugin).
    pub route: Option<&'a str>,
}

impl BuildCtx<'_> {
    /// A settings path made absolute against routes.yaml's directory. The file is
    /// watched from then on ([`Shared::watch_file`]): an edit of it reloads the table
    /// like an edit of routes.yaml (key files, htpasswd, PEM and JWKS files, CA
    /// bundles, schemas).
    pub fn file(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        };
        self.shared.watch_file(&path);
        path
    }

    /// The gateway's calls to the pools of routes.yaml (see [`super::UpstreamCalls`]):
    /// refusing ones on a dry build. A plugin that calls pools names them in
    /// [`super::Plugin::upstreams`], so that a table naming an unknown pool is refused.
    pub fn upstreams(&self) -> Arc<dyn super::UpstreamCalls> {
        self.shared.upstream_calls()
    }

    /// A secret named by `field` (e.g. `secret_env`): the environment variable must be
    /// set and not empty when serving. A dry build (`check`, validation) does not need
    /// the secret itself: deploy pipelines check files without production secrets.
    pub fn secret(&self, field: &str, var: &str) -> Result<String, SettingsError> {
        if self.shared.is_dry() && self.shared.env(var).is_none() {
            return Ok(format!("dry-run placeholder for {var}"));
        }
        self.shared.env(var).ok_or_else(|| {
            SettingsError::at(
                field,
                format!("environment variable `{var}` is not set (secrets are never inline)"),
            )
        })
    }
}

/// A bad plugin option: `path` inside the plugin entry (`algorithms[1]`, empty for the
/// entry as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    pub path: String,
    pub message: String,
}

impl SettingsError {
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// An error about the plugin entry as a whole.
    pub fn whole(message: impl Into<String>) -> Self {
        Self::at("", message)
    }
}

/// A built-in plugin: its name, settings type and constructor.
pub trait Factory {
    /// The name used in routes.yaml.
    const NAME: &'static str;
    /// One line for the schema and `docs/plugins/`.
    const SUMMARY: &'static str;
    /// The settings (the entry minus `name` and `enabled`); they deny unknown fields.
    type Settings: DeserializeOwned + JsonSchema;
    /// Builds an instance. With a dry [`BuildCtx::shared`], open nothing.
    fn build(settings: Self::Settings, cx: &BuildCtx<'_>)
        -> Result<Arc<dyn Plugin>, SettingsError>;

    /// What the plugin adds to the OpenAPI document of its routes (security schemes,
    /// answers, request body, its own operations); `base_dir` is routes.yaml's
    /// directory, for files the settings name. Default: nothing.
    fn api_doc(_settings: &Self::Settings, _base_dir: &Path) -> ApiDoc {
        ApiDoc::default()
    }
}

/// The OpenAPI contribution of an entry's settings (none when they do not parse).
pub type ApiDocFn = fn(&serde_json::Value, &Path) -> ApiDoc;

/// Builds an instance from an entry's settings.
pub type BuildFn = fn(&serde_json::Value, &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError>;

/// A plugin as the registry keeps it.
#[derive(Clone, Copy)]
pub struct PluginSpec {
    pub name: &'static str,
    pub summary: &'static str,
    /// The settings' schema (the object schema, definitions added to the generator).
    pub schema: fn(&mut SchemaGenerator) -> Schema,
    pub build: BuildFn,
    pub api_doc: ApiDocFn,
}

impl PluginSpec {
    pub const fn of<F: Factory>() -> Self {
        Self {
            name: F::NAME,
            summary: F::SUMMARY,
            schema: |g| <F::Settings as JsonSchema>::json_schema(g),
            build: |v, cx| F::build(parse::<F::Settings>(v)?, cx),
            api_doc: |v, dir| {
                parse::<F::Settings>(v)
                    .map(|s| F::api_doc(&s, dir))
                    .unwrap_or_default()
            },
        }
    }
}

/// Deserialises settings, keeping the path of the first bad option.
pub fn parse<T: DeserializeOwned>(v: &serde_json::Value) -> Result<T, SettingsError> {
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        SettingsError::at(path, e.into_inner().to_string())
    })
}
