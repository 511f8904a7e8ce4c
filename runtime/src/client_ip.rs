//! Who the client is behind reverse proxies. `X-Forwarded-For` is believed
//! only when the TCP peer is a configured proxy (`TRUSTED_PROXIES`, CIDR
//! ranges such as the ingress controller's pod network); the client is then
//! the right-most address that is not itself a trusted proxy. A spoofed
//! header from anyone else is ignored: the peer address is the client.

use std::net::IpAddr;

use ipnet::IpNet;

/// The configured proxy ranges. Empty: no header is trusted.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDR ranges (`10.0.0.0/8`) or single addresses (`10.1.2.3`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("TRUSTED_PROXIES entry {e:?} is not an address or CIDR range"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address given the TCP peer and the values of every
    /// `X-Forwarded-For` header, in order. Walks the list from the right
    /// while the hop is a trusted proxy; an unparseable entry stops the walk
    /// at the last trusted hop (it cannot be told apart from a forgery).
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).map(str::trim).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn believes_the_header_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.168.1.7".into()]).unwrap();
        // From the proxy: the right-most untrusted hop.
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), ["203.0.113.9"].into_iter()), ip("203.0.113.9"));
        // A client-supplied prefix is ignored: the proxy appended the real one.
        assert_eq!(
            proxies.client_ip(ip("10.1.1.1"), ["1.2.3.4, 203.0.113.9, 10.2.2.2"].into_iter()),
            ip("203.0.113.9")
        );
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), ["1.2.3.4", "198.51.100.1"].into_iter()), ip("198.51.100.1"));
        // From anyone else: the peer, whatever the header says.
        assert_eq!(proxies.client_ip(ip("203.0.113.50"), ["1.2.3.4"].into_iter()), ip("203.0.113.50"));
        // Junk stops the walk at the last trusted hop; no header: the peer.
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), ["1.2.3.4, junk"].into_iter()), ip("10.1.1.1"));
        assert_eq!(proxies.client_ip(ip("192.168.1.7"), std::iter::empty()), ip("192.168.1.7"));
        // IPv4-mapped peers count as IPv4.
        assert_eq!(proxies.client_ip(ip("::ffff:10.0.0.1"), ["198.51.100.2"].into_iter()), ip("198.51.100.2"));
        // Nothing configured: nothing trusted.
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("10.1.1.1"), ["1.2.3.4"].into_iter()), ip("10.1.1.1"));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy".into()]).is_err());
    }
}
