//! Who listens on a loopback TCP port (Linux `/proc`), so that a launcher can tell its
//! own process's listener from another's: [`super::free_port`] releases the port it
//! picked, and another test may bind it before the process does. The gateway does not
//! say so itself (pingora retries a taken port for 30 s, silently), and its `/health`
//! would be answered by whoever holds the port: another test's gateway answers 200 too.

use std::collections::HashSet;

/// The listening sockets on `port` (any local address), from the process's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Nobody listens there (yet).
    Nobody,
    /// Process `pid` holds a listening socket on the port.
    Ours,
    /// Another process listens there: `pid` cannot bind it.
    Other,
}

/// Who listens on `port`, seen from process `pid`.
pub fn listener(pid: u32, port: u16) -> Listener {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return Listener::Nobody;
    }
    // read after the socket table: a listener of `pid` already has its descriptor
    let ours = socket_inodes(pid);
    if inodes.iter().any(|i| ours.contains(i)) {
        Listener::Ours
    } else {
        Listener::Other
    }
}

/// The inodes of the sockets in state LISTEN (`0A`) on `port`, IPv4 and IPv6.
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && *state == "0A" {
                if let Ok(inode) = inode.parse() {
                    out.push(inode);
                }
            }
        }
    }
    out
}

/// The socket inodes among `pid`'s open descriptors (`socket:[N]` links).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}
