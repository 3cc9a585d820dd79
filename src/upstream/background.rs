//! The registry's background task: one prober per health-checked (address, check)
//! and one refresher per discovery pool, started and stopped as pools are built and
//! dropped (the registry holds weak references, so a reload's new pools are picked up
//! and dropped pools stop being probed). Runs until the shutdown watch turns true.

use super::discovery::discovery_loop;
use super::health::{prober, ProbeKey};
use super::pool::PoolShared;
use super::Registry;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Longest time between two looks at the pools (changes also wake the task at once).
const SCAN: Duration = Duration::from_secs(1);

/// Adds the registry's background task (health checks, DNS refresh) to a pingora
/// server as the background service `upstreams`.
pub fn add_background_services(server: &mut pingora::server::Server, registry: &Arc<Registry>) {
    server.add_service(pingora::services::background::background_service(
        "upstreams",
        registry.background_service(),
    ));
}

/// The background task as a pingora service (see [`add_background_services`]).
pub struct UpstreamBackground(Arc<Registry>);

#[async_trait]
impl BackgroundService for UpstreamBackground {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.0.clone().run_background(shutdown).await;
    }
}

#[derive(Default)]
struct Tasks {
    probers: HashMap<ProbeKey, JoinHandle<()>>,
    discoverers: HashMap<usize, (Weak<PoolShared>, JoinHandle<()>)>,
}

impl Tasks {
    fn abort_all(&mut self) {
        self.probers.drain().for_each(|(_, h)| h.abort());
        self.discoverers.drain().for_each(|(_, (_, h))| h.abort());
    }
}

impl Registry {
    /// Health checks and DNS refresh for every pool of this registry, as a pingora
    /// background service.
    pub fn background_service(self: &Arc<Self>) -> UpstreamBackground {
        UpstreamBackground(self.clone())
    }

    /// Health checks and DNS refresh on the current tokio runtime, until `shutdown`
    /// turns true (or its sender is dropped).
    pub fn spawn_background(
        self: &Arc<Self>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(self.clone().run_background(shutdown))
    }

    /// The background loop itself.
    pub async fn run_background(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tasks = Tasks::default();
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.sync(&mut tasks);
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(SCAN) => {}
                r = shutdown.changed() => if r.is_err() { break },
            }
        }
        tasks.abort_all();
    }

    fn sync(self: &Arc<Self>, tasks: &mut Tasks) {
        let mut pools = self.lock_pools();
        pools.retain(|w| w.strong_count() > 0);
        let live: Vec<Arc<PoolShared>> = pools.iter().filter_map(Weak::upgrade).collect();

        tasks.discoverers.retain(|_, (w, h)| {
            let keep = w.strong_count() > 0 && !h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        for p in live.iter().filter(|p| p.config.discovery.is_some()) {
            let id = Arc::as_ptr(p) as usize;
            tasks.discoverers.entry(id).or_insert_with(|| {
                let w = Arc::downgrade(p);
                (w.clone(), tokio::spawn(discovery_loop(self.clone(), w)))
            });
        }

        let mut wanted = HashMap::new();
        for p in &live {
            let Some(check) = &p.config.health_check else {
                continue;
            };
            for t in &p.members.load().targets {
                let key = ProbeKey::new(
                    t.addr,
                    check,
                    p.config.host.as_deref(),
                    p.config.tls.enabled(),
                );
                wanted
                    .entry(key)
                    .or_insert_with(|| (t.state.clone(), p.name.clone()));
            }
        }
        tasks.probers.retain(|k, h| {
            let keep = wanted.contains_key(k) && !h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        let covered: HashSet<SocketAddr> = wanted.keys().map(|k| k.addr).collect();
        for (key, (state, name)) in wanted {
            tasks
                .probers
                .entry(key.clone())
                .or_insert_with(|| tokio::spawn(prober(key, state, name)));
        }
        for s in self.live_states() {
            if !covered.contains(&s.addr) && s.is_monitored() {
                tracing::info!(target = %s.addr, "no health check covers the target any more");
                s.unmonitor();
            }
        }
        drop(pools);
    }
}
