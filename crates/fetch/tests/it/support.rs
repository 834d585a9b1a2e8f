//! Real HTTP servers on 127.0.0.1:0, a resolver of made-up names, and a fetcher
//! configured with short limits.

use anno_fetch::{FetchConfig, Fetcher, HostCoordinator, StaticResolver};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One request a test server saw.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub at: Instant,
    pub headers: HeaderMap,
}

type Log = Arc<Mutex<Vec<Hit>>>;

/// A server on a free port that records every request; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    log: Log,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(router: Router) -> TestServer {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind a test port");
        let addr = listener.local_addr().expect("local address");
        let log = Log::default();
        let app = router.layer(middleware::from_fn_with_state(log.clone(), record));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("test server");
        });
        TestServer { addr, log, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://{host}:{port}{path}`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port())
    }

    /// The `host:port` allow-list entry for a name on this server.
    pub fn allow(&self, host: &str) -> String {
        format!("{host}:{}", self.port())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.log.lock().expect("hit log").clone()
    }

    pub fn hits_to(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|hit| hit.path == path).collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(log): State<Log>, request: Request, next: Next) -> Response {
    let hit = Hit { path: request.uri().path().to_owned(), at: Instant::now(), headers: request.headers().clone() };
    log.lock().expect("hit log").push(hit);
    next.run(request).await
}

/// A port nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    listener.local_addr().expect("local address").port()
}

/// Made-up names: `site.test` and `other.test` → 127.0.0.1 (reachable only
/// when allow-listed), `private.test` → 10.0.0.1, `mixed.test` → one public and
/// one loopback address, `meta.test` → the cloud metadata address.
pub fn resolver() -> StaticResolver {
    StaticResolver::new()
        .with("site.test", [LOCALHOST])
        .with("other.test", [LOCALHOST])
        .with("evil.test", [LOCALHOST])
        .with("private.test", ["10.0.0.1".parse().expect("ip")])
        .with("mixed.test", ["93.184.216.34".parse().expect("ip"), LOCALHOST])
        .with("meta.test", ["169.254.169.254".parse().expect("ip")])
}

/// Short limits so failures come fast; no retries, no breaker, no politeness
/// unless a test asks for them.
pub fn config(allowed: Vec<String>) -> FetchConfig {
    FetchConfig {
        user_agent: "AnnoBot/1.0 (+https://anno.dev/bot)".to_owned(),
        max_body_bytes: 64 * 1024,
        connect_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_millis(1500),
        max_redirects: 10,
        allowed_private_hosts: allowed,
        host_interval: Duration::ZERO,
        max_host_wait: Duration::from_secs(1),
        retries: 0,
        retry_backoff: Duration::from_millis(20),
        breaker_failures: 0,
        breaker_open: Duration::from_secs(30),
        robots_ttl: Duration::from_secs(60),
    }
}

pub fn fetcher(config: FetchConfig) -> Fetcher {
    Fetcher::new(config, Arc::new(resolver()), HostCoordinator::Local).expect("fetcher")
}

/// A plain HTML GET of `url`.
pub fn get(url: &str) -> anno_fetch::FetchRequest {
    anno_fetch::FetchRequest { url: url.to_owned(), ..Default::default() }
}
