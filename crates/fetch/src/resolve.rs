//! Name resolution behind a trait, and the adapter that makes reqwest connect
//! only to addresses the guard has checked.

use crate::BlockReason;
use crate::guard::check_ip;
use futures::future::BoxFuture;
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Resolves a host name to its addresses.
pub trait Resolver: Send + Sync {
    fn resolve(&self, host: &str) -> BoxFuture<'_, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'_, io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            let mut ips: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect();
            ips.sort_unstable();
            ips.dedup();
            Ok(ips)
        })
    }
}

/// A fixed map of names to addresses, for tests. Unknown names fail with
/// [`io::ErrorKind::NotFound`].
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a name.
    pub fn with(mut self, host: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.insert(host, addresses);
        self
    }

    pub fn insert(&mut self, host: &str, addresses: impl IntoIterator<Item = IpAddr>) {
        self.hosts.insert(host.to_ascii_lowercase(), addresses.into_iter().collect());
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'_, io::Result<Vec<IpAddr>>> {
        let found = self.hosts.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move { found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown host")) })
    }
}

/// Why the guarded resolver gave no addresses. The fetcher finds it in reqwest's
/// error chain.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DnsRefusal {
    #[error("{0}")]
    Blocked(BlockReason),
    #[error("the host name could not be resolved")]
    Unresolvable(#[source] io::Error),
}

/// Resolves once and checks every address: one forbidden address refuses the name.
pub(crate) async fn guarded_lookup(
    resolver: &dyn Resolver,
    host: &str,
    trusted: bool,
) -> Result<Vec<IpAddr>, DnsRefusal> {
    let ips = resolver.resolve(host).await.map_err(DnsRefusal::Unresolvable)?;
    if ips.is_empty() {
        return Err(DnsRefusal::Unresolvable(io::Error::new(io::ErrorKind::NotFound, "no addresses")));
    }
    if !trusted {
        for ip in &ips {
            check_ip(*ip).map_err(DnsRefusal::Blocked)?;
        }
    }
    Ok(ips)
}

/// reqwest's resolver: our [`Resolver`] plus the guard, so reqwest never looks a
/// name up by itself and connects only to the addresses returned here.
pub(crate) struct GuardedDns {
    resolver: Arc<dyn Resolver>,
    /// Names whose addresses are not checked (allow-listed origins; this resolver
    /// serves only the client used for them).
    trusted: HashSet<String>,
}

impl GuardedDns {
    pub(crate) fn new(resolver: Arc<dyn Resolver>, trusted: HashSet<String>) -> Self {
        GuardedDns { resolver, trusted }
    }
}

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = Arc::clone(&self.resolver);
        let host = name.as_str().to_ascii_lowercase();
        let trusted = self.trusted.contains(&host);
        Box::pin(async move {
            let ips = guarded_lookup(resolver.as_ref(), &host, trusted).await?;
            let addrs: reqwest::dns::Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
