//! Fetching other people's URLs safely: the SSRF guard, robots.txt, per-host
//! politeness, retries and a circuit breaker, over HTTP/1.1 and HTTP/2.
//!
//! Every fetch goes through the same steps, each able to refuse it:
//!
//! 1. [`guard::check_url`]: http(s) only, no credentials, no odd IPv4 spellings,
//!    no special-purpose IP literals (the full IPv4/IPv6 table, see [`guard::check_ip`]).
//! 2. The circuit breaker of the host ([`FetchError::CircuitOpen`]).
//! 3. robots.txt, when the request asks for it ([`FetchError::RobotsDisallowed`]).
//! 4. Politeness: one slot per host and interval, in process or shared through Redis
//!    ([`HostCoordinator`], [`FetchError::HostBusy`]).
//! 5. The request: names are resolved once by our [`Resolver`], every address is
//!    checked, and the connection goes only to those addresses. Redirects are
//!    followed by hand, each hop checked again. Size, time and content-type limits
//!    apply to the whole fetch.
//!
//! `allowed_private_hosts` (`host:port`) lets exactly those origins through the
//! address check, for internal services and tests.

mod breaker;
mod error;
mod fetcher;
pub mod guard;
mod politeness;
mod resolve;
mod response;
pub mod robots;

pub use error::{BlockReason, FetchError};
pub use fetcher::Fetcher;
pub use politeness::HostCoordinator;
pub use resolve::{Resolver, StaticResolver, SystemResolver};
pub use robots::Robots;

use bytes::Bytes;
use std::time::Duration;
use url::Url;

/// How the fetcher behaves; every field has a documented default.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Sent as `User-Agent`; its first word before `/` is the robots.txt product token.
    pub user_agent: String,
    /// Largest body accepted, after decompression (bytes).
    pub max_body_bytes: usize,
    pub connect_timeout: Duration,
    /// For the whole fetch, redirects included.
    pub total_timeout: Duration,
    pub max_redirects: usize,
    /// `host:port` entries the guard lets through although they resolve to
    /// special-purpose addresses. Empty by default.
    pub allowed_private_hosts: Vec<String>,
    /// Least time between two requests to one host, unless robots.txt asks for more.
    pub host_interval: Duration,
    /// Longest a fetch waits for its turn at a host before failing with `host_busy`.
    pub max_host_wait: Duration,
    /// Extra attempts after a network error or a 5xx.
    pub retries: u32,
    /// First pause before a retry; it doubles with each attempt (jittered), unless
    /// the site's `Retry-After` asks for another.
    pub retry_backoff: Duration,
    /// Consecutive failures that open a host's circuit, and how long it stays open.
    /// Zero failures turns the breaker off.
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    /// How long a robots.txt is cached.
    pub robots_ttl: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            user_agent: concat!("AnnoBot/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_body_bytes: 10 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(20),
            max_redirects: 10,
            allowed_private_hosts: Vec::new(),
            host_interval: Duration::from_millis(0),
            max_host_wait: Duration::from_secs(10),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            breaker_failures: 5,
            breaker_open: Duration::from_secs(30),
            robots_ttl: Duration::from_secs(3600),
        }
    }
}

/// What to fetch.
#[derive(Clone, Debug, Default)]
pub struct FetchRequest {
    pub url: String,
    /// Caller-supplied request headers (a fetch with any is private to its tenant).
    /// `Host`, `User-Agent`, `Accept-Encoding`, conditional and hop-by-hop headers
    /// are ours and dropped; `Cookie` and `Authorization` do not survive a
    /// cross-origin redirect.
    pub headers: Vec<(String, String)>,
    /// Validators of a cached copy, for a conditional request.
    pub validators: Option<Validators>,
    /// Check robots.txt first (and honour its `Crawl-delay`).
    pub respect_robots: bool,
    /// Which content types are accepted; others fail before the body is read.
    pub accept: Accept,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accept {
    /// HTML, XHTML, plain text, or no declared type.
    #[default]
    Html,
    /// Anything (robots.txt, sitemaps).
    Any,
}

/// `ETag` and `Last-Modified` of a copy, stored with it for the next conditional request.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A fetched page.
#[derive(Clone, Debug)]
pub struct Page {
    /// The URL asked for, normalised.
    pub url: Url,
    /// Where the last redirect led.
    pub final_url: Url,
    pub status: u16,
    pub content_type: Option<String>,
    pub validators: Validators,
    /// `304 Not Modified` answered a conditional request; `body` is empty.
    pub not_modified: bool,
    pub body: Bytes,
    /// The redirect hops followed, in order.
    pub redirects: Vec<Url>,
    pub elapsed: Duration,
}
