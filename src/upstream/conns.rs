//! Upstream connections as far as they can be observed. Pingora's keep-alive pool is
//! private to its connector (no count of idle connections is exposed), so:
//!
//! - the proxy reports each connection it gets for a request (`connected_to_upstream`
//!   tells whether it came from the pool): [`ConnStats`] counts connections opened and
//!   reused, and those carrying a request now (`in_use`, released with the [`Pick`]);
//! - the connections open to a target are read from the kernel at scrape time
//!   ([`open_by_remote`]: this process's established TCP sockets, by remote address);
//!   the ones not carrying a proxied request are `idle` (pingora's keep-alive pool,
//!   plus keep-alive connections of the flow steps' HTTP client, and a health probe's
//!   connection while it runs).
//!
//! [`Pick`]: super::Pick

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connection counts of one target address.
#[derive(Debug, Default)]
pub struct ConnStats {
    opened: AtomicU64,
    reused: AtomicU64,
    in_use: AtomicU64,
}

impl ConnStats {
    /// A request got a connection (`reused`: from the keep-alive pool).
    pub(crate) fn acquire(&self, reused: bool) {
        let c = if reused { &self.reused } else { &self.opened };
        c.fetch_add(1, Ordering::Relaxed);
        self.in_use.fetch_add(1, Ordering::Relaxed);
    }

    /// The request that held a connection finished (the connection went back to the
    /// pool or was closed).
    pub(crate) fn release(&self) {
        // never below zero, whatever the order of events
        let _ = self
            .in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// New connections made to the target for proxied requests.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Proxied requests that reused a pooled keep-alive connection.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// Connections carrying a proxied request now.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }
}

/// Established TCP connections of this process, by remote address; `None` where the
/// kernel does not tell (not Linux, `/proc` unreadable).
pub type OpenConns = Option<Arc<HashMap<SocketAddr, u64>>>;

/// How long one reading of the socket tables serves (a scrape and the dashboard's
/// polls read it together; listing the descriptors costs one `readlink` each).
const FRESH_FOR: Duration = Duration::from_millis(500);

static CACHE: Mutex<Option<(Instant, OpenConns)>> = Mutex::new(None);

/// This process's established TCP connections by remote address (cached briefly).
pub fn open_by_remote() -> OpenConns {
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, v)) = c.as_ref() {
        if at.elapsed() < FRESH_FOR {
            return v.clone();
        }
    }
    let v = read_open().map(Arc::new);
    *c = Some((Instant::now(), v.clone()));
    v
}

#[cfg(target_os = "linux")]
fn read_open() -> Option<HashMap<SocketAddr, u64>> {
    use procfs::net::TcpState;
    use procfs::process::{FDTarget, Process};
    use std::collections::HashSet;
    let me = Process::myself().ok()?;
    let mine: HashSet<u64> = me
        .fd()
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|fd| match fd.target {
            FDTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect();
    let mut entries = me.tcp().ok()?;
    entries.extend(me.tcp6().unwrap_or_default());
    let mut out = HashMap::new();
    for e in entries {
        if e.state == TcpState::Established && mine.contains(&e.inode) {
            *out.entry(canonical(e.remote_address)).or_insert(0) += 1;
        }
    }
    Some(out)
}

#[cfg(not(target_os = "linux"))]
fn read_open() -> Option<HashMap<SocketAddr, u64>> {
    None
}

/// An IPv4-mapped IPv6 address as the IPv4 address (a dual-stack socket's view).
fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => a,
        },
        v4 => v4,
    }
}

/// In-use and idle connection counts of a target: `None` for idle when the open
/// connections are not known.
pub fn split(stats: &ConnStats, addr: SocketAddr, open: &OpenConns) -> (u64, Option<u64>) {
    let in_use = stats.in_use();
    let idle = open
        .as_ref()
        .map(|m| m.get(&addr).copied().unwrap_or(0).saturating_sub(in_use));
    (in_use, idle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_and_never_below_zero() {
        let s = ConnStats::default();
        s.acquire(false);
        s.acquire(true);
        assert_eq!((s.opened(), s.reused(), s.in_use()), (1, 1, 2));
        s.release();
        s.release();
        s.release();
        assert_eq!(s.in_use(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sees_its_own_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let _c = std::net::TcpStream::connect(addr).unwrap();
        let _s = l.accept().unwrap();
        let m = read_open().unwrap();
        assert_eq!(m.get(&addr).copied(), Some(1), "{m:?}");
        let stats = ConnStats::default();
        let open = Some(Arc::new(m));
        assert_eq!(split(&stats, addr, &open), (0, Some(1)));
        stats.acquire(true);
        assert_eq!(split(&stats, addr, &open), (1, Some(0)));
    }
}
