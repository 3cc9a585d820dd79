//! Service discovery: where a pool's targets come from when they are not listed.
//! [`DnsDiscovery`] resolves A and AAAA records of `dns: host:port` (through the system
//! resolver, or `nameserver` when given) every `refresh`; a failed or empty answer
//! keeps the last good set. An IP literal in `dns` is a static set.

use super::pool::PoolShared;
use super::Registry;
use crate::config::{split_host_port, DiscoveryConfig};
use async_trait::async_trait;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Why a discovery round gave nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("resolution of `{name}` failed: {reason}")]
    Resolve { name: String, reason: String },
    #[error("`{0}` resolved to no address")]
    Empty(String),
}

/// Why discovery cannot start: a bad `dns`/`nameserver`, or no system DNS configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("discovery.dns: {0}")]
    Dns(#[source] crate::config::AddrError),
    #[error("discovery.nameserver: `{0}` is not an `ip:port` address")]
    Nameserver(String),
    #[error("system DNS configuration: {0}")]
    SystemConfig(#[source] hickory_resolver::ResolveError),
}

/// A source of target addresses.
#[async_trait]
pub trait ServiceDiscovery: Send + Sync {
    /// The current addresses (never empty on success).
    async fn discover(&self) -> Result<Vec<SocketAddr>, DiscoveryError>;
}

/// A fixed set.
#[derive(Debug, Clone)]
pub struct StaticDiscovery(pub Vec<SocketAddr>);

#[async_trait]
impl ServiceDiscovery for StaticDiscovery {
    async fn discover(&self) -> Result<Vec<SocketAddr>, DiscoveryError> {
        if self.0.is_empty() {
            return Err(DiscoveryError::Empty("static".into()));
        }
        Ok(self.0.clone())
    }
}

/// A and AAAA records of one name, each answer asked afresh (no caching between
/// rounds: the refresh interval is the cache).
pub struct DnsDiscovery {
    host: String,
    port: u16,
    resolver: TokioResolver,
}

/// What `dns:` designates, checked without touching the network.
pub(crate) enum Source {
    Static(Vec<SocketAddr>),
    Dns {
        host: String,
        port: u16,
        nameserver: Option<SocketAddr>,
    },
}

/// Parses a discovery configuration (errors name the bad field).
pub(crate) fn for_config(cfg: &DiscoveryConfig) -> Result<Source, SetupError> {
    let (host, port) = split_host_port(&cfg.dns).map_err(SetupError::Dns)?;
    let nameserver = match &cfg.nameserver {
        None => None,
        Some(ns) => Some(
            ns.parse::<SocketAddr>()
                .or_else(|_| ns.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| SetupError::Nameserver(ns.clone()))?,
        ),
    };
    Ok(match host.parse::<IpAddr>() {
        Ok(ip) => Source::Static(vec![SocketAddr::new(ip, port)]),
        Err(_) => Source::Dns {
            host,
            port,
            nameserver,
        },
    })
}

impl DnsDiscovery {
    /// A resolver for `host`; `nameserver` replaces the system configuration. Per-query
    /// timeout 2 s, 2 attempts.
    pub fn new(host: &str, port: u16, nameserver: Option<SocketAddr>) -> Result<Self, SetupError> {
        Self::with_timeout(host, port, nameserver, Duration::from_secs(2), 2)
    }

    /// [`DnsDiscovery::new`] with another per-query timeout and number of attempts.
    pub fn with_timeout(
        host: &str,
        port: u16,
        nameserver: Option<SocketAddr>,
        timeout: Duration,
        attempts: usize,
    ) -> Result<Self, SetupError> {
        let mut builder = match nameserver {
            Some(ns) => {
                let group = NameServerConfigGroup::from_ips_clear(&[ns.ip()], ns.port(), true);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], group),
                    TokioConnectionProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(SetupError::SystemConfig)?,
        };
        let opts = builder.options_mut();
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.timeout = timeout;
        opts.attempts = attempts.max(1);
        opts.positive_max_ttl = Some(Duration::ZERO);
        Ok(Self {
            host: host.to_string(),
            port,
            resolver: builder.build(),
        })
    }
}

#[async_trait]
impl ServiceDiscovery for DnsDiscovery {
    async fn discover(&self) -> Result<Vec<SocketAddr>, DiscoveryError> {
        self.resolver.clear_cache();
        let lookup = self
            .resolver
            .lookup_ip(self.host.as_str())
            .await
            .map_err(|e| DiscoveryError::Resolve {
                name: self.host.clone(),
                reason: e.to_string(),
            })?;
        let mut addrs: Vec<SocketAddr> = lookup
            .iter()
            .map(|ip| SocketAddr::new(ip, self.port))
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        if addrs.is_empty() {
            return Err(DiscoveryError::Empty(self.host.clone()));
        }
        Ok(addrs)
    }
}

/// Refreshes one pool's targets until the pool is dropped: at once, then every
/// `refresh` (at least 100 ms).
pub(crate) async fn discovery_loop(reg: Arc<Registry>, pool: Weak<PoolShared>) {
    let Some(cfg) = pool.upgrade().and_then(|p| p.config.discovery.clone()) else {
        return;
    };
    let refresh = cfg.refresh.get().max(Duration::from_millis(100));
    let key = (cfg.dns.clone(), cfg.nameserver.clone());
    let source: Box<dyn ServiceDiscovery> = loop {
        let built = for_config(&cfg).and_then(|s| match s {
            Source::Static(a) => Ok(Box::new(StaticDiscovery(a)) as Box<dyn ServiceDiscovery>),
            Source::Dns {
                host,
                port,
                nameserver,
            } => DnsDiscovery::new(&host, port, nameserver)
                .map(|d| Box::new(d) as Box<dyn ServiceDiscovery>),
        });
        match built {
            Ok(s) => break s,
            Err(e) => tracing::warn!(dns = %cfg.dns, error = %e, "discovery cannot start"),
        }
        tokio::time::sleep(refresh).await;
        if pool.strong_count() == 0 {
            return;
        }
    };
    loop {
        let res = source.discover().await;
        let Some(p) = pool.upgrade() else { return };
        match res {
            Ok(addrs) => {
                reg.set_discovered(&p, key.clone(), cfg.weight, addrs);
            }
            Err(e) => tracing::warn!(upstream = %p.name, error = %e,
                kept = p.members.load().targets.len(), "discovery failed; keeping the last good set"),
        }
        drop(p);
        tokio::time::sleep(refresh).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dur, UpstreamConfig};
    use hickory_server::authority::MessageResponseBuilder;
    use hickory_server::proto::op::Header;
    use hickory_server::proto::rr::{rdata::A, Name, RData, Record, RecordType};
    use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
    use hickory_server::ServerFuture;
    use std::net::Ipv4Addr;
    use std::sync::Mutex;

    /// Answers every A query with the address in `ip`, AAAA with no record.
    struct OneA {
        ip: Arc<Mutex<Ipv4Addr>>,
    }

    #[async_trait]
    impl RequestHandler for OneA {
        async fn handle_request<R: ResponseHandler>(
            &self,
            request: &Request,
            mut response: R,
        ) -> ResponseInfo {
            let mut header = Header::response_from_request(request.header());
            header.set_authoritative(true);
            let mut answers = Vec::new();
            if let Ok(info) = request.request_info() {
                if info.query.query_type() == RecordType::A {
                    let ip = *self.ip.lock().expect("lock");
                    answers.push(Record::from_rdata(
                        Name::from(info.query.name()),
                        0,
                        RData::A(A(ip)),
                    ));
                }
            }
            let msg = MessageResponseBuilder::from_message_request(request).build(
                header,
                answers.iter(),
                std::iter::empty(),
                std::iter::empty(),
                std::iter::empty(),
            );
            response.send_response(msg).await.expect("send")
        }
    }

    async fn dns_server(ip: Arc<Mutex<Ipv4Addr>>) -> (SocketAddr, ServerFuture<OneA>) {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = sock.local_addr().expect("addr");
        let mut server = ServerFuture::new(OneA { ip });
        server.register_socket(sock);
        (addr, server)
    }

    async fn wait_for(what: impl Fn() -> bool) -> bool {
        crate::upstream::eventually(Duration::from_secs(3), what).await
    }

    #[test]
    fn config_parsing() {
        let cfg = |dns: &str, ns: Option<&str>| DiscoveryConfig {
            dns: dns.into(),
            refresh: Dur::secs(1),
            weight: 1,
            nameserver: ns.map(str::to_string),
        };
        assert!(
            matches!(for_config(&cfg("10.1.2.3:80", None)), Ok(Source::Static(a)) if a.len() == 1)
        );
        assert!(matches!(for_config(&cfg("svc:80", Some("127.0.0.1")))
            , Ok(Source::Dns { nameserver: Some(ns), .. }) if ns.port() == 53));
        assert!(for_config(&cfg("svc", None)).is_err());
        assert!(for_config(&cfg("svc:80", Some("nope"))).is_err());
    }

    #[tokio::test]
    async fn dns_changes_are_followed_and_last_good_set_survives_the_server() {
        let ip = Arc::new(Mutex::new(Ipv4Addr::new(10, 9, 0, 1)));
        let (ns, mut server) = dns_server(ip.clone()).await;
        let reg = Registry::new();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let _bg = reg.spawn_background(rx);
        let cfg = UpstreamConfig {
            discovery: Some(DiscoveryConfig {
                dns: "svc.test:8080".into(),
                refresh: Dur::millis(100),
                weight: 2,
                nameserver: Some(ns.to_string()),
            }),
            ..Default::default()
        };
        let pool = reg.build_pool("dyn", &cfg).expect("pool");
        assert!(
            !pool.has_available_target(),
            "not ready before the first answer"
        );
        let addrs =
            |p: &crate::upstream::Pool| p.targets().iter().map(|t| t.addr).collect::<Vec<_>>();
        let first: SocketAddr = "10.9.0.1:8080".parse().expect("addr");
        assert!(
            wait_for(|| addrs(&pool) == [first]).await,
            "{:?}",
            addrs(&pool)
        );
        assert!(pool.has_available_target());
        assert_eq!(pool.targets()[0].weight, 2);
        let state = reg.state(first);
        let _pick = pool.select(None, &[]).expect("pick");
        assert_eq!(state.in_flight(), 1);

        *ip.lock().expect("lock") = Ipv4Addr::new(10, 9, 0, 2);
        let second: SocketAddr = "10.9.0.2:8080".parse().expect("addr");
        assert!(
            wait_for(|| addrs(&pool) == [second]).await,
            "{:?}",
            addrs(&pool)
        );

        server.shutdown_gracefully().await.expect("shutdown");
        drop(server);
        let direct =
            DnsDiscovery::with_timeout("svc.test", 8080, Some(ns), Duration::from_millis(200), 1)
                .expect("resolver");
        assert!(direct.discover().await.is_err(), "server is gone");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(addrs(&pool), [second], "last good set kept");
        // a reload starts from the last good set, not from nothing
        let again = reg.build_pool("dyn", &cfg).expect("pool");
        assert_eq!(addrs(&again), [second]);
    }
}
