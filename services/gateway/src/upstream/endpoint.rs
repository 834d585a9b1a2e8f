//! One instance behind the pool: its address, the requests it is serving, and
//! whether it may be chosen (ready by the active check, not ejected).

use super::metrics::EndpointMetrics;
use http::Uri;
use http::uri::{PathAndQuery, Scheme};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What the pool knows of one endpoint, for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointStatus {
    /// `host:port`.
    pub address: String,
    pub in_flight: usize,
    /// The last active check passed (or none has run yet).
    pub ready: bool,
    /// Passively ejected at this moment.
    pub ejected: bool,
}

pub(crate) struct Endpoint {
    /// `host:port`, also the metric label.
    pub(crate) address: String,
    scheme: Scheme,
    authority: http::uri::Authority,
    in_flight: AtomicUsize,
    ready: AtomicBool,
    health: Mutex<Health>,
    metrics: EndpointMetrics,
}

/// Passive health: nginx's `max_fails`/`fail_timeout`, plus probation: once an
/// ejection has run out, the first request decides, so a still-broken endpoint
/// costs one failure per timeout rather than `max_fails`.
#[derive(Default)]
struct Health {
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
}

impl Endpoint {
    /// An endpoint at `base` (`http://host:port`); a path on it is ignored.
    pub(crate) fn new(base: &Uri, metrics: EndpointMetrics) -> Option<Endpoint> {
        let authority = base.authority()?.clone();
        let scheme = base.scheme().cloned().unwrap_or(Scheme::HTTP);
        let endpoint = Endpoint {
            address: authority.to_string(),
            scheme,
            authority,
            in_flight: AtomicUsize::new(0),
            ready: AtomicBool::new(true),
            health: Mutex::new(Health::default()),
            metrics,
        };
        endpoint.metrics.set_up(true);
        Some(endpoint)
    }

    /// The URI of `path_and_query` on this endpoint.
    pub(crate) fn uri(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query.map(PathAndQuery::as_str).unwrap_or("/"))
            .build()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Records an active check; returns whether readiness changed.
    pub(crate) fn set_ready(&self, ready: bool, now: Instant) -> bool {
        let changed = self.ready.swap(ready, Ordering::Relaxed) != ready;
        self.metrics.set_up(self.selectable(now));
        changed
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_ejected(&self, now: Instant) -> bool {
        self.health().ejected_until.is_some_and(|until| now < until)
    }

    /// Whether a request may be sent here now.
    pub(crate) fn selectable(&self, now: Instant) -> bool {
        self.is_ready() && !self.is_ejected(now)
    }

    /// A request failed here; returns whether that ejected the endpoint.
    pub(crate) fn failed(&self, max_fails: u32, fail_timeout: Duration, now: Instant) -> bool {
        if max_fails == 0 {
            return false;
        }
        let ejected = {
            let mut health = self.health();
            if health.ejected_until.is_some_and(|until| now < until) {
                // Already out: a request sent before the ejection changes nothing.
                false
            } else {
                let on_probation = health.ejected_until.is_some();
                health.consecutive_failures += 1;
                if on_probation || health.consecutive_failures >= max_fails {
                    health.ejected_until = Some(now + fail_timeout);
                    health.consecutive_failures = 0;
                    true
                } else {
                    false
                }
            }
        };
        if ejected {
            self.metrics.ejected();
            self.metrics.set_up(false);
        }
        ejected
    }

    /// A request succeeded here. A success that was under way before an
    /// ejection does not cut that ejection short.
    pub(crate) fn succeeded(&self, now: Instant) {
        let mut health = self.health();
        if health.ejected_until.is_some_and(|until| now < until) {
            return;
        }
        let returned = health.ejected_until.take().is_some();
        health.consecutive_failures = 0;
        drop(health);
        if returned {
            self.metrics.set_up(self.is_ready());
        }
    }

    pub(crate) fn status(&self, now: Instant) -> EndpointStatus {
        EndpointStatus {
            address: self.address.clone(),
            in_flight: self.in_flight(),
            ready: self.is_ready(),
            ejected: self.is_ejected(now),
        }
    }

    pub(crate) fn forget_metrics(&self) {
        self.metrics.remove();
    }
}

/// One request in flight on an endpoint, from the moment it is sent until its
/// response body ends or is dropped.
pub(crate) struct InFlight(Arc<Endpoint>);

impl InFlight {
    pub(crate) fn start(endpoint: &Arc<Endpoint>) -> InFlight {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        endpoint.metrics.add_in_flight(1);
        InFlight(endpoint.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.add_in_flight(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        let base: Uri = "http://10.0.0.1:5217".parse().unwrap();
        Endpoint::new(&base, EndpointMetrics::detached()).unwrap()
    }

    #[test]
    fn max_fails_consecutive_failures_eject_until_the_timeout() {
        let e = endpoint();
        let now = Instant::now();
        let timeout = Duration::from_secs(30);
        assert!(!e.failed(3, timeout, now));
        e.succeeded(now);
        assert!(!e.failed(3, timeout, now));
        assert!(!e.failed(3, timeout, now));
        assert!(e.selectable(now), "a success in between resets the count");
        assert!(e.failed(3, timeout, now));
        assert!(!e.selectable(now + Duration::from_secs(29)));
        e.succeeded(now + Duration::from_secs(1));
        assert!(!e.selectable(now + Duration::from_secs(29)), "an older request's success keeps it out");
        let later = now + timeout;
        assert!(e.selectable(later));
        assert!(e.failed(3, timeout, later), "on probation, one failure ejects again");
        e.succeeded(later + timeout);
        assert!(!e.failed(3, timeout, later + timeout), "a success ends probation");
    }

    #[test]
    fn zero_max_fails_never_ejects() {
        let e = endpoint();
        let now = Instant::now();
        for _ in 0..10 {
            assert!(!e.failed(0, Duration::from_secs(30), now));
        }
        assert!(e.selectable(now));
    }

    #[test]
    fn in_flight_counts_until_the_guard_drops() {
        let e = Arc::new(endpoint());
        let a = InFlight::start(&e);
        let b = InFlight::start(&e);
        assert_eq!(e.in_flight(), 2);
        drop(a);
        drop(b);
        assert_eq!(e.in_flight(), 0);
    }

    #[test]
    fn uris_keep_path_and_query() {
        let e = endpoint();
        let pq: PathAndQuery = "/v1/crawl/job_1?cursor=x".parse().unwrap();
        assert_eq!(e.uri(Some(&pq)).unwrap().to_string(), "http://10.0.0.1:5217/v1/crawl/job_1?cursor=x");
        assert_eq!(e.uri(None).unwrap().to_string(), "http://10.0.0.1:5217/");
    }
}
