//! The audit layer: every call through the gateway becomes an audit event,
//! recorded when its response body has been sent (or dropped, when the client
//! went away), off the hot path.
//!
//! Bodies are digested as they stream, never buffered: an NDJSON stream still
//! reaches the client chunk by chunk. The layer is the outermost of the gateway,
//! so it sees the answer the client got (413, 504 and panics included), and the
//! request id from the `X-Request-ID` the inner stack put on the response. The
//! caller is the [`Authenticated`] the route handler left in the response's
//! extensions; without one (no or a bad credential) the call is anonymous.

use crate::Authenticated;
use anno_api::token::PrincipalKind;
use anno_audit::{Actor, ActorKind, AuditEvent, BodyTally, Recorder, Timestamp, TrustedProxies};
use anno_bus::Bus;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{HeaderMap, HeaderName, USER_AGENT};
use http_body::{Frame, SizeHint};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

/// Probes and scrapes are not calls anyone needs to account for.
const UNAUDITED: [&str; 3] = ["/health", "/ready", "/metrics"];

const MAX_PATH: usize = 2048;
const MAX_USER_AGENT: usize = 512;
const MAX_REQUEST_ID: usize = 128;

/// Wraps a finished router so every call through it is audited.
#[derive(Clone)]
pub(crate) struct Layer {
    recorder: Recorder,
    proxies: Arc<TrustedProxies>,
}

impl Layer {
    pub(crate) fn new(bus: &Bus, proxies: &TrustedProxies) -> Self {
        Layer { recorder: Recorder::new(bus.clone()), proxies: Arc::new(proxies.clone()) }
    }

    /// `router` with this layer outside everything it already has.
    pub(crate) fn wrap(self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self, audit))
    }
}

fn audited(path: &str) -> bool {
    !UNAUDITED.contains(&path)
}

async fn audit(State(layer): State<Layer>, request: Request, next: Next) -> Response {
    if !audited(request.uri().path()) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let forwarded = request.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let client_ip = layer.proxies.client_ip(peer, forwarded).map(|ip| ip.to_string());
    let call = Call {
        recorder: layer.recorder.clone(),
        started,
        method: request.method().as_str().to_owned(),
        route: request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()),
        path: clip(request.uri().path(), MAX_PATH),
        client_ip,
        user_agent: header_text(request.headers(), &USER_AGENT, MAX_USER_AGENT),
        request: Arc::default(),
        status: 0,
        request_id: None,
        caller: None,
    };
    let tally = Arc::clone(&call.request);
    let request = request.map(|body| Body::new(Tallied { inner: body, tally }));
    let response = next.run(request).await;
    let call = Call {
        status: response.status().as_u16(),
        request_id: header_text(response.headers(), &request_id_header(), MAX_REQUEST_ID),
        caller: response.extensions().get::<Authenticated>().cloned(),
        ..call
    };
    response.map(|body| Body::new(Recorded { inner: body, tally: BodyTally::default(), call: Some(call) }))
}

/// Set on every response by the request-id layer inside this one.
fn request_id_header() -> HeaderName {
    HeaderName::from_static("x-request-id")
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

fn header_text(headers: &HeaderMap, name: &HeaderName, max: usize) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| clip(v, max))
}

/// What is known of a call until its response body ends.
struct Call {
    recorder: Recorder,
    started: Instant,
    method: String,
    route: Option<String>,
    path: String,
    client_ip: Option<String>,
    user_agent: Option<String>,
    /// Fed by the request body as the inner stack reads it.
    request: Arc<Mutex<BodyTally>>,
    status: u16,
    request_id: Option<String>,
    caller: Option<Authenticated>,
}

impl Call {
    fn record(self, response: &BodyTally) {
        let request = self.request.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let (tenant_id, actor) = match &self.caller {
            Some(a) => {
                let p = &a.verified.principal;
                let kind = match p.kind {
                    PrincipalKind::Key => ActorKind::Key,
                    PrincipalKind::User => ActorKind::User,
                    PrincipalKind::Admin => ActorKind::Admin,
                    // Refused at the edge (authn): never a caller here.
                    PrincipalKind::Service => ActorKind::Anonymous,
                };
                (p.tenant_id.clone(), Actor { kind, id: Some(p.id.clone()) })
            }
            None => (None, Actor::anonymous()),
        };
        self.recorder.record(AuditEvent {
            id: AuditEvent::new_id(),
            time: Timestamp::now(),
            tenant_id,
            actor,
            method: self.method,
            route: self.route,
            path: self.path,
            status: self.status,
            latency_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            client_ip: self.client_ip,
            user_agent: self.user_agent,
            request_id: self.request_id,
            request_digest: request.digest(),
            request_bytes: request.bytes(),
            response_digest: response.digest(),
            response_bytes: response.bytes(),
        });
    }
}

/// Feeds `tally` with the data frames of `inner` as they pass.
fn tally_frame(inner: &Body, polled: &Poll<Option<Result<Frame<Bytes>, axum::Error>>>, tally: &mut BodyTally) {
    match polled {
        Poll::Ready(Some(Ok(frame))) => {
            if let Some(data) = frame.data_ref() {
                tally.update(data);
            }
            if inner.is_end_stream() {
                tally.complete();
            }
        }
        Poll::Ready(None) => tally.complete(),
        Poll::Ready(Some(Err(_))) | Poll::Pending => {}
    }
}

/// The request body, digested as the inner stack reads it.
struct Tallied {
    inner: Body,
    tally: Arc<Mutex<BodyTally>>,
}

impl HttpBody for Tallied {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        tally_frame(&this.inner, &polled, &mut this.tally.lock().unwrap_or_else(PoisonError::into_inner));
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tallied {
    fn drop(&mut self) {
        // An empty body may never be polled: it still ended.
        if self.inner.is_end_stream() {
            self.tally.lock().unwrap_or_else(PoisonError::into_inner).complete();
        }
    }
}

/// The response body, digested as it is sent; the call is recorded at its end
/// or when it is dropped unfinished.
struct Recorded {
    inner: Body,
    tally: BodyTally,
    call: Option<Call>,
}

impl Recorded {
    fn finish(&mut self) {
        if let Some(call) = self.call.take() {
            call.record(&self.tally);
        }
    }
}

impl HttpBody for Recorded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        tally_frame(&this.inner, &polled, &mut this.tally);
        if this.tally.is_complete() {
            this.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.tally.complete();
        }
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::Verified;
    use anno_api::auth::Principal;
    use anno_bus::{Entry, Handler};
    use anno_tenancy::{ScopeSet, TenantId};
    use axum::routing::{get, post};
    use futures::StreamExt;
    use http_body_util::BodyExt;
    use sha2::{Digest, Sha256};
    use std::time::Duration;
    use tokio::sync::mpsc;
    use tower::ServiceExt;

    fn sha(data: &[u8]) -> String {
        anno_audit::digest_string(&Sha256::digest(data))
    }

    /// The events recorded on `bus`, as they are stored.
    fn events(bus: &Bus) -> mpsc::UnboundedReceiver<AuditEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handler: Handler = Arc::new(move |entries: Vec<Entry>| {
            let tx = tx.clone();
            Box::pin(async move {
                for entry in entries {
                    let _ = tx.send(entry.decode()?);
                }
                Ok(())
            })
        });
        // The task ends with the test's runtime.
        drop(bus.consume(anno_audit::STREAM, "test", "test", handler));
        rx
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<AuditEvent>) -> AuditEvent {
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an event within 10 s").expect("open")
    }

    fn caller(tenant: &TenantId) -> Authenticated {
        let principal = Principal {
            kind: PrincipalKind::Key,
            id: "key_01m8bq5b14vmrwprktnbyfa18w".into(),
            name: "ci".into(),
            tenant_id: Some(tenant.clone()),
            scopes: ScopeSet::all(),
            expires_at_ms: None,
        };
        let verified = Verified::new(principal, "internal-token".into(), 0);
        Authenticated { verified: Arc::new(verified), tenant: None }
    }

    #[tokio::test]
    async fn a_call_is_recorded_with_its_caller_route_and_digests() {
        let bus = Bus::in_process();
        let mut rx = events(&bus);
        let tenant = TenantId::generate();
        let who = caller(&tenant);
        let app = Router::new().route(
            "/v1/things/{id}",
            post(move |body: Bytes| {
                let who = who.clone();
                async move {
                    assert_eq!(&body[..], b"hello");
                    let mut response = axum::response::IntoResponse::into_response("world");
                    response.extensions_mut().insert(who);
                    response.headers_mut().insert("x-request-id", http::HeaderValue::from_static("req_abc"));
                    response
                }
            }),
        );
        let proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        let app = Layer::new(&bus, &proxies).wrap(app);
        let mut request = http::Request::post("/v1/things/7?secret=no")
            .header("user-agent", "tester/1")
            .header("authorization", "Bearer anno_live_supersecret")
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .body(Body::from("hello"))
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "world");
        let event = next(&mut rx).await;
        assert_eq!(event.tenant_id, Some(tenant));
        assert_eq!(event.actor, Actor { kind: ActorKind::Key, id: Some("key_01m8bq5b14vmrwprktnbyfa18w".into()) });
        assert_eq!((event.method.as_str(), event.route.as_deref()), ("POST", Some("/v1/things/{id}")));
        assert_eq!((event.path.as_str(), event.status), ("/v1/things/7", 200));
        assert_eq!(event.request_digest, Some(sha(b"hello")));
        assert_eq!(event.response_digest, Some(sha(b"world")));
        assert_eq!((event.request_bytes, event.response_bytes), (5, 5));
        assert_eq!(event.client_ip.as_deref(), Some("203.0.113.9"), "the trusted proxy's client");
        assert_eq!(event.user_agent.as_deref(), Some("tester/1"));
        assert_eq!(event.request_id.as_deref(), Some("req_abc"));
        let json = serde_json::to_string(&event).unwrap();
        for secret in ["supersecret", "internal-token", "hello", "world", "secret=no"] {
            assert!(!json.contains(secret), "{secret} leaked into {json}");
        }
    }

    #[tokio::test]
    async fn streams_flow_chunk_by_chunk_and_are_recorded_when_they_end() {
        let bus = Bus::in_process();
        let mut rx = events(&bus);
        let (chunks, receiver) = mpsc::unbounded_channel::<&'static str>();
        let receiver = Arc::new(tokio::sync::Mutex::new(Some(receiver)));
        let app = Router::new().route(
            "/v1/stream",
            get(move || {
                let receiver = Arc::clone(&receiver);
                async move {
                    let Some(receiver) = receiver.lock().await.take() else { return Body::empty() };
                    let stream = futures::stream::unfold(receiver, |mut rx| async move {
                        rx.recv().await.map(|chunk| (Ok::<_, std::io::Error>(Bytes::from(chunk)), rx))
                    });
                    Body::from_stream(stream)
                }
            }),
        );
        let app = Layer::new(&bus, &TrustedProxies::default()).wrap(app);
        let response = app.oneshot(http::Request::get("/v1/stream").body(Body::empty()).unwrap()).await.unwrap();
        let mut body = response.into_body();
        chunks.send("{\"a\":1}\n").unwrap();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "{\"a\":1}\n", "the first chunk arrives while the stream is open");
        assert!(rx.try_recv().is_err(), "nothing is recorded before the stream ends");
        chunks.send("{\"b\":2}\n").unwrap();
        drop(chunks);
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(rest, "{\"b\":2}\n");
        let event = next(&mut rx).await;
        assert_eq!(event.response_digest, Some(sha(b"{\"a\":1}\n{\"b\":2}\n")));
        assert_eq!(event.request_digest, Some(sha(b"")), "an empty request body has a digest too");
        assert_eq!(event.actor, Actor::anonymous());
        assert_eq!(event.tenant_id, None);
        assert_eq!(event.client_ip, None, "no socket in this test");
    }

    #[tokio::test]
    async fn a_response_dropped_unfinished_is_recorded_without_a_digest() {
        let bus = Bus::in_process();
        let mut rx = events(&bus);
        let app = Router::new().route(
            "/v1/stream",
            get(|| async {
                let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"part"))])
                    .chain(futures::stream::pending());
                Body::from_stream(stream)
            }),
        );
        let app = Layer::new(&bus, &TrustedProxies::default()).wrap(app);
        let response = app.oneshot(http::Request::get("/v1/stream").body(Body::empty()).unwrap()).await.unwrap();
        let mut body = response.into_body();
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "part");
        drop(body);
        let event = next(&mut rx).await;
        assert_eq!((event.response_digest, event.response_bytes), (None, 4));
    }

    #[test]
    fn long_texts_are_clipped_at_a_character_boundary() {
        assert_eq!(clip("héllo", 2), "hé");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip("", 1), "");
    }

    #[test]
    fn probes_are_not_audited() {
        assert!(!audited("/health") && !audited("/ready") && !audited("/metrics"));
        assert!(audited("/v1/me") && audited("/healthz"));
    }
}
