//! Routing to the instances of a service (core, in practice): a pool that plugs
//! in as a [`Transport`](anno_api::transport::Transport) and spreads requests
//! over healthy endpoints.
//!
//! - Endpoints come from configuration or from the service's Kubernetes
//!   EndpointSlices ([`Discovery`]).
//! - Each request goes to the less loaded of two random healthy endpoints (power
//!   of two choices over in-flight requests, counted until the response body ends
//!   or is dropped), or, with tenant affinity on, to the tenant's rendezvous-hash
//!   endpoint unless that one carries more than its share of the load.
//! - Passive ejection, as nginx's `max_fails`/`fail_timeout`: consecutive
//!   failures take an endpoint out for a while. A failure is a transport error or
//!   a 502/503/504 that did not come as the instance's own problem+json answer
//!   (core answers 502/503/504 problems about the *fetched site*, which say
//!   nothing about the instance; an instance whose own dependencies are down
//!   fails its `/ready` check instead).
//! - Active checks: `GET /ready` on every endpoint each interval; an endpoint
//!   that is not ready is skipped until it passes again.
//! - Retry: see [`pool`] for the rule. No request or response body is ever
//!   buffered, so NDJSON streams pass through as they come and a client that
//!   goes away closes the upstream connection.

mod body;
mod endpoint;
mod kube;
mod metrics;
pub mod pool;
mod select;

pub use endpoint::EndpointStatus;
pub use kube::SliceSource;
pub use pool::Pool;

use std::time::Duration;

/// Which tenant a request acts for, put on the request by the gateway so that
/// a pool with tenant affinity keeps each tenant on one instance (its caches
/// stay warm) while that instance is not overloaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affinity(pub String);

/// Where the pool's endpoints come from.
#[derive(Clone, Debug)]
pub enum Discovery {
    /// Fixed base URLs, `http://host:port`.
    Static(Vec<String>),
    /// The ready endpoints of a Kubernetes Service, followed as they change.
    Kubernetes(SliceSource),
}

/// How a pool chooses and judges its endpoints.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Names the pool in logs and metric labels (`core`).
    pub service: String,
    /// Consecutive failures that eject an endpoint; 0 never ejects.
    pub max_fails: u32,
    /// How long an ejected endpoint is left alone.
    pub fail_timeout: Duration,
    /// How often `/ready` is asked of each endpoint; zero turns checks off.
    pub health_interval: Duration,
    /// Longest a `/ready` answer may take before the endpoint counts as not ready.
    pub health_timeout: Duration,
    /// Longest a connection attempt may take; a timeout is retried elsewhere.
    pub connect_timeout: Duration,
    /// Route by [`Affinity`] when the request carries one.
    pub tenant_affinity: bool,
    /// With affinity, an endpoint is passed over while its in-flight count is
    /// above `(1 + affinity_load_factor)` times the average.
    pub affinity_load_factor: f64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            service: "core".to_owned(),
            max_fails: 3,
            fail_timeout: Duration::from_secs(30),
            health_interval: Duration::from_secs(5),
            health_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            tenant_affinity: false,
            affinity_load_factor: 0.25,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Affinity;
    use axum::body::Body;
    use http::{Request, Response};
    use std::convert::Infallible;
    use tower::util::BoxCloneSyncService;

    #[tokio::test]
    async fn forwarding_keeps_the_tenant_for_the_pool() {
        let transport = BoxCloneSyncService::new(tower::service_fn(|request: Request<Body>| async move {
            let tenant = request.extensions().get::<Affinity>().map(|a| a.0.clone()).unwrap_or_default();
            Ok::<_, Infallible>(Response::new(Body::from(tenant)))
        }));
        let mut request = Request::builder().uri("/v1/content/fetch").body(Body::empty()).unwrap();
        request.extensions_mut().insert(Affinity("ten_a".into()));
        let response = crate::proxy::forward(&transport, request, None).await;
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"ten_a");
    }
}
