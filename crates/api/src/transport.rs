//! How one service reaches another: the same HTTP contract whether the other
//! service is a router in this process or a process across the network.

use axum::Router;
use axum::body::Body;
use http::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::Service;
use tower::util::BoxCloneSyncService;

/// A request/response service reaching one other service. Transport failures
/// come back as `503 service_unavailable` problem responses, so callers handle one
/// kind of failure.
pub type Transport = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// Marks a request one service makes of another in the same process: the
/// callee's middleware stack leaves to the caller's what it already did (the
/// request id, span, metrics, body and time limits; see
/// [`crate::server::finish`]).
#[derive(Clone, Copy, Debug)]
pub struct InProcess;

/// The other service's router, called in process.
pub fn in_process(router: Router) -> Transport {
    BoxCloneSyncService::new(tower::util::MapRequest::new(router, |mut request: Request<Body>| {
        request.extensions_mut().insert(InProcess);
        request
    }))
}

/// The other service over HTTP at `base` (e.g. `http://auth:5214`).
pub fn http(base: &str) -> Result<Transport, String> {
    let base: Uri = base.trim_end_matches('/').parse().map_err(|e| format!("invalid service URL `{base}`: {e}"))?;
    if base.scheme_str() != Some("http") || base.authority().is_none() {
        return Err(format!("service URL `{base}` must be http://host:port"));
    }
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
    Ok(BoxCloneSyncService::new(HttpTransport { base, client }))
}

#[derive(Clone)]
struct HttpTransport {
    base: Uri,
    client: Client<HttpConnector, Body>,
}

impl Service<Request<Body>> for HttpTransport {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
        let uri = Uri::builder()
            .scheme(self.base.scheme_str().unwrap_or("http"))
            .authority(self.base.authority().map(|a| a.as_str()).unwrap_or_default())
            .path_and_query(path)
            .build();
        let client = self.client.clone();
        Box::pin(async move {
            match uri {
                Ok(uri) => *request.uri_mut() = uri,
                Err(e) => return Ok(unavailable(&e.to_string())),
            }
            match client.request(request).await {
                Ok(response) => Ok(response.map(Body::new)),
                Err(e) => Ok(unavailable(&e.to_string())),
            }
        })
    }
}

fn unavailable(cause: &str) -> Response<Body> {
    use axum::response::IntoResponse;
    anno_errors::ApiError::unavailable(format!("calling another service: {cause}")).into_response()
}
