//! Start-up: environment, listeners and services. Listeners are fixed here; everything
//! else is reloadable.

use crate::admin::AdminApp;
use crate::env;
use crate::gateway::Gateway;
use crate::observability::Metrics;
use crate::proxy::GatewayProxy;
use crate::upstream::Registry;
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::services::listening::Service;
use std::path::PathBuf;

/// L4 read buffer of plain connections (none: pingora's HTTP layer buffers itself).
const PLAIN_READ_BUFFER: usize = 0;
/// L4 read buffer of TLS connections: one TLS record plus its framing.
const TLS_READ_BUFFER: usize = 17 * 1024;

/// Settings read from the environment (names from the seed's Deployment).
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    /// `BIND_ADDRESS` (default `0.0.0.0`).
    pub bind: String,
    /// `PORT` (default 8080).
    pub port: u16,
    /// `METRICS_PORT` (default 8081).
    pub metrics_port: u16,
    /// `GATEWAY_WORKERS` (default: number of cores).
    pub workers: usize,
    /// `GATEWAY_WORK_STEALING` (default false): one tokio runtime whose workers steal
    /// each other's tasks, instead of one single-threaded runtime per worker. Stealing
    /// evens out uneven connections; without it each request stays on one thread,
    /// which costs less CPU per request.
    pub work_stealing: bool,
    /// `serve --upgrade`: take the listening sockets from a running gateway through
    /// the upgrade socket instead of binding them (zero-downtime binary upgrade).
    pub upgrade: bool,
    /// `UPGRADE_SOCK` (default `/tmp/api-gateway-upgrade.sock`): where the old process
    /// hands its listeners to the new one on SIGQUIT.
    pub upgrade_sock: String,
}

/// Default `UPGRADE_SOCK`.
pub const DEFAULT_UPGRADE_SOCK: &str = "/tmp/api-gateway-upgrade.sock";

/// Why the gateway cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Number(#[from] crate::env::BadNumber),
    #[error("GATEWAY_WORKERS must be at least 1")]
    NoWorkers,
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Start(#[from] crate::gateway::StartError),
    #[error(transparent)]
    Listener(#[from] crate::tls_listener::ListenerError),
    #[error(transparent)]
    Watch(#[from] crate::reload::WatchError),
    #[error("cannot start the dashboard's series sampler: {0}")]
    Sampler(std::io::Error),
}

impl Settings {
    pub fn from_env(config_path: PathBuf) -> Result<Self, ServeError> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let workers = env::number("GATEWAY_WORKERS", cores)?;
        if workers == 0 {
            return Err(ServeError::NoWorkers);
        }
        Ok(Self {
            config_path,
            bind: std::env::var("BIND_ADDRESS")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into()),
            port: env::number("PORT", 8080)?,
            metrics_port: env::number("METRICS_PORT", 8081)?,
            workers,
            work_stealing: matches!(
                std::env::var("GATEWAY_WORK_STEALING").as_deref(),
                Ok("1" | "true" | "on")
            ),
            upgrade: false,
            upgrade_sock: std::env::var("UPGRADE_SOCK")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_UPGRADE_SOCK.into()),
        })
    }
}

fn join(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Loads the route table, binds the listeners and serves until a signal.
/// SIGTERM drains gracefully (`server.grace_period`, default 10 s); SIGINT stops at once.
pub fn serve(settings: Settings) -> Result<(), ServeError> {
    let metrics = Metrics::new()?;
    let upstream_metrics = crate::upstream::metrics::register(&metrics.registry)?;
    let registry = Registry::with_metrics(upstream_metrics);
    let gw = Gateway::start(settings.config_path.clone(), registry, metrics)?;
    let cfg = gw.live.load().config.clone();
    let grace = cfg.server.grace_period.map_or(10, |d| d.get().as_secs());

    let conf = ServerConf {
        threads: settings.workers,
        work_stealing: settings.work_stealing,
        grace_period_seconds: Some(grace),
        graceful_shutdown_timeout_seconds: Some(grace.max(1)),
        max_retries: 10,
        upgrade_sock: settings.upgrade_sock.clone(),
        ..ServerConf::default()
    };
    let opt = pingora_core::server::configuration::Opt {
        upgrade: settings.upgrade,
        ..Default::default()
    };
    if settings.upgrade {
        tracing::info!(sock = %settings.upgrade_sock, "upgrade: waiting for the running gateway's listeners (send it SIGQUIT)");
    }
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();

    // HTTP/1 requests go through the front (idle connections, refused heads), which
    // hands each good head to pingora's proxy
    let mut http =
        pingora_proxy::http_proxy(&server.configuration, GatewayProxy { gw: gw.clone() });
    let mut opts = HttpServerOptions::default();
    opts.h2c = true;
    http.server_options = Some(opts);
    let mut proxy = Service::new(
        "api-gateway".to_string(),
        crate::front::FrontApp::new(http, gw.clone()),
    );
    // the front reads request heads into a buffer it hands to pingora; pingora's default
    // 64 KiB L4 read buffer per connection would cost ~46 KiB of RSS per idle connection
    proxy.add_listener(
        ListenerConfig::tcp(join(&settings.bind, settings.port))
            .l4_buffer(L4BufferSettings::default().read(PLAIN_READ_BUFFER)),
    );
    if let Some(tls) = &cfg.server.tls {
        let t = crate::tls_listener::listener(&gw, tls)?;
        // TLS reads whole records (16 KiB): a buffer that holds one keeps syscalls down
        proxy.add_listener(
            ListenerConfig::tcp(tls.listen.clone())
                .tls(t)
                .l4_buffer(L4BufferSettings::default().read(TLS_READ_BUFFER)),
        );
    }
    let series = std::sync::Arc::new(crate::observability::series::Series::new(
        std::time::Duration::from_millis(env::number("SERIES_INTERVAL_MS", 5000)?),
    ));
    series
        .spawn(gw.metrics.registry.clone())
        .map_err(ServeError::Sampler)?;
    let mut admin = Service::new(
        "admin".to_string(),
        AdminApp {
            gw: gw.clone(),
            series,
        },
    );
    admin.add_tcp(&join(&settings.bind, settings.metrics_port));

    server.add_service(proxy);
    server.add_service(admin);
    crate::upstream::add_background_services(&mut server, &gw.registry);
    server.add_service(pingora::services::background::background_service(
        "jobs",
        JobWorkers(gw.clone()),
    ));
    crate::reload::spawn(gw.clone())?;
    tracing::info!(
        port = settings.port,
        metrics_port = settings.metrics_port,
        workers = settings.workers,
        routes = gw.live.load().routes.len(),
        "api-gateway serving"
    );
    let delay = cfg
        .server
        .shutdown_delay
        .map_or(crate::lifecycle::DEFAULT_SHUTDOWN_DELAY, |d| d.get());
    server.run(pingora_core::server::RunArgs {
        shutdown_signal: Box::new(crate::lifecycle::Signals {
            gw: gw.clone(),
            delay,
        }),
    });
    if let Some(otel) = &gw.otel {
        otel.shutdown();
    }
    Ok(())
}

/// The async-job workers as a pingora background service: the embedded workers, or
/// in Kafka mode the tracker of the stages.
struct JobWorkers(std::sync::Arc<Gateway>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for JobWorkers {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let gw = self.0.clone();
        if let Some(bus) = gw.jobs.kafka.clone() {
            // Kafka mode: the backends run the stages; the gateway follows them
            let topics = gw
                .live
                .load()
                .routes
                .iter()
                .filter_map(|r| match &r.kind {
                    crate::flows::RouteKind::AsyncJob(a) => Some(a.topic.clone()),
                    _ => None,
                })
                .collect();
            let stop = async move {
                let _ = shutdown.changed().await;
            };
            crate::flows::jobs::tracker::run(gw.jobs.clone(), bus, topics, stop).await;
            return;
        }
        let pools: crate::flows::jobs::worker::Pools =
            std::sync::Arc::new(move |name: &str| gw.live.load().pools.get(name).cloned());
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        crate::flows::jobs::worker::run(self.0.jobs.clone(), pools, stop).await;
    }
}
