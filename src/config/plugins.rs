//! Plugin chains: the global `plugins:` list merged with a route's own, the checks of
//! `enabled`, and the location of a plugin's build error (a bad option at its own path).

use super::{Config, Errors, PluginConfig, RouteConfig};
use gateway_plugins::{BuildCtx, Instance, Shared, Stage};
use std::path::Path;

/// One plugin of a route's effective chain, with the config path of its entry.
pub struct ChainEntry<'a> {
    pub config: &'a PluginConfig,
    /// `plugins[2]` (global) or `routes[1].plugins[0]`.
    pub path: String,
}

/// The chain a route runs: the globals first, as listed, minus those the route turns
/// off (`enabled: false`) or replaces (an entry of the same name); then the route's
/// own enabled entries, as listed.
pub fn chain<'a>(c: &'a Config, index: usize, r: &'a RouteConfig) -> Vec<ChainEntry<'a>> {
    let mut out = Vec::with_capacity(c.plugins.len() + r.plugins.len());
    for (j, g) in c.plugins.iter().enumerate() {
        if g.enabled && !r.plugins.iter().any(|p| p.name == g.name) {
            out.push(ChainEntry {
                config: g,
                path: format!("plugins[{j}]"),
            });
        }
    }
    for (j, p) in r.plugins.iter().enumerate() {
        if p.enabled {
            out.push(ChainEntry {
                config: p,
                path: format!("routes[{index}].plugins[{j}]"),
            });
        }
    }
    out
}

/// The order checks of a chain, fed each plugin as it is built, in chain order: a
/// plugin that works on an identity needs one that sets it before it, and a plugin that
/// answers from stored responses ([`Stage::Serve`]) must come after every plugin that
/// guards access (else a stored answer reaches a caller that plugin refuses). The chain
/// runs as listed; these checks refuse an order that opens a hole, at the later entry.
#[derive(Debug, Default)]
pub struct ChainOrder {
    identity_set: bool,
    /// The first plugin that serves stored answers, and its entry's path.
    serving: Option<(&'static str, String)>,
}

impl ChainOrder {
    /// Checks `p` (at `path`) against the plugins before it.
    pub(crate) fn check(&mut self, p: &Instance, path: &str, errors: &mut Errors) {
        let name = p.name();
        if p.needs_identity() && !self.identity_set {
            errors.push(
                path,
                format!("`{name}` works on the identity an authentication plugin sets: put one before it in the chain (global plugins run first)"),
            );
        }
        self.identity_set |= p.sets_identity();
        let stage = p.stage();
        if let (true, Some((server, at))) = (stage.guards_access(), &self.serving) {
            errors.push(
                path,
                format!("`{name}` ({} stage) comes after `{server}` ({at}), which answers from stored responses: a stored answer would reach callers `{name}` refuses; put `{server}` after it (global plugins run first)", stage.as_str()),
            );
        }
        if stage == Stage::Serve && self.serving.is_none() {
            self.serving = Some((name, path.to_string()));
        }
    }
}

/// Joins a plugin entry's path and an option path inside it (`algorithms[1]`).
pub fn option_path(entry: &str, inner: &str) -> String {
    if inner.is_empty() {
        entry.to_string()
    } else if inner.starts_with('[') {
        format!("{entry}{inner}")
    } else {
        format!("{entry}.{inner}")
    }
}

/// The directory relative plugin files start from: routes.yaml's own.
pub fn base_dir(source_name: &str) -> &Path {
    Path::new(source_name)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Where a plugin's build error goes: the entry's path joined with the option's.
pub(crate) fn plugin_error(entry: &str, e: &gateway_plugins::PluginError, errs: &mut Errors) {
    errs.push(option_path(entry, e.path()), e.to_string());
}

/// Refuses a plugin that calls a pool the table does not define
/// ([`gateway_plugins::Plugin::upstreams`]), at the option that names it.
pub(crate) fn check_plugin_upstreams(
    p: &gateway_plugins::Instance,
    entry: &str,
    c: &Config,
    errs: &mut Errors,
) {
    for r in p.upstreams() {
        if !c.upstreams.contains_key(&r.upstream) {
            let defined = c
                .upstreams
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            errs.push(
                option_path(entry, &r.option),
                format!(
                    "unknown upstream `{}` (defined: {})",
                    r.upstream,
                    if defined.is_empty() {
                        "none".into()
                    } else {
                        defined
                    }
                ),
            );
        }
    }
}

/// Refuses `enabled: false` where it means nothing: on a global plugin, or on a route
/// entry whose name no global plugin has. Building the plugins (which checks their
/// settings) is [`crate::runtime::Runtime::build`]'s.
pub(super) fn validate(c: &Config, errs: &mut Errors) {
    for (j, g) in c.plugins.iter().enumerate() {
        if !g.enabled {
            errs.push(
                format!("plugins[{j}].enabled"),
                "a global plugin that is off can simply be removed",
            );
        }
    }
    for (i, r) in c.routes.iter().enumerate() {
        for (j, p) in r.plugins.iter().enumerate() {
            if !p.enabled && !c.plugins.iter().any(|g| g.name == p.name) {
                errs.push(
                    format!("routes[{i}].plugins[{j}].enabled"),
                    format!(
                        "no global plugin `{}` to turn off (a route's own plugin is turned off by removing it)",
                        p.name
                    ),
                );
            }
        }
    }
}

/// Builds every enabled plugin entry dry (no connection opened), for a table that is
/// refused anyway: its plugin errors join the others in one report.
pub(super) fn build_dry(c: &Config, base: &Path, errs: &mut Errors) {
    let shared = Shared::dry();
    let build = |p: &PluginConfig, path: &str, route: Option<&str>, errs: &mut Errors| {
        let cx = BuildCtx {
            shared: &shared,
            base_dir: base,
            route,
        };
        match gateway_plugins::build(&p.name, &p.settings, &cx) {
            Ok(built) => check_plugin_upstreams(&built, path, c, errs),
            Err(e) => plugin_error(path, &e, errs),
        }
    };
    for (j, g) in c.plugins.iter().enumerate().filter(|(_, g)| g.enabled) {
        build(g, &format!("plugins[{j}]"), None, errs);
    }
    for (i, r) in c.routes.iter().enumerate() {
        for (j, p) in r.plugins.iter().enumerate().filter(|(_, p)| p.enabled) {
            build(p, &format!("routes[{i}].plugins[{j}]"), Some(&r.name), errs);
        }
    }
}
