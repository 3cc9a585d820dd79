//! The gateway's shared state: the live route table behind an `ArcSwap`, the long-lived
//! upstream registry and metrics, and the one function that loads a new table.

use crate::config::{self, ConfigErrors};
use crate::observability::Metrics;
use crate::runtime::Runtime;
use crate::upstream::Registry;
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The file changed on disk (or the periodic check saw new content).
    Watch,
    Signal,
    Admin,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Watch => "watch",
            Trigger::Signal => "sighup",
            Trigger::Admin => "admin",
        }
    }
}

/// The result of a reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new table is live.
    Applied { routes: usize, millis: u64 },
    /// The file content is the one already tried; nothing was done.
    Unchanged,
}

/// Shared by every proxy worker, the admin service and the reloader.
pub struct Gateway {
    pub live: ArcSwap<Runtime>,
    pub registry: Arc<Registry>,
    /// Plugin state that outlives reloads (clients, caches, rate-limit buckets).
    pub plugins: Arc<gateway_plugins::Shared>,
    pub metrics: Metrics,
    /// Async jobs: store, queue and step clients (outlive reloads).
    pub jobs: Arc<crate::flows::jobs::Jobs>,
    pub config_path: PathBuf,
    /// `ADMIN_TOKEN`; admin write endpoints are disabled when unset.
    pub admin_token: Option<String>,
    /// Access log lines on (`ACCESS_LOG`, default on).
    pub access_log: bool,
    /// W3C trace context handling on (default on).
    pub trace_context: bool,
    /// Fingerprint of the last file content tried, and whether it loaded.
    last: Mutex<(u64, bool)>,
}

impl Gateway {
    /// Loads the first table; the process does not start without a valid one.
    pub fn start(
        config_path: PathBuf,
        registry: Arc<Registry>,
        metrics: Metrics,
    ) -> Result<Arc<Self>, String> {
        let plugins = gateway_plugins::Shared::live(
            gateway_plugins::PluginMetrics::register(&metrics.registry)
                .map_err(|e| format!("cannot register plugin metrics: {e}"))?,
        );
        let text = std::fs::read(&config_path)
            .map_err(|e| format!("{}: cannot read file: {e}", config_path.display()))?;
        let cfg = parse_bytes(&text, &config_path).map_err(|e| e.to_string())?;
        let rt = Runtime::build(cfg, &registry, &plugins, &base_dir(&config_path))
            .map_err(|e| e.join("\n"))?;
        metrics.routes_loaded.set(rt.routes.len() as i64);
        metrics.last_reload_success.set(1);
        metrics.last_reload_timestamp.set(unix_now());
        let jobs = crate::flows::jobs::Jobs::from_env(&metrics.registry)?;
        Ok(Arc::new(Self {
            live: ArcSwap::from_pointee(rt),
            registry,
            jobs,
            plugins,
            metrics,
            config_path,
            admin_token: std::env::var("ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
            access_log: std::env::var("ACCESS_LOG")
                .map(|v| v != "off" && v != "0" && v != "false")
                .unwrap_or(true),
            trace_context: true,
            last: Mutex::new((config::fingerprint(&text), true)),
        }))
    }

    /// Validates and builds the table in the file, and swaps it in. A file with any
    /// error is refused whole; the live table keeps serving. `Watch` reloads skip
    /// content already tried; signal and admin reloads always rebuild.
    pub fn reload(&self, trigger: Trigger) -> Result<ReloadOutcome, String> {
        let started = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let text = match std::fs::read(&self.config_path) {
            Ok(t) => t,
            Err(e) => {
                // an editor's rename-over can leave the path missing for a moment
                if trigger == Trigger::Watch && e.kind() == std::io::ErrorKind::NotFound {
                    return Ok(ReloadOutcome::Unchanged);
                }
                return Err(self.failed(
                    trigger,
                    format!("{}: cannot read file: {e}", self.config_path.display()),
                ));
            }
        };
        let fp = config::fingerprint(&text);
        if trigger == Trigger::Watch && fp == last.0 {
            return Ok(ReloadOutcome::Unchanged);
        }
        *last = (fp, false);
        let cfg = parse_bytes(&text, &self.config_path).map_err(|e| {
            for err in &e.errors {
                tracing::error!(trigger = trigger.as_str(), file = %e.source_name, error = %err, "route table refused");
            }
            self.failed(trigger, e.to_string())
        })?;
        let restart_note = {
            let old = self.live.load();
            old.config
                .server
                .tls
                .as_ref()
                .map(|t| (&t.listen, &t.cert, &t.key))
                != cfg
                    .server
                    .tls
                    .as_ref()
                    .map(|t| (&t.listen, &t.cert, &t.key))
        };
        let rt = Runtime::build(
            cfg,
            &self.registry,
            &self.plugins,
            &base_dir(&self.config_path),
        )
        .map_err(|errs| self.failed(trigger, errs.join("\n")))?;
        let routes = rt.routes.len();
        self.live.store(Arc::new(rt));
        *last = (fp, true);
        let millis = started.elapsed().as_millis() as u64;
        let m = &self.metrics;
        m.reloads.with_label_values(&["success"]).inc();
        m.last_reload_success.set(1);
        m.last_reload_timestamp.set(unix_now());
        m.routes_loaded.set(routes as i64);
        m.reload_apply_seconds
            .observe(started.elapsed().as_secs_f64());
        if restart_note {
            tracing::warn!(
                "`server.tls` changed: listeners are fixed at start-up, restart to apply it"
            );
        }
        tracing::info!(
            trigger = trigger.as_str(),
            routes,
            millis,
            "route table reloaded"
        );
        Ok(ReloadOutcome::Applied { routes, millis })
    }

    fn failed(&self, trigger: Trigger, msg: String) -> String {
        self.metrics.reloads.with_label_values(&["failure"]).inc();
        self.metrics.last_reload_success.set(0);
        tracing::error!(trigger = trigger.as_str(), error = %msg, "reload failed; the previous route table keeps serving");
        msg
    }
}

fn parse_bytes(text: &[u8], path: &std::path::Path) -> Result<config::Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::str::from_utf8(text).map_err(|e| ConfigErrors {
        source_name: name.clone(),
        errors: vec![config::ConfigError {
            path: String::new(),
            pos: None,
            message: format!("the file is not UTF-8: {e}"),
        }],
    })?;
    config::parse(text, &name, &|k| std::env::var(k).ok())
}

fn base_dir(config_path: &std::path::Path) -> std::path::PathBuf {
    config::base_dir(&config_path.display().to_string()).to_path_buf()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
