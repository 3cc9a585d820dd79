//! The client's address as a policy sees it: the TCP peer, or, when the peer is a
//! trusted proxy, the address that proxy saw (from `X-Forwarded-For`).

use crate::SettingsError;
use ipnet::IpNet;
use pingora_http::RequestHeader;
use std::net::IpAddr;

/// Parses a list of addresses or CIDR blocks, each error at `field[i]`.
pub fn nets(field: &str, list: &[String]) -> Result<Vec<IpNet>, SettingsError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    SettingsError::at(
                        format!("{field}[{i}]"),
                        format!("`{s}` is not an IP address or CIDR block"),
                    )
                })
        })
        .collect()
}

/// An IPv4-mapped IPv6 address as plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn parse(field: &str, list: &[String]) -> Result<Self, SettingsError> {
        nets(field, list).map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address: the TCP peer when it is not a trusted proxy; otherwise
    /// `X-Forwarded-For` read from the right, skipping trusted proxies: the first
    /// address that is not one (the left-most of the chain when all are trusted).
    /// Addresses left of the first untrusted one are the client's own claims and are
    /// never used. A malformed entry stops the walk at the last good address.
    pub fn client_ip(&self, peer: Option<IpAddr>, req: &RequestHeader) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if self.0.is_empty() || !self.trusts(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for v in req.headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(s) = v.to_str() else {
                return Some(client);
            };
            for part in s.rsplit(',') {
                let Some(ip) = parse_hop(part.trim()) else {
                    return Some(client);
                };
                client = canonical(ip);
                if !self.trusts(client) {
                    return Some(client);
                }
            }
        }
        Some(client)
    }
}

/// One `X-Forwarded-For` hop: an address, maybe with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(xff: &[&str]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for v in xff {
            r.append_header("x-forwarded-for", *v).unwrap();
        }
        r
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_peers() {
        let none = TrustedProxies::default();
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(none.client_ip(Some(peer), &req(&["1.2.3.4"])), Some(peer));

        let t = TrustedProxies::parse("trusted_proxies", &["10.0.0.0/8".into()]).unwrap();
        let r = req(&["6.6.6.6, 1.2.3.4, 10.0.0.7"]);
        assert_eq!(t.client_ip(Some(peer), &r), "1.2.3.4".parse().ok());
        // two header lines read as one list
        let r = req(&["6.6.6.6", "1.2.3.4:55, 10.0.0.7"]);
        assert_eq!(t.client_ip(Some(peer), &r), "1.2.3.4".parse().ok());
        // an untrusted peer's header is ignored
        let other: IpAddr = "192.168.0.1".parse().unwrap();
        assert_eq!(t.client_ip(Some(other), &r), Some(other));
        // no header: the peer itself
        assert_eq!(t.client_ip(Some(peer), &req(&[])), Some(peer));
        // garbage stops the walk
        let r = req(&["nonsense, 10.0.0.9"]);
        assert_eq!(t.client_ip(Some(peer), &r), "10.0.0.9".parse().ok());
        assert!(TrustedProxies::parse("t", &["x".into()]).is_err());
    }
}
