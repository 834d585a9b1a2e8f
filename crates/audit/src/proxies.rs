//! The client address of a call: the socket's peer, or, when the peer is a
//! trusted proxy, the address it forwarded in `X-Forwarded-For`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address range, `10.0.0.0/8` or `2001:db8::/32`; a bare address is itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, width: u8, prefix: u8) -> bool {
    let shift = u32::from(width - prefix);
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an address or a range such as 10.0.0.0/8");
        let (address, prefix) = match s.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s.trim(), None),
        };
        let network = address.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= width).ok_or_else(bad)?,
            None => width,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`gateway.trusted_proxies`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses the configured ranges; an error names the bad entry.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries.iter().map(|e| e.as_ref().parse()).collect::<Result<Vec<_>, _>>().map(TrustedProxies)
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    /// The client's address: starting from the peer, walk `X-Forwarded-For`
    /// (every header, in order) from the right while the hop so far is a
    /// trusted proxy. An entry that is not an address stops the walk.
    pub fn client_ip<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        let mut client = peer?.to_canonical();
        if !self.is_trusted(client) {
            return Some(client);
        }
        let hops: Vec<&str> = forwarded_for.into_iter().flat_map(|value| value.split(',')).collect();
        for hop in hops.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match() {
        let r: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains(ip("10.1.2.3")) && !r.contains(ip("11.0.0.1")));
        assert!(r.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped peers are their IPv4 address");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse(&["10.0.0.0/8", "bad"]).unwrap_err().contains("bad"));
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap();
        let peer = Some(ip("10.0.0.5"));
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(proxies.client_ip(Some(ip("198.51.100.1")), ["203.0.113.9"]), Some(ip("198.51.100.1")));
        // The rightmost untrusted hop is the client; what it prepended is ignored.
        assert_eq!(proxies.client_ip(peer, ["6.6.6.6, 203.0.113.9, 10.0.0.2"]), Some(ip("203.0.113.9")));
        // Several headers are one list, in order.
        assert_eq!(proxies.client_ip(peer, ["6.6.6.6", "203.0.113.9:4711"]), Some(ip("203.0.113.9")));
        // All trusted: the leftmost.
        assert_eq!(proxies.client_ip(peer, ["10.0.0.3, 10.0.0.2"]), Some(ip("10.0.0.3")));
        // Garbage stops the walk at the last address known.
        assert_eq!(proxies.client_ip(peer, ["203.0.113.9, unknown"]), Some(ip("10.0.0.5")));
        // No header: the peer.
        assert_eq!(proxies.client_ip(peer, []), Some(ip("10.0.0.5")));
        assert_eq!(proxies.client_ip(None, ["203.0.113.9"]), None);
        // Nothing trusted: forwarding headers change nothing.
        assert_eq!(TrustedProxies::default().client_ip(peer, ["203.0.113.9"]), Some(ip("10.0.0.5")));
        assert_eq!(proxies.client_ip(Some(ip("127.0.0.1")), ["[2001:db8::1]:443"]), Some(ip("2001:db8::1")));
    }
}
