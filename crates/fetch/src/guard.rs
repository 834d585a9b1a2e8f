//! The SSRF guard: which URLs, and which addresses, a fetch may reach.
//!
//! [`check_url`] looks at the URL alone (scheme, credentials, odd IPv4 spellings,
//! port, IP-literal hosts); names are checked after resolution by
//! [`check_ip`] on every address they resolve to.

use crate::{BlockReason, FetchError};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Whether an address may be fetched: public unicast only.
pub fn check_ip(ip: IpAddr) -> Result<(), BlockReason> {
    match classify(ip) {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// Why an address is special-purpose, or `None` when it is public.
pub fn classify(ip: IpAddr) -> Option<BlockReason> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Checks a URL without resolving it: syntax, http(s), no credentials, no odd
/// IPv4 host notation, no port 0, and an IP-literal host must be public.
pub fn check_url(raw: &str) -> Result<Url, FetchError> {
    let url = check_syntax(raw)?;
    check_literal_host(&url)?;
    Ok(url)
}

/// Cloud metadata endpoints (AWS, GCP, Azure, OpenStack: 169.254.169.254; AWS ECS
/// task metadata; Alibaba; Oracle Cloud's second address).
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];

/// AWS's IPv6 instance metadata endpoint.
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// IPv4 special-purpose ranges (RFC 6890 and the IANA registry), first match wins.
const V4_TABLE: &[(Ipv4Addr, u8, BlockReason)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, BlockReason::Unspecified),
    (Ipv4Addr::new(10, 0, 0, 0), 8, BlockReason::Private),
    (Ipv4Addr::new(100, 64, 0, 0), 10, BlockReason::SharedAddressSpace),
    (Ipv4Addr::new(127, 0, 0, 0), 8, BlockReason::Loopback),
    (Ipv4Addr::new(169, 254, 0, 0), 16, BlockReason::LinkLocal),
    (Ipv4Addr::new(172, 16, 0, 0), 12, BlockReason::Private),
    (Ipv4Addr::new(192, 0, 0, 0), 24, BlockReason::Reserved),
    (Ipv4Addr::new(192, 0, 2, 0), 24, BlockReason::Documentation),
    (Ipv4Addr::new(192, 88, 99, 0), 24, BlockReason::Translated),
    (Ipv4Addr::new(192, 168, 0, 0), 16, BlockReason::Private),
    (Ipv4Addr::new(198, 18, 0, 0), 15, BlockReason::Benchmarking),
    (Ipv4Addr::new(198, 51, 100, 0), 24, BlockReason::Documentation),
    (Ipv4Addr::new(203, 0, 113, 0), 24, BlockReason::Documentation),
    (Ipv4Addr::new(224, 0, 0, 0), 4, BlockReason::Multicast),
    // Includes the limited broadcast address 255.255.255.255.
    (Ipv4Addr::new(240, 0, 0, 0), 4, BlockReason::Reserved),
];

fn classify_v4(ip: Ipv4Addr) -> Option<BlockReason> {
    if METADATA_V4.contains(&ip) {
        return Some(BlockReason::Metadata);
    }
    let bits = u32::from(ip);
    V4_TABLE
        .iter()
        .find(|(net, len, _)| {
            bits.checked_shr(32 - u32::from(*len)) == u32::from(*net).checked_shr(32 - u32::from(*len))
        })
        .map(|(_, _, reason)| *reason)
}

/// What an IPv6 range means for the guard.
#[derive(Clone, Copy)]
enum V6Rule {
    Block(BlockReason),
    /// The last 32 bits are an IPv4 address: its verdict, or the fallback when it is public.
    Embedded(Option<BlockReason>),
}

/// IPv6 special-purpose ranges (RFC 6890, RFC 8215, RFC 9637 and the IANA
/// registry), first match wins; anything outside 2000::/3 is not allocated for
/// global unicast and refused as reserved.
const V6_TABLE: &[(Ipv6Addr, u8, V6Rule)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, V6Rule::Block(BlockReason::Unspecified)),
    (Ipv6Addr::LOCALHOST, 128, V6Rule::Block(BlockReason::Loopback)),
    // IPv4-mapped: the embedded IPv4 address decides.
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, V6Rule::Embedded(None)),
    // IPv4-translated (RFC 2765).
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, V6Rule::Embedded(Some(BlockReason::Translated))),
    // IPv4-compatible (deprecated).
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, V6Rule::Embedded(Some(BlockReason::Reserved))),
    // NAT64 well-known prefix and the local-use one.
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, V6Rule::Embedded(Some(BlockReason::Translated))),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, V6Rule::Block(BlockReason::Translated)),
    // Discard-only.
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, V6Rule::Block(BlockReason::Reserved)),
    // Teredo.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, V6Rule::Block(BlockReason::Translated)),
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, V6Rule::Block(BlockReason::Benchmarking)),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, V6Rule::Block(BlockReason::Documentation)),
    // The rest of the IETF protocol assignments (ORCHID, AMT, AS112…): no web content.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, V6Rule::Block(BlockReason::Reserved)),
    // 6to4.
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, V6Rule::Block(BlockReason::Translated)),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, V6Rule::Block(BlockReason::Documentation)),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, V6Rule::Block(BlockReason::UniqueLocal)),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, V6Rule::Block(BlockReason::LinkLocal)),
    // Site-local (deprecated, but still private where it is used).
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, V6Rule::Block(BlockReason::Private)),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, V6Rule::Block(BlockReason::Multicast)),
];

const GLOBAL_UNICAST: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

fn in_v6_net(bits: u128, net: Ipv6Addr, len: u8) -> bool {
    let shift = 128 - u32::from(len);
    bits.checked_shr(shift) == u128::from(net).checked_shr(shift)
}

fn classify_v6(ip: Ipv6Addr) -> Option<BlockReason> {
    if METADATA_V6.contains(&ip) {
        return Some(BlockReason::Metadata);
    }
    let bits = u128::from(ip);
    let rule = V6_TABLE.iter().find(|(net, len, _)| in_v6_net(bits, *net, *len)).map(|(_, _, rule)| *rule);
    match rule {
        Some(V6Rule::Block(reason)) => Some(reason),
        Some(V6Rule::Embedded(fallback)) => {
            let [.., a, b, c, d] = ip.octets();
            classify_v4(Ipv4Addr::new(a, b, c, d)).or(fallback)
        }
        None if !in_v6_net(bits, GLOBAL_UNICAST.0, GLOBAL_UNICAST.1) => Some(BlockReason::Reserved),
        None => None,
    }
}

/// Everything but the host's address: syntax, scheme, credentials, odd IPv4
/// notation, port. The fetcher applies the allow-list after this.
pub(crate) fn check_syntax(raw: &str) -> Result<Url, FetchError> {
    let url = Url::parse(raw).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Blocked(BlockReason::Scheme));
    }
    let authority = raw_authority(raw);
    if !url.username().is_empty() || url.password().is_some() || authority.as_deref().is_some_and(|a| a.contains('@')) {
        return Err(FetchError::Blocked(BlockReason::Credentials));
    }
    match url.host() {
        None => return Err(FetchError::InvalidUrl("the URL has no host".to_owned())),
        // The WHATWG parser turns `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`,
        // `127.0.0.1.` and percent-encoded digits into 127.0.0.1: anything but the
        // canonical dotted quad in the input is refused.
        Some(Host::Ipv4(ip)) => {
            let written = authority.as_deref().map(raw_host);
            if written != Some(ip.to_string().as_str()) {
                return Err(FetchError::Blocked(BlockReason::OddHostForm));
            }
        }
        Some(Host::Ipv6(_) | Host::Domain(_)) => {}
    }
    if url.port() == Some(0) {
        return Err(FetchError::Blocked(BlockReason::Port));
    }
    Ok(url)
}

/// An IP-literal host must be public; `localhost` names are loopback (RFC 6761)
/// without asking a resolver.
pub(crate) fn check_literal_host(url: &Url) -> Result<(), FetchError> {
    match url.host() {
        Some(Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip)).map_err(FetchError::Blocked),
        Some(Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip)).map_err(FetchError::Blocked),
        Some(Host::Domain(name)) if is_localhost(name) => Err(FetchError::Blocked(BlockReason::Loopback)),
        Some(Host::Domain(_)) => Ok(()),
        None => Err(FetchError::InvalidUrl("the URL has no host".to_owned())),
    }
}

fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost")
}

/// The authority as written, after the same clean-up the URL parser does first
/// (surrounding spaces and controls trimmed, tabs and newlines removed). Special
/// schemes accept any number of `/` or `\` after the colon.
fn raw_authority(raw: &str) -> Option<String> {
    let cleaned: String =
        raw.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let (_, rest) = cleaned.split_once(':')?;
    let rest = rest.trim_start_matches(['/', '\\']);
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// The host part of a raw authority: after any userinfo, before any port.
fn raw_host(authority: &str) -> &str {
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(host, _)| host)
}

/// The `host:port` origins that may resolve to special-purpose addresses.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllowList {
    entries: HashSet<(String, u16)>,
}

impl AllowList {
    /// Parses `host:port` entries; the port is required.
    pub(crate) fn parse(entries: &[String]) -> Result<Self, String> {
        let mut parsed = HashSet::new();
        for entry in entries {
            let entry = entry.trim();
            let explicit_port = entry.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok());
            let url = Url::parse(&format!("http://{entry}/")).ok().filter(|_| explicit_port);
            let key =
                url.as_ref().and_then(|url| Some((url.host_str()?.to_ascii_lowercase(), url.port_or_known_default()?)));
            match key {
                Some(key) => parsed.insert(key),
                None => return Err(format!("allowed_private_hosts entry `{entry}` is not `host:port`")),
            };
        }
        Ok(AllowList { entries: parsed })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn contains(&self, url: &Url) -> bool {
        match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => self.entries.contains(&(host.to_ascii_lowercase(), port)),
            _ => false,
        }
    }

    /// The host names (not IP literals) on the list.
    pub(crate) fn names(&self) -> HashSet<String> {
        self.entries
            .iter()
            .filter(|(host, _)| !host.starts_with('[') && host.parse::<Ipv4Addr>().is_err())
            .map(|(host, _)| host.clone())
            .collect()
    }

    /// [`check_url`], except that an allow-listed origin skips the address check.
    /// Returns whether it did.
    pub(crate) fn check_url(&self, raw: &str) -> Result<(Url, bool), FetchError> {
        let url = check_syntax(raw)?;
        if self.contains(&url) {
            return Ok((url, true));
        }
        check_literal_host(&url)?;
        Ok((url, false))
    }
}
