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

/// Why the gateway does not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot register plugin metrics: {0}")]
    PluginMetrics(#[source] prometheus::Error),
    /// The first route table is refused, as a reload would refuse it.
    #[error(transparent)]
    Table(#[from] ReloadError),
    #[error(transparent)]
    Jobs(#[from] crate::flows::jobs::JobsError),
    #[error(transparent)]
    Otel(#[from] crate::observability::otel::OtelError),
}

/// Why a route table was refused (at a reload, the live table keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{}: cannot read file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The route table (or a file it names) is refused: every error, located.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// The TLS listener's `client_ca` or `client_crl` no longer loads.
    #[error(transparent)]
    ClientCa(#[from] crate::tls_listener::TlsFileError),
}

impl ReloadError {
    /// The report as lines (the `details` of a refused `POST /admin/reload`).
    pub fn lines(&self) -> Vec<String> {
        match self {
            ReloadError::Config(e) => e.lines(),
            ReloadError::Read { .. } | ReloadError::ClientCa(_) => vec![self.to_string()],
        }
    }
}

/// Shared by every proxy worker, the admin service and the reloader.
pub struct Gateway {
    pub live: ArcSwap<Runtime>,
    pub registry: Arc<Registry>,
    /// Plugin state that outlives reloads (clients, caches, rate-limit buckets).
    pub plugins: Arc<gateway_plugins::Shared>,
    /// The plugins' calls to the live table's pools (installed in `plugins`).
    pub upstream_calls: Arc<crate::upstream::PoolCalls>,
    pub metrics: Metrics,
    /// Async jobs: store, queue and step clients (outlive reloads).
    pub jobs: Arc<crate::flows::jobs::Jobs>,
    pub config_path: PathBuf,
    /// `ADMIN_TOKEN`; admin write endpoints are disabled when unset.
    pub admin_token: Option<String>,
    /// Access log lines on (`ACCESS_LOG`, default on).
    pub access_log: bool,
    /// Share of successful requests logged (`ACCESS_LOG_SAMPLE`, 0..1, default 1);
    /// failed requests are always logged.
    pub access_log_sample: f64,
    /// W3C trace context handling on (default on).
    pub trace_context: bool,
    /// OTLP span export, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub otel: Option<crate::observability::otel::Otel>,
    /// The TLS listener's client-certificate verifier (`server.tls.client_ca`, set by
    /// the server at start-up), rebuilt from its CA and CRL files on every reload.
    pub client_verifier: std::sync::OnceLock<Arc<crate::tls_listener::ClientVerifier>>,
    /// Fingerprint of the last file content tried, and whether it loaded.
    last: Mutex<(u64, bool)>,
    /// The last reload attempt, for the admin API and dashboard.
    last_attempt: Mutex<serde_json::Value>,
    /// Set by SIGTERM: `/ready` answers 503 from then on.
    draining: std::sync::atomic::AtomicBool,
    /// Set by SIGTERM and SIGQUIT: answers say `Connection: close`.
    closing_connections: std::sync::atomic::AtomicBool,
}

/// The fingerprint of routes.yaml's content and of every file plugins read at build
/// (key files, htpasswd files): a change of any of them is a new table to load.
fn fingerprint(text: &[u8], plugins: &gateway_plugins::Shared) -> u64 {
    let files = plugins.watched_files();
    if files.is_empty() {
        return config::fingerprint(text);
    }
    let mut all = text.to_vec();
    for f in files {
        all.extend_from_slice(f.as_os_str().as_encoded_bytes());
        all.push(0);
        // a missing file hashes as empty: the build that needs it reports the error
        all.extend_from_slice(&std::fs::read(&f).unwrap_or_default());
        all.push(0);
    }
    config::fingerprint(&all)
}

impl Gateway {
    /// Loads the first table; the process does not start without a valid one.
    pub fn start(
        config_path: PathBuf,
        registry: Arc<Registry>,
        metrics: Metrics,
    ) -> Result<Arc<Self>, StartError> {
        let plugins = gateway_plugins::Shared::live(
            gateway_plugins::PluginMetrics::register(&metrics.registry)
                .map_err(StartError::PluginMetrics)?,
        );
        let upstream_calls = crate::upstream::PoolCalls::new();
        plugins.set_upstream_calls(upstream_calls.clone());
        let text = std::fs::read(&config_path).map_err(|source| ReloadError::Read {
            path: config_path.clone(),
            source,
        })?;
        let parsed = parse_bytes(&text, &config_path).map_err(ReloadError::from)?;
        crate::reload::watch_config_files(&parsed.config, parsed.base_dir(), &plugins);
        let rt = Runtime::build(parsed, &registry, &plugins).map_err(ReloadError::from)?;
        rt.resolve_metrics(&metrics);
        upstream_calls.set_pools(&rt.pools);
        let fp = fingerprint(&text, &plugins);
        metrics.routes_loaded.set(rt.routes.len() as i64);
        metrics.last_reload_success.set(1);
        metrics.last_reload_timestamp.set(unix_now());
        let jobs = crate::flows::jobs::Jobs::from_env(&metrics.registry)?;
        Ok(Arc::new(Self {
            live: ArcSwap::from_pointee(rt),
            registry,
            jobs,
            plugins,
            upstream_calls,
            metrics,
            config_path,
            admin_token: std::env::var("ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
            access_log: std::env::var("ACCESS_LOG")
                .map(|v| v != "off" && v != "0" && v != "false")
                .unwrap_or(true),
            access_log_sample: std::env::var("ACCESS_LOG_SAMPLE")
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(1.0),
            trace_context: true,
            otel: crate::observability::otel::Otel::from_env()?,
            client_verifier: std::sync::OnceLock::new(),
            last: Mutex::new((fp, true)),
            draining: std::sync::atomic::AtomicBool::new(false),
            closing_connections: std::sync::atomic::AtomicBool::new(false),
            last_attempt: Mutex::new(serde_json::json!({
                "result": "success", "trigger": "start", "at_unix": unix_now(), "errors": [],
            })),
        }))
    }

    /// Validates and builds the table in the file, and swaps it in. A file with any
    /// error is refused whole; the live table keeps serving. `Watch` reloads skip
    /// content already tried; signal and admin reloads always rebuild.
    pub fn reload(&self, trigger: Trigger) -> Result<ReloadOutcome, ReloadError> {
        let started = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // the inputs' stamp before they are read: a refusal of inputs that changed while
        // they were read (a file written in place) is not remembered as tried
        let stamp = crate::reload::stamp(&self.config_path, &self.plugins);
        let text = match std::fs::read(&self.config_path) {
            Ok(t) => t,
            Err(e) => {
                // an editor's rename-over can leave the path missing for a moment
                if trigger == Trigger::Watch && e.kind() == std::io::ErrorKind::NotFound {
                    return Ok(ReloadOutcome::Unchanged);
                }
                let e = ReloadError::Read {
                    path: self.config_path.clone(),
                    source: e,
                };
                return Err(self.failed(trigger, e));
            }
        };
        let fp = fingerprint(&text, &self.plugins);
        if trigger == Trigger::Watch && fp == last.0 {
            return Ok(ReloadOutcome::Unchanged);
        }
        *last = (fp, false);
        let parsed = parse_bytes(&text, &self.config_path).map_err(|e| {
            self.forget_if_changed(&mut last, stamp);
            self.failed(trigger, e.into())
        })?;
        crate::reload::watch_config_files(&parsed.config, parsed.base_dir(), &self.plugins);
        let restart_note = self.live.load().config.server.tls != parsed.config.server.tls;
        let rt = Runtime::build(parsed, &self.registry, &self.plugins).map_err(|e| {
            self.forget_if_changed(&mut last, stamp);
            self.failed(trigger, e.into())
        })?;
        // the listener's client CA and CRL files, re-read (a bad one refuses the reload)
        if let Some(v) = self.client_verifier.get() {
            v.reload().map_err(|e| {
                self.forget_if_changed(&mut last, stamp);
                self.failed(trigger, e.into())
            })?;
        }
        rt.resolve_metrics(&self.metrics);
        let routes = rt.routes.len();
        let pools = rt.pools.clone();
        self.live.store(Arc::new(rt));
        self.upstream_calls.set_pools(&pools);
        *last = (fp, true);
        let millis = started.elapsed().as_millis() as u64;
        let m = &self.metrics;
        m.reloads.with_label_values(&["success"]).inc();
        m.last_reload_success.set(1);
        m.last_reload_timestamp.set(unix_now());
        m.routes_loaded.set(routes as i64);
        m.reload_apply_seconds
            .observe(started.elapsed().as_secs_f64());
        self.record_attempt(trigger, &[]);
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

    /// The process is shutting down: readiness fails so that traffic moves away.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.close_connections();
    }

    /// From now on every answer closes its connection (`Connection: close`), so that
    /// keep-alive clients reconnect (to the new process, after an upgrade) instead of
    /// sending a request on a connection that is being closed.
    pub fn close_connections(&self) {
        self.closing_connections
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_closing_connections(&self) -> bool {
        self.closing_connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The last reload attempt: result, trigger, time, and the errors of a refused file.
    pub fn reload_status(&self) -> serde_json::Value {
        self.last_attempt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record_attempt(&self, trigger: Trigger, errors: &[String]) {
        let v = serde_json::json!({
            "result": if errors.is_empty() { "success" } else { "failure" },
            "trigger": trigger.as_str(),
            "at_unix": unix_now(),
            "errors": errors,
        });
        *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// After a refusal: when an input changed since `stamp` (taken before the inputs
    /// were read), what was read may be a half-written file, so the content is not
    /// remembered as tried and the next watch reload reads it again.
    fn forget_if_changed(&self, last: &mut (u64, bool), stamp: u64) {
        if crate::reload::stamp(&self.config_path, &self.plugins) != stamp {
            *last = (0, false);
        }
    }

    /// Counts and logs a refusal (each located error on its own line), and returns it.
    fn failed(&self, trigger: Trigger, e: ReloadError) -> ReloadError {
        let lines = e.lines();
        if let ReloadError::Config(c) = &e {
            for err in &c.errors {
                tracing::error!(trigger = trigger.as_str(), file = %c.source_name, error = %err, "route table refused");
            }
        }
        self.record_attempt(trigger, &lines);
        self.metrics.reloads.with_label_values(&["failure"]).inc();
        self.metrics.last_reload_success.set(0);
        tracing::error!(trigger = trigger.as_str(), error = %e, "reload failed; the previous route table keeps serving");
        e
    }
}

fn parse_bytes(text: &[u8], path: &std::path::Path) -> Result<config::Parsed, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::str::from_utf8(text)
        .map_err(|e| ConfigErrors::whole(&name, format!("the file is not UTF-8: {e}")))?;
    config::parse_located(text, &name, &|k| std::env::var(k).ok())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
