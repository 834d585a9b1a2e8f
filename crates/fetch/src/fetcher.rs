//! The fetcher: guard, breaker, robots.txt, politeness, then the request with
//! manual redirects, retries and limits.

use crate::breaker::Breaker;
use crate::guard::AllowList;
use crate::politeness::{HostCoordinator, LocalSlots, Turn};
use crate::resolve::{DnsRefusal, GuardedDns, Resolver};
use crate::response::{self, CREDENTIAL_HEADERS, Oversize, ReadError};
use crate::robots::{MAX_ROBOTS_BYTES, Robots};
use crate::{Accept, FetchConfig, FetchError, FetchRequest, Page};
use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderMap};
use rand::Rng;
use std::collections::HashSet;
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::{Instant, timeout_at};
use url::Url;

/// Robots.txt redirects followed (RFC 9309 §2.3.1.2).
const ROBOTS_MAX_REDIRECTS: usize = 5;

/// Fetches URLs for the platform. Cheap to clone; clones share connection pools,
/// robots.txt cache, politeness slots and circuit breakers.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    config: FetchConfig,
    allow: AllowList,
    /// Checks every address a name resolves to.
    strict: reqwest::Client,
    /// Used only for allow-listed `host:port` origins.
    trusted: reqwest::Client,
    hosts: HostCoordinator,
    slots: LocalSlots,
    breaker: Breaker,
    /// Per origin; the cell makes concurrent fetches of one origin share one request.
    robots: moka::sync::Cache<String, Arc<OnceCell<Arc<Robots>>>>,
}

/// How one fetch runs: the caller's page, or a robots.txt.
struct Plan {
    accept: Accept,
    max_redirects: usize,
    max_body: usize,
    oversize: Oversize,
    respect_robots: bool,
}

impl Fetcher {
    pub fn new(config: FetchConfig, resolver: Arc<dyn Resolver>, hosts: HostCoordinator) -> Result<Fetcher, String> {
        let allow = AllowList::parse(&config.allowed_private_hosts)?;
        let strict = build_client(&config, GuardedDns::new(Arc::clone(&resolver), HashSet::new()))?;
        let trusted = match allow.is_empty() {
            true => strict.clone(),
            false => build_client(&config, GuardedDns::new(resolver, allow.names()))?,
        };
        let robots = moka::sync::Cache::builder().max_capacity(10_000).time_to_live(config.robots_ttl).build();
        let breaker = Breaker::new(config.breaker_failures, config.breaker_open);
        let inner = Inner { config, allow, strict, trusted, hosts, slots: LocalSlots::default(), breaker, robots };
        Ok(Fetcher { inner: Arc::new(inner) })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.inner.config
    }

    /// The checks a URL passes before any lookup (syntax, scheme, credentials,
    /// odd and literal special-purpose hosts), honouring the allow-list.
    pub fn check_url(&self, raw: &str) -> Result<Url, FetchError> {
        self.inner.allow.check_url(raw).map(|(url, _)| url)
    }

    /// Fetches one page, within `total_timeout` from start to the last byte.
    pub async fn fetch(&self, request: &FetchRequest) -> Result<Page, FetchError> {
        let deadline = deadline_after(self.inner.config.total_timeout);
        let result = timeout_at(deadline, self.fetch_page(request, deadline)).await.unwrap_or(Err(FetchError::Timeout));
        if let Err(error) = &result {
            tracing::debug!(code = error.code(), "fetch failed");
        }
        result
    }

    async fn fetch_page(&self, request: &FetchRequest, deadline: Instant) -> Result<Page, FetchError> {
        let config = &self.inner.config;
        let (url, _) = self.inner.allow.check_url(&request.url)?;
        let headers = response::request_headers(&request.headers, request.validators.as_ref(), request.accept)?;
        let host = host_key(&url);
        if self.inner.breaker.is_open(&host) {
            return Err(FetchError::CircuitOpen);
        }
        let mut interval = config.host_interval;
        if request.respect_robots {
            let robots = self.robots(&url).await;
            if !robots.allowed(&path_and_query(&url)) {
                // The page is on the same origin: what kept robots.txt from us
                // (a refused address, no answer) keeps the page from us too.
                return Err(match robots.failure() {
                    Some(
                        e @ (FetchError::Blocked(_)
                        | FetchError::Unreachable(_)
                        | FetchError::Timeout
                        | FetchError::InvalidUrl(_)),
                    ) => e.clone(),
                    _ => FetchError::RobotsDisallowed,
                });
            }
            interval = interval.max(robots.crawl_delay().unwrap_or_default());
        }
        self.take_turn(&host, interval).await?;
        let plan = Plan {
            accept: request.accept,
            max_redirects: config.max_redirects,
            max_body: config.max_body_bytes,
            oversize: Oversize::Fail,
            respect_robots: request.respect_robots,
        };
        let mut page = self.execute(url, headers, &plan, deadline).await?;
        if let (true, Some(sent)) = (page.not_modified, &request.validators) {
            page.validators.etag = page.validators.etag.or_else(|| sent.etag.clone());
            page.validators.last_modified = page.validators.last_modified.or_else(|| sent.last_modified.clone());
        }
        tracing::debug!(
            host,
            status = page.status,
            redirects = page.redirects.len(),
            bytes = page.body.len(),
            elapsed_ms = u64::try_from(page.elapsed.as_millis()).unwrap_or(u64::MAX),
            "fetched"
        );
        Ok(page)
    }

    /// The robots.txt of the URL's origin, from the cache or fetched: 2xx → its
    /// rules; 4xx or too many redirects → allow all; 5xx or unreachable → disallow all.
    pub async fn robots(&self, url: &Url) -> Arc<Robots> {
        let key = origin_key(url);
        let cache = &self.inner.robots;
        let mut cell = cache.get_with(key.clone(), || Arc::new(OnceCell::new()));
        if cell.get().is_some_and(|robots| robots.is_stale_failure()) {
            cache.invalidate(&key);
            cell = cache.get_with(key, || Arc::new(OnceCell::new()));
        }
        Arc::clone(cell.get_or_init(|| Box::pin(self.fetch_robots(url))).await)
    }

    async fn fetch_robots(&self, url: &Url) -> Arc<Robots> {
        let mut robots_url = url.clone();
        robots_url.set_path("/robots.txt");
        robots_url.set_query(None);
        robots_url.set_fragment(None);
        let plan = Plan {
            accept: Accept::Any,
            max_redirects: ROBOTS_MAX_REDIRECTS,
            max_body: MAX_ROBOTS_BYTES,
            oversize: Oversize::Truncate,
            respect_robots: false,
        };
        let deadline = deadline_after(self.inner.config.total_timeout);
        let fetched = async {
            let (checked, _) = self.inner.allow.check_url(robots_url.as_str())?;
            let headers = response::request_headers(&[], None, Accept::Any)?;
            self.execute(checked, headers, &plan, deadline).await
        };
        let robots = match timeout_at(deadline, fetched).await.unwrap_or(Err(FetchError::Timeout)) {
            Ok(page) => Robots::parse(&String::from_utf8_lossy(&page.body), &self.inner.config.user_agent),
            Err(FetchError::Upstream(status)) if status < 500 => Robots::allow_all(),
            Err(FetchError::TooManyRedirects(_)) => Robots::allow_all(),
            Err(error) => {
                tracing::info!(
                    host = host_key(url),
                    code = error.code(),
                    "robots.txt unavailable; the site is disallowed"
                );
                Robots::unavailable(error)
            }
        };
        Arc::new(robots)
    }

    async fn take_turn(&self, host: &str, interval: Duration) -> Result<(), FetchError> {
        if interval.is_zero() {
            return Ok(());
        }
        let max_wait = self.inner.config.max_host_wait;
        match self.inner.hosts.reserve(&self.inner.slots, host, interval, max_wait).await {
            Turn::After(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Turn::Busy(retry_after) => Err(FetchError::HostBusy { retry_after }),
        }
    }

    /// Sends the request and follows redirects by hand, each hop checked again.
    async fn execute(
        &self,
        url: Url,
        mut headers: HeaderMap,
        plan: &Plan,
        deadline: Instant,
    ) -> Result<Page, FetchError> {
        let started = Instant::now();
        let conditional =
            headers.contains_key(header::IF_NONE_MATCH) || headers.contains_key(header::IF_MODIFIED_SINCE);
        let mut current = url.clone();
        let mut redirects = Vec::new();
        loop {
            let mut response = self.send(&current, &headers, deadline).await?;
            let status = response.status();
            if let Some(location) = redirect_location(&response) {
                if redirects.len() >= plan.max_redirects {
                    return Err(FetchError::TooManyRedirects(plan.max_redirects));
                }
                let next = self.redirect_target(&current, &location, status)?;
                if plan.respect_robots && !self.robots(&next).await.allowed(&path_and_query(&next)) {
                    return Err(FetchError::RobotsDisallowed);
                }
                if next.origin() != current.origin() {
                    for name in &CREDENTIAL_HEADERS {
                        headers.remove(name);
                    }
                }
                redirects.push(next.clone());
                current = next;
                continue;
            }
            let content_type = response::content_type(response.headers());
            let validators = response::validators(response.headers());
            let not_modified = status == StatusCode::NOT_MODIFIED && conditional;
            let body = if not_modified {
                Bytes::new()
            } else {
                if !status.is_success() {
                    return Err(FetchError::Upstream(status.as_u16()));
                }
                response::check_content_type(plan.accept, content_type.as_deref())?;
                self.read_body(&mut response, &current, plan, deadline).await?
            };
            let (status, elapsed, final_url) = (status.as_u16(), started.elapsed(), current);
            return Ok(Page {
                url,
                final_url,
                status,
                content_type,
                validators,
                not_modified,
                body,
                redirects,
                elapsed,
            });
        }
    }

    /// The body within the plan's limit; a stall or a broken connection counts
    /// against the host's breaker.
    async fn read_body(
        &self,
        response: &mut reqwest::Response,
        url: &Url,
        plan: &Plan,
        deadline: Instant,
    ) -> Result<Bytes, FetchError> {
        let error = match response::read_body(response, plan.max_body, plan.oversize, deadline).await {
            Ok(body) => return Ok(body),
            Err(ReadError::Fetch(error)) => return Err(error),
            Err(ReadError::Timeout) => FetchError::Timeout,
            Err(ReadError::Network(error)) => network_error(&error, url),
        };
        self.inner.breaker.failure(&host_key(url));
        Err(error)
    }

    /// Where a redirect leads, through the guard. Absolute and scheme-relative
    /// targets are checked as written, so odd host notations are seen.
    fn redirect_target(&self, current: &Url, location: &str, status: StatusCode) -> Result<Url, FetchError> {
        let joined = current.join(location).map_err(|_| FetchError::Upstream(status.as_u16()))?;
        let scheme_relative = location.starts_with(['/', '\\']) && location[1..].starts_with(['/', '\\']);
        let raw = if Url::parse(location).is_ok() {
            location.to_owned()
        } else if scheme_relative {
            format!("{}:{location}", current.scheme())
        } else {
            joined.to_string()
        };
        self.inner.allow.check_url(&raw).map(|(url, _)| url)
    }

    /// One request, retried after network errors and 5xx answers.
    async fn send(&self, url: &Url, headers: &HeaderMap, deadline: Instant) -> Result<reqwest::Response, FetchError> {
        let inner = &self.inner;
        let host = host_key(url);
        let client = if inner.allow.contains(url) { &inner.trusted } else { &inner.strict };
        let mut attempt = 0;
        loop {
            if !inner.breaker.permit(&host) {
                return Err(FetchError::CircuitOpen);
            }
            let sent = timeout_at(deadline, client.get(url.clone()).headers(headers.clone()).send()).await;
            let (error, pause) = match sent {
                Err(_) => {
                    inner.breaker.failure(&host);
                    return Err(FetchError::Timeout);
                }
                Ok(Ok(response)) if response.status().is_server_error() => {
                    inner.breaker.failure(&host);
                    (FetchError::Upstream(response.status().as_u16()), response::retry_after(response.headers()))
                }
                Ok(Ok(response)) => {
                    inner.breaker.success(&host);
                    return Ok(response);
                }
                Ok(Err(error)) => match refusal(&error, url) {
                    Some(refused) => {
                        inner.breaker.release(&host);
                        return Err(refused);
                    }
                    None => {
                        inner.breaker.failure(&host);
                        (network_error(&error, url), None)
                    }
                },
            };
            if attempt >= inner.config.retries {
                return Err(error);
            }
            let pause = pause.unwrap_or_else(|| backoff(inner.config.retry_backoff, attempt));
            // A pause that would end past the deadline is not worth taking.
            if Instant::now().checked_add(pause).is_none_or(|resume| resume >= deadline) {
                return Err(error);
            }
            tracing::debug!(host, attempt, pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX), "retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }
}

fn build_client(config: &FetchConfig, dns: GuardedDns) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(config.user_agent.as_str())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        // A proxy would resolve names itself, out of the guard's sight.
        .no_proxy()
        .referer(false)
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(4)
        .dns_resolver(Arc::new(dns))
        .build()
        .map_err(|e| format!("building the HTTP client failed: {e}"))
}

fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// Exponential backoff with jitter: `base × 2^attempt × [0.5, 1]`.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1 << attempt.min(16));
    let jitter: f64 = rand::thread_rng().gen_range(0.5..=1.0);
    Duration::try_from_secs_f64(full.as_secs_f64() * jitter).unwrap_or(full)
}

fn host_key(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_ascii_lowercase()
}

/// `scheme://host:port`, the robots.txt cache key.
fn origin_key(url: &Url) -> String {
    format!("{}://{}:{}", url.scheme(), host_key(url), url.port_or_known_default().unwrap_or(0))
}

fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

fn redirect_location(response: &reqwest::Response) -> Option<String> {
    let redirects = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
    let location = response.headers().get(header::LOCATION).filter(|_| redirects)?;
    Some(String::from_utf8_lossy(location.as_bytes()).trim().to_owned())
}

/// The guarded resolver refused the name: not the host's fault, not retried.
fn refusal(error: &reqwest::Error, url: &Url) -> Option<FetchError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<DnsRefusal>() {
            return Some(match refusal {
                DnsRefusal::Blocked(reason) => FetchError::Blocked(*reason),
                DnsRefusal::Unresolvable(_) => {
                    FetchError::Unreachable(format!("the name `{}` could not be resolved", host_key(url)))
                }
            });
        }
        source = cause.source();
    }
    None
}

/// A network failure, described by the host the caller named and the kind of
/// failure; never the address we connected to.
fn network_error(error: &reqwest::Error, url: &Url) -> FetchError {
    if error.is_timeout() {
        return FetchError::Timeout;
    }
    let mut cause = String::new();
    let mut source = error.source();
    while let Some(current) = source {
        cause = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map_or_else(|| io.kind().to_string(), ToString::to_string),
            None => current.to_string(),
        };
        source = current.source();
    }
    let what = if error.is_connect() { "could not connect to" } else { "the connection failed with" };
    match cause.is_empty() {
        true => FetchError::Unreachable(format!("{what} {}", host_key(url))),
        false => FetchError::Unreachable(format!("{what} {}: {cause}", host_key(url))),
    }
}
