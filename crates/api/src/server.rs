//! The router scaffolding every service shares: health routes, fallbacks and the
//! middleware stack, written down once.

use crate::transport::InProcess;
use anno_errors::{ApiError, request_id};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

/// What `/ready` checks: the service's database, Redis, and whatever else it needs.
#[derive(Clone)]
pub struct Readiness(Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>);

impl Readiness {
    pub fn new<F, Fut>(check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Readiness(Arc::new(move || Box::pin(check())))
    }

    pub async fn check(&self) -> Result<(), String> {
        (self.0)().await
    }
}

/// Bounds on every request a service handles.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A handler taking longer is answered 504.
    pub timeout: Duration,
    /// A larger request body is answered 413.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: Duration::from_secs(30), max_body_bytes: 16 * 1024 * 1024 }
    }
}

/// Adds `/health`, `/ready` and `/metrics`, our 404/405 bodies, and the middleware
/// stack to a service's routes.
///
/// Order, from the outside in:
/// 1. request id — accept a well-formed `X-Request-ID` or make one; echo it; every
///    error body below carries it;
/// 2. trace span — method, matched route, request id, and the tenant id once
///    the caller is known ([`record_tenant`]);
/// 3. metrics — count and latency by matched route and status;
/// 4. body — the whole request body is read first, within `max_body_bytes`
///    (else 413), so every answer, refusals included, comes after the client has
///    finished sending and no connection is cut mid-request;
/// 5. timeout — a handler that takes longer than `timeout` is a 504 problem;
/// 6. catch panic — a panicking handler is a 500 problem, not a dropped connection.
///
/// 1–5 are one middleware: each `from_fn` layer boxes and clones the rest of
/// the stack on every request, which was a measurable share of a proxied call.
/// A call from another service in the same process ([`InProcess`]) skips 1–5:
/// the caller's stack did them, and the callee runs inside the caller's request
/// (its id, its span, its limits).
pub fn finish(service: &'static str, routes: Router, readiness: Readiness, limits: Limits) -> Router {
    let ready = move || {
        let readiness = readiness.clone();
        async move {
            match readiness.check().await {
                Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
                Err(cause) => ApiError::unavailable(format!("{service} not ready: {cause}")).into_response(),
            }
        }
    };
    let routes = routes
        .route("/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/metrics", get(anno_telemetry::metrics_handler))
        .fallback(anno_errors::not_found_fallback)
        .method_not_allowed_fallback(anno_errors::method_not_allowed_fallback);
    stack(service, routes, limits)
}

/// The middleware stack of [`finish`] alone, for routes merged into another
/// service's finished router (which brings the health routes and fallbacks).
pub fn stack(service: &'static str, routes: Router, limits: Limits) -> Router {
    routes
        // Layers run outside-in from the last added; so listed here inside-out.
        .layer(CatchPanicLayer::custom(anno_errors::panic_response))
        .layer(middleware::from_fn_with_state(Bounds { service, limits }, around))
}

#[derive(Clone, Copy)]
struct Bounds {
    service: &'static str,
    limits: Limits,
}

/// Steps 1–5 of [`finish`]'s stack.
async fn around(State(bounds): State<Bounds>, mut request: Request, next: Next) -> Response {
    if request.extensions().get::<InProcess>().is_some() {
        return next.run(request).await;
    }
    let (id, echoed) = request_id::assign(&mut request);
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let route = route.as_deref().unwrap_or("unmatched");
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        service = bounds.service,
        method = %method,
        route,
        request.id = id.as_str(),
        tenant.id = tracing::field::Empty,
    );
    let started = Instant::now();
    let handling = bounded(bounds.limits, request, next).instrument(span);
    let mut response = request_id::in_scope(id, handling).await;
    anno_telemetry::observe_http(bounds.service, &method, route, response.status(), started.elapsed());
    response.headers_mut().insert(request_id::HEADER, echoed);
    response
}

/// The body read within its limit, then the handler within its time.
async fn bounded(limits: Limits, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The request body is larger than {} bytes.", limits.max_body_bytes),
            )
            .into_response();
        }
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(http::StatusCode::GATEWAY_TIMEOUT, "timeout", "The request took too long.").into_response()
        }
    }
}

/// Adds the caller's tenant to the current request span.
pub fn record_tenant(tenant: &anno_tenancy::TenantId) {
    tracing::Span::current().record("tenant.id", tenant.as_str());
}

/// Serves a router until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport;
    use axum::body::Body;
    use tower::ServiceExt;

    /// A router whose one route answers with the request id its handler sees.
    fn echo() -> Router {
        let routes = Router::new()
            .route("/id", get(|| async { anno_errors::current_request_id().unwrap_or_else(|| "none".to_owned()) }));
        finish("test", routes, Readiness::new(|| async { Ok(()) }), Limits::default())
    }

    async fn call<S>(service: S) -> (Option<String>, String)
    where
        S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
    {
        let request = Request::builder().uri("/id").body(Body::empty()).expect("a request");
        let response = service.oneshot(request).await.unwrap_or_else(|never| match never {});
        let header = response.headers().get(request_id::HEADER).map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1024).await.expect("the body");
        (header, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn an_in_process_call_runs_inside_the_callers_request() {
        // Called on its own, the stack gives the request an id and echoes it.
        let (header, seen) = call(echo()).await;
        assert!(seen.starts_with("req_"), "{seen}");
        assert_eq!(header.as_deref(), Some(seen.as_str()));
        // Called in process from within a request, the callee keeps the
        // caller's id and adds no header of its own.
        let inner = transport::in_process(echo());
        let answer = request_id::in_scope("req-caller".to_owned(), async move {
            let (header, seen) = call(inner).await;
            Response::new(Body::from(format!("{header:?} {seen}")))
        })
        .await;
        let body = axum::body::to_bytes(answer.into_body(), 1024).await.expect("the body");
        assert_eq!(String::from_utf8_lossy(&body), "None req-caller");
    }
}
