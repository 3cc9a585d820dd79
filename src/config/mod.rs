//! routes.yaml: types, loading with every error located, semantic validation and the
//! environment overrides of the seed's Deployment.

pub mod client_ca;
mod edge;
mod env;
mod locate;
mod plugins;
mod route;
mod split;
mod types;
mod units;
mod upstream;
mod upstream_tls;
mod validate;
mod validate_flows;

pub use client_ca::{crl_path, load_crls, FileProblem, TlsFileError};
pub use edge::{EncodedChar, UnderscoreHeaders};
pub(crate) use env::apply_env_overrides;
pub use env::{parse_target_url, TargetUrlError};
pub use locate::{Locations, Pos};
pub use plugins::{base_dir, chain, option_path, ChainEntry, ChainOrder};
pub(crate) use plugins::{check_plugin_upstreams, plugin_error};
pub use route::*;
pub use split::{PinRule, SplitConfig, SplitRules, SplitSide, StickyConfig};
pub use types::*;
pub use units::{parse_date, ByteSize, DateError, Dur};
pub use upstream::*;
pub use upstream_tls::{UpstreamTls, UpstreamTlsSettings};
pub use validate::{split_host_port, AddrError};

use serde::de::DeserializeOwned;
use serde_yaml::Value;
use std::fmt;
use std::path::Path;

/// One problem in a route table, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending node (`routes[3].upstream`); empty for the document.
    pub path: String,
    /// Line and column in the file, when known.
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.pos {
            write!(f, "line {}, column {}: ", p.line, p.column)?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a route table. A table with any error is refused whole.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors {
    /// What was loaded (a file path, or `<string>`).
    pub source_name: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// One error of `source_name` with no place in the document (an unreadable file).
    pub fn whole(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            source_name: source_name.into(),
            errors: vec![ConfigError {
                path: String::new(),
                pos: None,
                message: message.into(),
            }],
        }
    }

    /// The report as lines: `<file>: N errors`, then `  <file>: <error>` for each (the
    /// log, `check`, and the `details` of a refused `POST /admin/reload`).
    pub fn lines(&self) -> Vec<String> {
        let n = self.errors.len();
        let mut out = Vec::with_capacity(n + 1);
        out.push(format!(
            "{}: {} error{}",
            self.source_name,
            n,
            if n == 1 { "" } else { "s" }
        ));
        for e in &self.errors {
            out.push(format!("  {}: {e}", self.source_name));
        }
        out
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// A table that parsed and passed validation, with what the errors found when it is
/// built need to be located: the positions of its nodes and the name of its source.
pub struct Parsed {
    pub config: Config,
    pub locations: Locations,
    /// What was loaded (a file path, or `<string>`).
    pub source_name: String,
}

impl Parsed {
    /// The directory relative files of the table start from (its own).
    pub fn base_dir(&self) -> &Path {
        base_dir(&self.source_name)
    }
}

/// Collects errors, locating each by its path.
pub(crate) struct Errors<'a> {
    locs: &'a Locations,
    pub(crate) list: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    pub(crate) fn new(locs: &'a Locations) -> Self {
        Self {
            locs,
            list: Vec::new(),
        }
    }
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let pos = self.locs.find(&path);
        self.list.push(ConfigError {
            path,
            pos,
            message: message.into(),
        });
    }

    /// `Err` with every error collected, if any.
    pub(crate) fn finish(self, source_name: &str) -> Result<(), ConfigErrors> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors {
                source_name: source_name.to_string(),
                errors: self.list,
            })
        }
    }
}

/// Reads and validates a route table file. Environment overrides are applied from the
/// process environment. Plugin settings are checked when the table is built
/// ([`crate::runtime::Runtime::build`]), or here when the table is refused anyway.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    load_file_located(path).map(|p| p.config)
}

/// [`load_file`], keeping the positions of the nodes for the errors of the build.
pub fn load_file_located(path: &Path) -> Result<Parsed, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::whole(&name, format!("cannot read file: {e}")))?;
    parse_located(&text, &name, &|k| std::env::var(k).ok())
}

/// Parses and validates a route table; `env` looks up environment variables.
/// See [`parse_located`].
pub fn parse(
    text: &str,
    source_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    parse_located(text, source_name, env).map(|p| p.config)
}

/// Parses and validates a route table, keeping the positions of its nodes for the
/// errors of its build. Plugins are built by [`crate::runtime::Runtime::build`], once;
/// a table refused here has its plugins built dry too, so that one report holds every
/// error.
pub fn parse_located(
    text: &str,
    source_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        source_name: source_name.to_string(),
        errors,
    };
    let doc: Value = serde_yaml::from_str(text).map_err(|e| {
        fail(vec![ConfigError {
            path: String::new(),
            pos: e.location().map(|l| Pos {
                line: l.line(),
                column: l.column(),
            }),
            message: format!("invalid YAML: {}", strip_location(&e.to_string())),
        }])
    })?;
    let locs = Locations::index(text);
    let mut errs = Errors::new(&locs);
    let config = sections(doc, &mut errs);
    let Some(mut config) = config.filter(|_| errs.list.is_empty()) else {
        return Err(fail(errs.list));
    };
    apply_env_overrides(&mut config, env, &mut errs);
    validate::validate(&config, plugins::base_dir(source_name), &mut errs);
    if !errs.list.is_empty() {
        plugins::build_dry(&config, plugins::base_dir(source_name), &mut errs);
        return Err(fail(errs.list));
    }
    drop(errs);
    Ok(Parsed {
        config,
        locations: locs,
        source_name: source_name.to_string(),
    })
}

/// serde_yaml appends " at line L column C"; we print the position ourselves.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Deserialises section by section so that one bad route does not hide the errors of
/// the others.
fn sections(doc: Value, errs: &mut Errors) -> Option<Config> {
    let Value::Mapping(top) = doc else {
        errs.push(
            "",
            "the document must be a mapping with `version`, `upstreams` and `routes`",
        );
        return None;
    };
    let mut version = None;
    let mut server = ServerConfig::default();
    let mut upstreams = std::collections::BTreeMap::new();
    let mut routes = Vec::new();
    let mut plugins = Vec::new();
    for (k, v) in top {
        let Some(key) = k.as_str() else {
            errs.push("", "top-level keys must be strings");
            continue;
        };
        match key {
            "version" => version = typed::<u32>(v, "version", errs),
            "server" => server = typed(v, "server", errs).unwrap_or_default(),
            "upstreams" => match v {
                Value::Mapping(m) => {
                    for (name, u) in m {
                        let name = name.as_str().map(str::to_string).unwrap_or_default();
                        let path = format!("upstreams.{name}");
                        if let Some(u) = typed::<UpstreamConfig>(u, &path, errs) {
                            upstreams.insert(name, u);
                        }
                    }
                }
                Value::Null => {}
                _ => errs.push("upstreams", "must be a mapping of upstream names to pools"),
            },
            "routes" => match v {
                Value::Sequence(s) => {
                    for (i, r) in s.into_iter().enumerate() {
                        if let Some(r) = typed::<RouteConfig>(r, &format!("routes[{i}]"), errs) {
                            routes.push(r);
                        }
                    }
                }
                Value::Null => {}
                _ => errs.push("routes", "must be a list of routes"),
            },
            "plugins" => match v {
                Value::Sequence(s) => {
                    for (i, p) in s.into_iter().enumerate() {
                        if let Some(p) = typed::<PluginConfig>(p, &format!("plugins[{i}]"), errs) {
                            plugins.push(p);
                        }
                    }
                }
                Value::Null => {}
                _ => errs.push("plugins", "must be a list of plugins"),
            },
            other => errs.push(
                other,
                format!("unknown field `{other}`, expected one of `version`, `server`, `upstreams`, `routes`, `plugins`"),
            ),
        }
    }
    let Some(version) = version else {
        if !errs.list.iter().any(|e| e.path == "version") {
            errs.push("version", "missing field `version` (write `version: 1`)");
        }
        return None;
    };
    Some(Config {
        version,
        server,
        upstreams,
        routes,
        plugins,
    })
}

fn typed<T: DeserializeOwned>(v: Value, prefix: &str, errs: &mut Errors) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(v) {
        Ok(t) => Some(t),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." || inner.is_empty() {
                prefix.to_string()
            } else if inner.starts_with('[') {
                format!("{prefix}{inner}")
            } else {
                format!("{prefix}.{inner}")
            };
            errs.push(path, strip_location(&e.into_inner().to_string()));
            None
        }
    }
}

/// A stable fingerprint of a file's bytes, to skip reloads of unchanged content.
pub fn fingerprint(text: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests;
