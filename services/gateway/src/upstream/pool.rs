//! The pool as a [`Transport`]: choose an endpoint, send, judge the outcome.
//!
//! # Retry rule
//! A request is sent again, once, to another endpoint when its first attempt
//! failed before any response arrived **and** its body is still whole (the
//! failed attempt never read from it; an empty body always is), **and** either
//! - the connection could not be made (refused, timed out): the instance never
//!   saw the request, whatever its method; or
//! - the method is idempotent (GET, HEAD, OPTIONS, PUT, DELETE, TRACE), so
//!   sending it twice is harmless even if the first instance got it.
//!
//! Bodies are never buffered for this: a connection failure happens before the
//! body is first polled, so the same stream is handed to the second attempt. A
//! non-idempotent request that broke after being sent is not retried, and
//! nothing is retried once response headers have arrived.

use super::body::{Lent, Tracked, Unread};
use super::endpoint::{Endpoint, EndpointStatus, InFlight};
use super::metrics::EndpointMetrics;
use super::select::{by_affinity, two_choices};
use super::{Affinity, Discovery, PoolSettings, SliceSource};
use anno_api::transport::Transport;
use anno_errors::{ApiError, PROBLEM_JSON};
use anyhow::Context as _;
use axum::body::Body;
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::task::AbortHandle;
use tower::Service;
use tower::util::BoxCloneSyncService;

/// A load-balancing pool of one service's instances. Cheap to clone; the
/// background work (health checks, discovery) stops when the last clone drops.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    settings: PoolSettings,
    client: Client<HttpConnector, Lent>,
    endpoints: RwLock<Arc<[Arc<Endpoint>]>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner).drain(..) {
            task.abort();
        }
        for endpoint in self.endpoints.get_mut().unwrap_or_else(PoisonError::into_inner).iter() {
            endpoint.forget_metrics();
        }
    }
}

impl Pool {
    /// Starts a pool as `discovery` says; must run inside a Tokio runtime.
    pub async fn start(settings: PoolSettings, discovery: Discovery) -> anyhow::Result<Pool> {
        match discovery {
            Discovery::Static(urls) => Pool::fixed(settings, &urls),
            Discovery::Kubernetes(source) => {
                let client = ::kube::Client::try_default()
                    .await
                    .context("while connecting to the Kubernetes API to discover endpoints")?;
                Pool::endpoint_slices(settings, client, source)
            }
        }
    }

    /// A pool over fixed base URLs (`http://host:port`).
    pub fn fixed(settings: PoolSettings, urls: &[String]) -> anyhow::Result<Pool> {
        let bases = urls.iter().map(|url| parse_base(url)).collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!bases.is_empty(), "no {} endpoint is configured", settings.service);
        let pool = Pool::new(settings)?;
        pool.set_endpoints(bases);
        Ok(pool)
    }

    /// A pool following the ready endpoints of a Kubernetes Service. It is
    /// empty (every request a 503) until the first list has been read.
    pub fn endpoint_slices(
        settings: PoolSettings,
        client: ::kube::Client,
        source: SliceSource,
    ) -> anyhow::Result<Pool> {
        let pool = Pool::new(settings)?;
        let weak = Arc::downgrade(&pool.inner);
        pool.spawn(super::kube::follow(weak, client, source))?;
        Ok(pool)
    }

    fn new(settings: PoolSettings) -> anyhow::Result<Pool> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        let interval = settings.health_interval;
        let pool = Pool {
            inner: Arc::new(Inner {
                settings,
                client,
                endpoints: RwLock::new(Arc::from([])),
                tasks: Mutex::new(Vec::new()),
            }),
        };
        if !interval.is_zero() {
            pool.spawn(check_forever(Arc::downgrade(&pool.inner), interval))?;
        }
        Ok(pool)
    }

    fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Handle::try_current().context("the upstream pool needs a Tokio runtime")?;
        let task = runtime.spawn(work).abort_handle();
        self.inner.tasks.lock().unwrap_or_else(PoisonError::into_inner).push(task);
        Ok(())
    }

    /// Replaces the endpoint set. Endpoints that stay keep their counts.
    pub fn set_endpoints(&self, bases: Vec<Uri>) {
        self.inner.set_endpoints(bases);
    }

    /// Every endpoint, as the pool sees it now.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        let now = Instant::now();
        self.inner.snapshot().iter().map(|e| e.status(now)).collect()
    }

    /// The pool as a transport for the gateway's upstreams.
    pub fn transport(&self) -> Transport {
        BoxCloneSyncService::new(self.clone())
    }
}

/// `http://host:port` as a base URI; a path is refused rather than dropped.
pub(crate) fn parse_base(url: &str) -> anyhow::Result<Uri> {
    let base: Uri = url.trim_end_matches('/').parse().with_context(|| format!("invalid endpoint URL `{url}`"))?;
    anyhow::ensure!(
        base.scheme_str() == Some("http")
            && base.authority().is_some()
            && base.path_and_query().is_none_or(|p| p.as_str() == "/" || p.as_str().is_empty()),
        "endpoint URL `{url}` must be http://host:port"
    );
    Ok(base)
}

impl Inner {
    pub(crate) fn service(&self) -> &str {
        &self.settings.service
    }

    fn snapshot(&self) -> Arc<[Arc<Endpoint>]> {
        self.endpoints.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn set_endpoints(&self, bases: Vec<Uri>) {
        let mut current = self.endpoints.write().unwrap_or_else(PoisonError::into_inner);
        let mut old: HashMap<String, Arc<Endpoint>> = current.iter().map(|e| (e.address.clone(), e.clone())).collect();
        let mut next: Vec<Arc<Endpoint>> = Vec::with_capacity(bases.len());
        for base in &bases {
            let Some(authority) = base.authority() else { continue };
            if next.iter().any(|e| e.address == authority.as_str()) {
                continue;
            }
            let endpoint = match old.remove(authority.as_str()) {
                Some(kept) => kept,
                None => {
                    let metrics = EndpointMetrics::new(&self.settings.service, authority.as_str());
                    match Endpoint::new(base, metrics) {
                        Some(endpoint) => Arc::new(endpoint),
                        None => continue,
                    }
                }
            };
            next.push(endpoint);
        }
        let added: Vec<&str> = next
            .iter()
            .filter(|e| !current.iter().any(|c| c.address == e.address))
            .map(|e| e.address.as_str())
            .collect();
        if !added.is_empty() || !old.is_empty() {
            let removed: Vec<&str> = old.keys().map(String::as_str).collect();
            tracing::info!(
                service = %self.settings.service,
                endpoints = next.len(),
                added = ?added,
                removed = ?removed,
                "upstream endpoints changed"
            );
        }
        for gone in old.values() {
            gone.forget_metrics();
        }
        *current = Arc::from(next);
    }

    /// An endpoint for the next attempt, other than `tried`.
    fn pick(&self, tried: Option<&Arc<Endpoint>>, affinity: Option<&str>) -> Option<Arc<Endpoint>> {
        let now = Instant::now();
        let endpoints = self.snapshot();
        let candidates: Vec<&Arc<Endpoint>> =
            endpoints.iter().filter(|e| e.selectable(now) && tried.is_none_or(|t| !Arc::ptr_eq(t, e))).collect();
        match affinity {
            Some(key) => by_affinity(&candidates, key, self.settings.affinity_load_factor),
            None => two_choices(&candidates),
        }
    }

    fn failed(&self, endpoint: &Endpoint, why: &dyn std::fmt::Display) {
        let settings = &self.settings;
        if endpoint.failed(settings.max_fails, settings.fail_timeout, Instant::now()) {
            tracing::warn!(
                service = %settings.service,
                endpoint = %endpoint.address,
                fail_timeout_s = settings.fail_timeout.as_secs_f64(),
                "upstream endpoint ejected after failing: {why}"
            );
        }
    }

    async fn dispatch(self: Arc<Self>, request: Request<Body>) -> Response<Body> {
        let affinity = match self.settings.tenant_affinity {
            true => request.extensions().get::<Affinity>().map(|a| a.0.clone()),
            false => None,
        };
        let (parts, body) = request.into_parts();
        let body = Unread::new(body);
        // The endpoint that failed a first attempt, and how.
        let mut tried: Option<(Arc<Endpoint>, String)> = None;
        loop {
            let Some(endpoint) = self.pick(tried.as_ref().map(|(e, _)| e), affinity.as_deref()) else {
                return match tried {
                    None => no_healthy_upstream(&self.settings.service),
                    Some((failed, cause)) => ApiError::unavailable(format!(
                        "{} at {}, and no other endpoint to retry on: {cause}",
                        self.service(),
                        failed.address
                    ))
                    .into_response(),
                };
            };
            let uri = match endpoint.uri(parts.uri.path_and_query()) {
                Ok(uri) => uri,
                Err(e) => return ApiError::internal(e).into_response(),
            };
            let mut attempt = Request::new(body.lend());
            *attempt.method_mut() = parts.method.clone();
            *attempt.uri_mut() = uri;
            *attempt.headers_mut() = parts.headers.clone();
            let in_flight = InFlight::start(&endpoint);
            match self.client.request(attempt).await {
                Ok(response) => {
                    if instance_failure(&response) {
                        self.failed(&endpoint, &response.status());
                    } else {
                        endpoint.succeeded(Instant::now());
                    }
                    return response.map(|incoming| Body::new(Tracked::new(incoming, in_flight)));
                }
                Err(error) => {
                    drop(in_flight);
                    let cause = error_chain(&error);
                    // Our side's body failing (the client went away mid-upload) is no fault of the endpoint.
                    if !caused_by_request_body(&error) {
                        self.failed(&endpoint, &cause);
                    }
                    let retry =
                        tried.is_none() && body.is_whole() && (error.is_connect() || parts.method.is_idempotent());
                    tracing::debug!(service = %self.service(), endpoint = %endpoint.address, retry, "upstream request failed: {cause}");
                    if !retry {
                        return ApiError::unavailable(format!("{} at {}: {cause}", self.service(), endpoint.address))
                            .into_response();
                    }
                    tried = Some((endpoint, cause));
                }
            }
        }
    }

    /// Asks `/ready` of one endpoint.
    async fn check(&self, endpoint: &Endpoint) {
        let ready = match endpoint.uri(Some(&http::uri::PathAndQuery::from_static("/ready"))) {
            Ok(uri) => {
                let mut request = Request::new(Unread::new(Body::empty()).lend());
                *request.uri_mut() = uri;
                let answer = async {
                    let response = self.client.request(request).await.ok()?;
                    let status = response.status();
                    // Read the (small) body so the connection can be reused.
                    response.into_body().collect().await.ok()?;
                    Some(status.is_success())
                };
                tokio::time::timeout(self.settings.health_timeout, answer).await.ok().flatten().unwrap_or(false)
            }
            Err(_) => false,
        };
        if endpoint.set_ready(ready, Instant::now()) {
            match ready {
                true => {
                    tracing::info!(service = %self.service(), endpoint = %endpoint.address, "upstream endpoint is ready again")
                }
                false => {
                    tracing::warn!(service = %self.service(), endpoint = %endpoint.address, "upstream endpoint is not ready")
                }
            }
        }
    }
}

/// Checks every endpoint each `interval` while the pool lives.
async fn check_forever(pool: Weak<Inner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = pool.upgrade() else { return };
        let endpoints = inner.snapshot();
        futures::future::join_all(endpoints.iter().map(|e| inner.check(e))).await;
    }
}

/// A 502/503/504 counts against the instance unless the instance itself
/// answered it as a problem (then it speaks of the page it fetched).
fn instance_failure(response: &Response<hyper::body::Incoming>) -> bool {
    let gateway_error = matches!(
        response.status(),
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    );
    let problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    gateway_error && !problem
}

fn caused_by_request_body(error: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return hyper.is_user();
        }
        source = cause.source();
    }
    false
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn no_healthy_upstream(service: &str) -> Response<Body> {
    tracing::warn!(service, "no healthy upstream endpoint");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no_healthy_upstream",
        "No instance of the service is available right now; retry shortly.",
    )
    .with_retry_after(1)
    .into_response()
}

impl Service<Request<Body>> for Pool {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.dispatch(request).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_are_checked() {
        assert!(parse_base("http://core-0.core:5217").is_ok());
        assert!(parse_base("http://10.0.0.1:5217/").is_ok());
        for bad in ["https://core:5217", "core:5217", "http://core:5217/v1", "not a url"] {
            assert!(parse_base(bad).is_err(), "{bad}");
        }
    }
}
