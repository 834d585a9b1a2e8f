//! Real HTTP servers on ephemeral ports standing in for core instances, and
//! helpers to send through a pool.

use anno_api::transport::Transport;
use anno_gateway::upstream::{EndpointStatus, Pool};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get as on_get, post};
use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// What one stand-in instance has seen, and switches to change how it answers.
pub struct Backend {
    pub name: String,
    /// Requests to anything but `/ready`.
    pub hits: AtomicUsize,
    /// `/slow` requests begun and finished.
    pub started: AtomicUsize,
    pub finished: AtomicUsize,
    /// What `/ready` answers.
    pub ready: AtomicBool,
    /// Non-zero: `/work` answers this status.
    pub fail_with: AtomicU16,
    /// Failures come as problem+json, as core's answers about a fetched site do.
    pub fail_as_problem: AtomicBool,
    /// An `/endless` stream was dropped (its client went away).
    pub cancelled: AtomicBool,
    /// `/stream` sent its last chunk.
    pub stream_done: AtomicBool,
    release: watch::Sender<bool>,
}

impl Backend {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Lets every held `/hold` and `/stream` body go on.
    pub fn release(&self) {
        self.release.send_replace(true);
    }

    fn hit(&self) {
        self.hits.fetch_add(1, Ordering::SeqCst);
    }

    async fn released(&self) {
        let mut released = self.release.subscribe();
        let _ = released.wait_for(|r| *r).await;
    }
}

/// A stand-in instance serving until killed.
pub struct Upstream {
    pub backend: Arc<Backend>,
    pub url: String,
    task: JoinHandle<()>,
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        let (release, _) = watch::channel(false);
        let backend = Arc::new(Backend {
            name: name.to_owned(),
            hits: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            ready: AtomicBool::new(true),
            fail_with: AtomicU16::new(0),
            fail_as_problem: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            stream_done: AtomicBool::new(false),
            release,
        });
        let router = Router::new()
            .route("/ready", on_get(ready))
            .route("/work", any(work))
            .route("/echo", post(echo))
            .route("/slow", on_get(slow))
            .route("/hold", on_get(hold))
            .route("/stream", on_get(stream))
            .route("/endless", on_get(endless))
            .with_state(backend.clone());
        let (url, task) = serve(router).await;
        Upstream { backend, url, task }
    }

    /// Kills the server: its listener and every open connection go at once.
    pub async fn kill(self) -> Arc<Backend> {
        self.task.abort();
        let _ = self.task.await;
        self.backend
    }
}

/// Serves `router` on 127.0.0.1 until the returned task is aborted; the
/// connections belong to that task, so aborting it drops them all.
pub async fn serve(router: Router) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let service = TowerToHyperService::new(router.clone());
                    connections.spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    (url, task)
}

/// A base URL where nothing listens.
pub async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

async fn ready(State(b): State<Arc<Backend>>) -> StatusCode {
    if b.ready.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

async fn work(State(b): State<Arc<Backend>>) -> Response {
    b.hit();
    match b.fail_with.load(Ordering::SeqCst) {
        0 => b.name.clone().into_response(),
        code => {
            let status = StatusCode::from_u16(code).unwrap();
            let mut response = (status, "failing").into_response();
            if b.fail_as_problem.load(Ordering::SeqCst) {
                let problem = HeaderValue::from_static("application/problem+json");
                response.headers_mut().insert(header::CONTENT_TYPE, problem);
            }
            response
        }
    }
}

async fn echo(State(b): State<Arc<Backend>>, body: Bytes) -> Bytes {
    b.hit();
    body
}

/// Counts a `/slow` request as finished only if it ran to the end.
struct Finishing(Arc<Backend>, bool);

impl Drop for Finishing {
    fn drop(&mut self) {
        if self.1 {
            self.0.finished.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn slow(State(b): State<Arc<Backend>>) -> String {
    b.hit();
    b.started.fetch_add(1, Ordering::SeqCst);
    let mut finishing = Finishing(b.clone(), false);
    tokio::time::sleep(Duration::from_millis(5)).await;
    finishing.1 = true;
    b.name.clone()
}

fn chunks(
    first: String,
    then: impl Future<Output = Option<String>> + Send + 'static,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> + Send {
    use futures::StreamExt;
    futures::stream::once(async move { Ok(first) })
        .chain(futures::stream::once(then).filter_map(|next| async move { next.map(Ok) }))
}

/// Headers and a first chunk at once; the rest after [`Backend::release`].
async fn hold(State(b): State<Arc<Backend>>) -> Body {
    b.hit();
    let first = format!("{}\n", b.name);
    Body::from_stream(chunks(first, async move {
        b.released().await;
        None
    }))
}

async fn stream(State(b): State<Arc<Backend>>) -> Body {
    b.hit();
    Body::from_stream(chunks("one\n".to_owned(), async move {
        b.released().await;
        b.stream_done.store(true, Ordering::SeqCst);
        Some("two\n".to_owned())
    }))
}

/// Notes that an endless stream was dropped.
struct Cancelled(Arc<Backend>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
    }
}

async fn endless(State(b): State<Arc<Backend>>) -> Body {
    b.hit();
    let guard = Cancelled(b);
    Body::from_stream(futures::stream::unfold(guard, |guard| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((Ok::<_, std::io::Error>(format!("{}\n", guard.0.name)), guard))
    }))
}

/// A request through the pool, as the gateway forwards it.
pub fn request(method: &str, path: &str, body: Body) -> Request<Body> {
    Request::builder().method(method).uri(path).body(body).unwrap()
}

pub fn get(path: &str) -> Request<Body> {
    request("GET", path, Body::empty())
}

/// Sends and reads the whole answer.
pub async fn send(transport: &Transport, request: Request<Body>) -> (StatusCode, String) {
    let response = transport.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Sends and returns the response with its body unread.
pub async fn open(transport: &Transport, request: Request<Body>) -> Response {
    transport.clone().oneshot(request).await.unwrap()
}

/// The next data chunk of a body, as text.
pub async fn next_chunk(body: &mut Body) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), body.frame()).await.expect("a chunk in time")?;
        if let Ok(data) = frame.unwrap().into_data() {
            return Some(String::from_utf8_lossy(&data).into_owned());
        }
    }
}

/// Waits, generously, for `condition`; the deadline is for a hung test, not a
/// measure of speed.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn status_of(pool: &Pool, url: &str) -> EndpointStatus {
    let address = url.trim_start_matches("http://");
    pool.endpoints().into_iter().find(|e| e.address == address).expect("the endpoint is in the pool")
}

pub fn total_in_flight(pool: &Pool) -> usize {
    pool.endpoints().iter().map(|e| e.in_flight).sum()
}
