//! Politeness between requests to one host, in process and across replicas
//! through Redis.

use crate::support::{TestServer, config, get, resolver};
use anno_bus::testing::{redis_available, redis_url};
use anno_fetch::{FetchConfig, FetchError, Fetcher, HostCoordinator};
use axum::Router;
use axum::routing::get as route;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

fn page_server() -> Router {
    Router::new().route("/{*path}", route(|| async { "<p>page</p>" }))
}

fn polite(server: &TestServer, interval_ms: u64, max_wait_ms: u64) -> FetchConfig {
    let mut config = config(vec![server.allow("site.test")]);
    config.host_interval = Duration::from_millis(interval_ms);
    config.max_host_wait = Duration::from_millis(max_wait_ms);
    config
}

fn local(server: &TestServer, interval_ms: u64, max_wait_ms: u64) -> Fetcher {
    Fetcher::new(polite(server, interval_ms, max_wait_ms), Arc::new(resolver()), HostCoordinator::Local)
        .expect("fetcher")
}

fn gap(server: &TestServer, first: &str, second: &str) -> Duration {
    server.hits_to(second)[0].at - server.hits_to(first)[0].at
}

#[tokio::test]
async fn local_politeness_spaces_requests_to_one_host() {
    let server = TestServer::start(page_server()).await;
    let fetcher = local(&server, 400, 1000);

    fetcher.fetch(&get(&server.url("site.test", "/one"))).await.expect("first");
    fetcher.fetch(&get(&server.url("site.test", "/two"))).await.expect("second");
    let waited = gap(&server, "/one", "/two");
    assert!(waited >= Duration::from_millis(380), "the second request waited only {waited:?}");
}

#[tokio::test]
async fn local_politeness_refuses_when_the_wait_is_too_long() {
    let server = TestServer::start(page_server()).await;
    let fetcher = local(&server, 1000, 50);

    fetcher.fetch(&get(&server.url("site.test", "/one"))).await.expect("first");
    let started = Instant::now();
    let error = fetcher.fetch(&get(&server.url("site.test", "/two"))).await.unwrap_err();
    assert!(matches!(error, FetchError::HostBusy { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(50));
    assert!(server.hits_to("/two").is_empty());
}

async fn redis_coordinator(namespace: &str) -> HostCoordinator {
    let client = redis::Client::open(redis_url()).expect("Redis URL");
    let conn = client.get_connection_manager().await.expect("Redis connection");
    HostCoordinator::Redis { conn, namespace: namespace.to_owned() }
}

fn unique_namespace() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("anno-fetch-test-{}-{nanos}", std::process::id())
}

#[tokio::test]
async fn redis_politeness_is_shared_by_replicas() {
    if !redis_available().await {
        return;
    }
    let server = TestServer::start(page_server()).await;
    let namespace = unique_namespace();
    // Two fetchers with their own in-process state, like two replicas.
    let replica = |max_wait_ms| {
        let namespace = namespace.clone();
        let config = polite(&server, 400, max_wait_ms);
        async move { Fetcher::new(config, Arc::new(resolver()), redis_coordinator(&namespace).await).expect("fetcher") }
    };
    let a = replica(1000).await;
    let b = replica(1000).await;
    let impatient = replica(50).await;

    a.fetch(&get(&server.url("site.test", "/one"))).await.expect("replica a");
    let started = Instant::now();
    let error = impatient.fetch(&get(&server.url("site.test", "/refused"))).await.unwrap_err();
    assert!(matches!(error, FetchError::HostBusy { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(100), "refused without waiting");

    b.fetch(&get(&server.url("site.test", "/two"))).await.expect("replica b");
    let waited = gap(&server, "/one", "/two");
    assert!(waited >= Duration::from_millis(380), "replica b waited only {waited:?}");
    assert!(server.hits_to("/refused").is_empty());

    // The slot key expires by itself.
    let client = redis::Client::open(redis_url()).expect("Redis URL");
    let mut conn = client.get_multiplexed_async_connection().await.expect("Redis");
    let ttl: i64 =
        redis::cmd("PTTL").arg(format!("{namespace}:host:site.test")).query_async(&mut conn).await.expect("PTTL");
    assert!(ttl > 0 && ttl <= 800, "the slot key expires: PTTL {ttl}");
}

/// A stand-in for a broken Redis: it answers the connection handshake with
/// errors (clients ignore those), then answers every command with an error, or
/// with nothing at all when `silent`.
async fn broken_redis(silent: bool) -> (String, TestTask) {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    let url = format!("redis://127.0.0.1:{}/", listener.local_addr().expect("address").port());
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(read @ 1..) = socket.read(&mut chunk).await {
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Some((command, used)) = resp_command(&buffer) {
                        buffer.drain(..used);
                        let answer = !silent || command.eq_ignore_ascii_case("CLIENT");
                        if answer && socket.write_all(b"-ERR unavailable\r\n").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, TestTask(task))
}

struct TestTask(tokio::task::JoinHandle<()>);

impl Drop for TestTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The name of the complete RESP command at the start of `buffer`, and its length.
fn resp_command(buffer: &[u8]) -> Option<(String, usize)> {
    let line = |from: usize| -> Option<(&[u8], usize)> {
        let end = from + buffer.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((&buffer[from..end], end + 2))
    };
    let number = |text: &[u8]| std::str::from_utf8(text).ok()?.parse::<usize>().ok();
    let (head, mut at) = line(0)?;
    let count = number(head.strip_prefix(b"*")?)?;
    let mut name = String::new();
    for index in 0..count {
        let (length, start) = line(at)?;
        let end = start + number(length.strip_prefix(b"$")?)?;
        if buffer.len() < end + 2 {
            return None;
        }
        if index == 0 {
            name = String::from_utf8_lossy(&buffer[start..end]).into_owned();
        }
        at = end + 2;
    }
    Some((name, at))
}

#[tokio::test]
async fn a_failing_redis_falls_back_to_local_politeness() {
    for silent in [false, true] {
        let (url, _redis) = broken_redis(silent).await;
        let client = redis::Client::open(url).expect("Redis URL");
        let conn = client.get_connection_manager().await.expect("the handshake succeeds");
        let hosts = HostCoordinator::Redis { conn, namespace: unique_namespace() };
        let server = TestServer::start(page_server()).await;
        let fetcher = Fetcher::new(polite(&server, 300, 2000), Arc::new(resolver()), hosts).expect("fetcher");

        let started = Instant::now();
        fetcher.fetch(&get(&server.url("site.test", "/one"))).await.expect("first");
        fetcher.fetch(&get(&server.url("site.test", "/two"))).await.expect("second");
        let waited = gap(&server, "/one", "/two");
        assert!(
            waited >= Duration::from_millis(280),
            "local slots still space requests: {waited:?} (silent: {silent})"
        );
        // A silent Redis costs at most its timeout per fetch, never a hang.
        assert!(started.elapsed() < Duration::from_millis(1500), "took {:?} (silent: {silent})", started.elapsed());
    }
}
