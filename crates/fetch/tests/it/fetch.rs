//! Fetching from real servers: pages, redirects, limits, retries, the breaker,
//! conditional requests and headers.

use crate::support::{TestServer, closed_port, config, fetcher, get};
use anno_fetch::{Accept, BlockReason, FetchError, FetchRequest, Fetcher, Validators};
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get as route;
use bytes::Bytes;
use futures::StreamExt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const HTML: &str = "<!doctype html><title>Fixture</title><p>Hello, reader.</p>";

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn redirect(status: StatusCode, location: String) -> Response {
    (status, [(header::LOCATION, location)]).into_response()
}

#[tokio::test]
async fn fetches_a_fixture_page() {
    let app = Router::new().route(
        "/page",
        route(|| async {
            let headers = [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::ETAG, "\"v1\""),
                (header::LAST_MODIFIED, "Tue, 01 Apr 2025 10:00:00 GMT"),
            ];
            (headers, HTML)
        }),
    );
    let server = TestServer::start(app).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));

    let url = server.url("site.test", "/page");
    let page = fetcher.fetch(&get(&url)).await.expect("page");

    assert_eq!(page.status, 200);
    assert_eq!(page.content_type.as_deref(), Some("text/html"));
    assert_eq!(page.url.as_str(), url);
    assert_eq!(page.final_url.as_str(), url);
    assert!(page.redirects.is_empty());
    assert_eq!(page.body, HTML);
    assert!(!page.not_modified);
    assert_eq!(page.validators.etag.as_deref(), Some("\"v1\""));
    assert_eq!(page.validators.last_modified.as_deref(), Some("Tue, 01 Apr 2025 10:00:00 GMT"));
    let hit = &server.hits_to("/page")[0];
    assert_eq!(hit.headers[header::USER_AGENT], "AnnoBot/1.0 (+https://anno.dev/bot)");
}

#[tokio::test]
async fn fetch_futures_can_be_spawned() {
    let server = TestServer::start(Router::new().route("/", route(|| async { html(HTML) }))).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));
    let url = server.url("site.test", "/");
    let page = tokio::spawn(async move { fetcher.fetch(&get(&url)).await }).await.expect("task");
    assert_eq!(page.expect("page").body, HTML);
}

#[tokio::test]
async fn follows_a_chain_of_three_redirects() {
    let app = Router::new()
        // Absolute, relative and path-relative Locations, and each redirect status.
        .route("/a", route(|| async { redirect(StatusCode::MOVED_PERMANENTLY, "/b".to_owned()) }))
        .route("/b", route(|| async { redirect(StatusCode::SEE_OTHER, "c?x=1".to_owned()) }))
        .route("/c", route(|| async { redirect(StatusCode::TEMPORARY_REDIRECT, "/final".to_owned()) }))
        .route("/final", route(|| async { html(HTML) }));
    let server = TestServer::start(app).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));

    let page = fetcher.fetch(&get(&server.url("site.test", "/a"))).await.expect("page");

    let hops: Vec<String> = page.redirects.iter().map(ToString::to_string).collect();
    assert_eq!(
        hops,
        [server.url("site.test", "/b"), server.url("site.test", "/c?x=1"), server.url("site.test", "/final")]
    );
    assert_eq!(page.final_url.as_str(), server.url("site.test", "/final"));
    assert_eq!(page.url.as_str(), server.url("site.test", "/a"));
    assert_eq!(page.body, HTML);
}

/// A server whose `/go` redirects to `location`.
async fn redirecting_to(location: String) -> TestServer {
    let app = Router::new().route("/go", route(move || async move { redirect(StatusCode::FOUND, location) }));
    TestServer::start(app).await
}

#[tokio::test]
async fn redirect_to_forbidden_targets_is_blocked_before_connecting() {
    let target = TestServer::start(Router::new().route("/", route(|| async { "internal secrets" }))).await;
    let port = target.port();
    let cases = [
        (format!("http://127.0.0.1:{port}/"), BlockReason::Loopback),
        (format!("http://[::ffff:127.0.0.1]:{port}/"), BlockReason::Loopback),
        (format!("http://private.test:{port}/"), BlockReason::Private),
        (format!("http://meta.test:{port}/latest/meta-data"), BlockReason::Metadata),
        (format!("http://evil.test:{port}/"), BlockReason::Loopback),
        (format!("//0x7f.1:{port}/"), BlockReason::OddHostForm),
        ("file:///etc/passwd".to_owned(), BlockReason::Scheme),
        (format!("http://user:pw@site.test:{port}/"), BlockReason::Credentials),
    ];
    for (location, reason) in cases {
        let server = redirecting_to(location.clone()).await;
        let fetcher = fetcher(config(vec![server.allow("site.test")]));
        let error = fetcher.fetch(&get(&server.url("site.test", "/go"))).await.unwrap_err();
        assert_eq!(error, FetchError::Blocked(reason), "Location: {location}");
        assert_eq!(server.hits().len(), 1);
    }
    assert!(target.hits().is_empty(), "no redirect reached the internal server");
}

/// `/count/{n}` redirects to `/count/{n-1}`; `/count/0` is the page.
async fn countdown_server() -> TestServer {
    let app = Router::new().route(
        "/count/{n}",
        route(|Path(n): Path<u32>| async move {
            match n {
                0 => html(HTML),
                n => redirect(StatusCode::FOUND, format!("/count/{}", n - 1)),
            }
        }),
    );
    TestServer::start(app).await
}

#[tokio::test]
async fn ten_redirects_are_followed_and_the_eleventh_is_refused() {
    let server = countdown_server().await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));

    let page = fetcher.fetch(&get(&server.url("site.test", "/count/10"))).await.expect("10 redirects");
    assert_eq!(page.redirects.len(), 10);
    assert_eq!(page.final_url.path(), "/count/0");

    let before = server.hits().len();
    let error = fetcher.fetch(&get(&server.url("site.test", "/count/11"))).await.unwrap_err();
    assert_eq!(error, FetchError::TooManyRedirects(10));
    assert_eq!(error.code(), "too_many_redirects");
    assert_eq!(server.hits().len() - before, 11, "the first request and ten redirects, no more");
}

#[tokio::test]
async fn names_resolving_to_forbidden_addresses_are_blocked_without_a_connection() {
    let server = TestServer::start(Router::new().route("/", route(|| async { html(HTML) }))).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));
    let cases = [
        ("evil.test", BlockReason::Loopback),
        ("private.test", BlockReason::Private),
        ("meta.test", BlockReason::Metadata),
        // One public and one loopback address: the whole name is refused.
        ("mixed.test", BlockReason::Loopback),
    ];
    for (name, reason) in cases {
        let error = fetcher.fetch(&get(&server.url(name, "/"))).await.unwrap_err();
        assert_eq!(error, FetchError::Blocked(reason), "{name}");
        assert_eq!(error.code(), "url_blocked");
        assert_eq!(error.status(), StatusCode::FORBIDDEN);
    }
    assert!(server.hits().is_empty());
}

#[tokio::test]
async fn unknown_names_and_refused_connections_are_unreachable_without_addresses() {
    let port = closed_port().await;
    let fetcher = fetcher(config(vec![format!("site.test:{port}")]));

    let error = fetcher.fetch(&get(&format!("http://nowhere.test:{port}/"))).await.unwrap_err();
    let FetchError::Unreachable(detail) = &error else { panic!("expected unreachable, got {error:?}") };
    assert!(detail.contains("nowhere.test"), "{detail}");

    let error = fetcher.fetch(&get(&format!("http://site.test:{port}/"))).await.unwrap_err();
    let FetchError::Unreachable(detail) = &error else { panic!("expected unreachable, got {error:?}") };
    assert!(detail.contains("site.test"), "{detail}");
    assert!(!detail.contains("127.0.0.1"), "the resolved address stays private: {detail}");
    assert_eq!(error.code(), "upstream_unreachable");
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
}

/// Fetches `path` with the given total timeout and expects a timeout on time.
async fn assert_times_out(app: Router, path: &str, total_ms: u64) {
    let server = TestServer::start(app).await;
    let mut config = config(vec![server.allow("site.test")]);
    config.total_timeout = Duration::from_millis(total_ms);
    let fetcher = fetcher(config);

    let started = Instant::now();
    let error = fetcher.fetch(&get(&server.url("site.test", path))).await.unwrap_err();
    assert_eq!(error, FetchError::Timeout);
    assert_eq!(error.status(), StatusCode::GATEWAY_TIMEOUT);
    let took = started.elapsed();
    let bounds = Duration::from_millis(total_ms - 10)..Duration::from_millis(total_ms + 500);
    assert!(bounds.contains(&took), "took {took:?}");
    assert_eq!(server.hits_to(path).len(), 1);
}

#[tokio::test]
async fn headers_slower_than_the_total_timeout_time_out() {
    let app = Router::new().route(
        "/slow",
        route(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            html(HTML)
        }),
    );
    assert_times_out(app, "/slow", 300).await;
}

#[tokio::test]
async fn a_stalled_body_times_out() {
    let app = Router::new().route(
        "/stall",
        route(|| async {
            let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"<html><p>start"))]);
            let body = Body::from_stream(first.chain(futures::stream::pending()));
            ([(header::CONTENT_TYPE, "text/html")], body)
        }),
    );
    assert_times_out(app, "/stall", 400).await;
}

fn limited_server() -> Router {
    Router::new()
        .route("/exact", route(|| async { ([(header::CONTENT_TYPE, "text/plain")], "x".repeat(1024)) }))
        .route("/declared", route(|| async { ([(header::CONTENT_TYPE, "text/html")], "x".repeat(1025)) }))
        .route(
            "/chunked",
            route(|| async {
                // 16 chunks of 256 bytes, no Content-Length.
                let chunks =
                    futures::stream::iter((0..16).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 256]))));
                ([(header::CONTENT_TYPE, "text/html")], Body::from_stream(chunks))
            }),
        )
}

#[tokio::test]
async fn bodies_past_the_limit_are_refused() {
    let server = TestServer::start(limited_server()).await;
    let mut config = config(vec![server.allow("site.test")]);
    config.max_body_bytes = 1024;
    let fetcher = fetcher(config);

    let page = fetcher.fetch(&get(&server.url("site.test", "/exact"))).await.expect("exactly the limit");
    assert_eq!(page.body.len(), 1024);

    for path in ["/declared", "/chunked"] {
        let error = fetcher.fetch(&get(&server.url("site.test", path))).await.unwrap_err();
        assert_eq!(error, FetchError::TooLarge(1024), "{path}");
        assert_eq!(error.code(), "page_too_large");
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}

/// Writes a deflate stream least-significant bit first.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    pending: u64,
    count: u32,
}

impl Bits {
    fn put(&mut self, value: u64, width: u32) {
        self.pending |= value << self.count;
        self.count += width;
        while self.count >= 8 {
            self.out.push(self.pending.to_le_bytes()[0]);
            self.pending >>= 8;
            self.count -= 8;
        }
    }

    /// A Huffman code, which deflate packs most-significant bit first.
    fn code(&mut self, code: u64, width: u32) {
        self.put(code.reverse_bits() >> (64 - width), width);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.put(0, 8 - self.count);
        }
        self.out
    }
}

/// A gzip body of about 100 KB that inflates to 100 MiB of zeros: one dynamic
/// Huffman block where "copy 258 bytes at distance 1" costs two bits, the
/// format's best ratio (RFC 1951 §3.2.7). Its trailer's CRC is not computed:
/// a reader that stops at the size limit never gets there.
fn gzip_bomb() -> Vec<u8> {
    const COPIES: u64 = 406_423;
    let mut bits = Bits::default();
    bits.put(1, 1); // final block
    bits.put(2, 2); // dynamic Huffman codes
    bits.put(286 - 257, 5); // literal/length codes: 0..=285
    bits.put(0, 5); // one distance code
    bits.put(18 - 4, 4); // code-length codes, in the RFC's order up to `1`
    for length in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        bits.put(length, 3);
    }
    // Code-length codes: 18 → `0`, 1 → `10`, 2 → `11`. Literal/length lengths:
    // 0 → 2, 1..=255 → none, 256 → 2, 257..=284 → none, 285 → 1; distance 0 → 1.
    bits.code(0b11, 2);
    bits.code(0, 1);
    bits.put(138 - 11, 7);
    bits.code(0, 1);
    bits.put(117 - 11, 7);
    bits.code(0b11, 2);
    bits.code(0, 1);
    bits.put(28 - 11, 7);
    bits.code(0b10, 2);
    bits.code(0b10, 2);
    // Data: a literal zero, then copies of 258 (`0`) at distance 1 (`0`), then the end (`11`).
    bits.code(0b10, 2);
    for _ in 0..COPIES {
        bits.code(0, 1);
        bits.code(0, 1);
    }
    bits.code(0b11, 2);
    let size = 1 + 258 * COPIES;
    let mut gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gzip.extend(bits.finish());
    gzip.extend(0u32.to_le_bytes());
    gzip.extend(u32::try_from(size % (1 << 32)).expect("fits").to_le_bytes());
    gzip
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("compress");
    encoder.finish().expect("compress")
}

#[tokio::test]
async fn compressed_pages_are_decoded_and_a_decompression_bomb_fails_fast() {
    let bomb = Bytes::from(gzip_bomb());
    assert!(bomb.len() < 110 * 1024, "the bomb is small on the wire: {}", bomb.len());
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&bomb[..]).take(4 << 20).read_to_end(&mut inflated).expect("a valid gzip stream");
    assert!(inflated.len() == 4 << 20 && inflated.iter().all(|b| *b == 0), "it inflates to zeros past the limit");
    let small = Bytes::from(gzip(HTML));
    let app = Router::new()
        .route(
            "/bomb",
            route(move || {
                let bomb = bomb.clone();
                async move { ([(header::CONTENT_TYPE, "text/html"), (header::CONTENT_ENCODING, "gzip")], bomb) }
            }),
        )
        .route(
            "/gzipped",
            route(move || {
                let small = small.clone();
                async move { ([(header::CONTENT_TYPE, "text/html"), (header::CONTENT_ENCODING, "gzip")], small) }
            }),
        );
    let server = TestServer::start(app).await;
    let mut config = config(vec![server.allow("site.test")]);
    config.max_body_bytes = 1 << 20;
    config.total_timeout = Duration::from_secs(5);
    let fetcher = fetcher(config);

    let page = fetcher.fetch(&get(&server.url("site.test", "/gzipped"))).await.expect("gzipped page");
    assert_eq!(page.body, HTML);

    let started = Instant::now();
    let error = fetcher.fetch(&get(&server.url("site.test", "/bomb"))).await.unwrap_err();
    assert_eq!(error, FetchError::TooLarge(1 << 20));
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn unsupported_content_types_are_refused_unless_anything_is_accepted() {
    let app =
        Router::new().route("/doc.pdf", route(|| async { ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.7") }));
    let server = TestServer::start(app).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));
    let url = server.url("site.test", "/doc.pdf");

    let error = fetcher.fetch(&get(&url)).await.unwrap_err();
    assert_eq!(error, FetchError::UnsupportedContentType("application/pdf".to_owned()));
    assert_eq!(error.code(), "unsupported_content_type");
    assert_eq!(error.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let any = FetchRequest { accept: Accept::Any, ..get(&url) };
    let page = fetcher.fetch(&any).await.expect("any type");
    assert_eq!(page.content_type.as_deref(), Some("application/pdf"));
}

/// Answers `failures` times with `status` (and `Retry-After` when given), then 200.
fn flaky(failures: usize, status: StatusCode, retry_after: Option<&'static str>) -> Router {
    let served = Arc::new(AtomicUsize::new(0));
    Router::new().route(
        "/flaky",
        route(move || {
            let served = served.clone();
            async move {
                if served.fetch_add(1, Ordering::SeqCst) < failures {
                    let mut headers = HeaderMap::new();
                    if let Some(value) = retry_after {
                        headers.insert(header::RETRY_AFTER, value.parse().expect("header"));
                    }
                    return (status, headers, "try later").into_response();
                }
                html(HTML)
            }
        }),
    )
}

#[tokio::test]
async fn a_5xx_is_retried_and_then_succeeds() {
    let server = TestServer::start(flaky(1, StatusCode::INTERNAL_SERVER_ERROR, None)).await;
    let mut config = config(vec![server.allow("site.test")]);
    config.retries = 1;
    let page = fetcher(config).fetch(&get(&server.url("site.test", "/flaky"))).await.expect("second attempt");
    assert_eq!(page.body, HTML);
    assert_eq!(server.hits_to("/flaky").len(), 2);
}

#[tokio::test]
async fn without_retries_a_5xx_is_an_upstream_error() {
    let server = TestServer::start(flaky(1, StatusCode::BAD_GATEWAY, None)).await;
    let error = fetcher(config(vec![server.allow("site.test")]))
        .fetch(&get(&server.url("site.test", "/flaky")))
        .await
        .unwrap_err();
    assert_eq!(error, FetchError::Upstream(502));
    assert_eq!((error.code(), error.status()), ("upstream_error", StatusCode::BAD_GATEWAY));
    assert_eq!(server.hits().len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = TestServer::start(flaky(1, StatusCode::SERVICE_UNAVAILABLE, Some("1"))).await;
    let mut config = config(vec![server.allow("site.test")]);
    config.retries = 1;
    config.total_timeout = Duration::from_secs(3);
    let page = fetcher(config).fetch(&get(&server.url("site.test", "/flaky"))).await.expect("second attempt");
    assert_eq!(page.status, 200);
    let hits = server.hits_to("/flaky");
    assert_eq!(hits.len(), 2);
    let waited = hits[1].at - hits[0].at;
    assert!(waited >= Duration::from_secs(1), "the retry came after {waited:?}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_is_not_awaited() {
    let server = TestServer::start(flaky(1, StatusCode::SERVICE_UNAVAILABLE, Some("30"))).await;
    let mut config = config(vec![server.allow("site.test")]);
    config.retries = 3;
    let started = Instant::now();
    let error = fetcher(config).fetch(&get(&server.url("site.test", "/flaky"))).await.unwrap_err();
    assert_eq!(error, FetchError::Upstream(503));
    assert!(started.elapsed() < Duration::from_millis(500), "gave up at once, took {:?}", started.elapsed());
}

/// A fetcher whose breaker opens after `failures` for `open_ms`, and the server's `/`.
fn with_breaker(server: &TestServer, failures: u32, open_ms: u64) -> (Fetcher, String) {
    let mut config = config(vec![server.allow("site.test")]);
    config.breaker_failures = failures;
    config.breaker_open = Duration::from_millis(open_ms);
    (fetcher(config), server.url("site.test", "/"))
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_and_recovers() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let app = Router::new().route(
        "/",
        route(move || {
            let healthy = flag.load(Ordering::SeqCst);
            async move { if healthy { html(HTML) } else { StatusCode::INTERNAL_SERVER_ERROR.into_response() } }
        }),
    );
    let server = TestServer::start(app).await;
    let (fetcher, url) = with_breaker(&server, 3, 300);

    for _ in 0..3 {
        assert_eq!(fetcher.fetch(&get(&url)).await.unwrap_err(), FetchError::Upstream(500));
    }
    for _ in 0..3 {
        let error = fetcher.fetch(&get(&url)).await.unwrap_err();
        assert_eq!(error, FetchError::CircuitOpen);
        assert_eq!((error.code(), error.status()), ("upstream_circuit_open", StatusCode::SERVICE_UNAVAILABLE));
    }
    assert_eq!(server.hits().len(), 3, "an open circuit does not touch the network");

    // After the open period one trial goes through; it succeeds and closes the circuit.
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(fetcher.fetch(&get(&url)).await.expect("trial").body, HTML);
    assert_eq!(fetcher.fetch(&get(&url)).await.expect("closed again").body, HTML);
    assert_eq!(server.hits().len(), 5);
}

#[tokio::test]
async fn a_failed_half_open_trial_reopens_the_circuit() {
    let server = TestServer::start(Router::new().route("/", route(|| async { StatusCode::SERVICE_UNAVAILABLE }))).await;
    let (fetcher, url) = with_breaker(&server, 2, 200);

    for _ in 0..2 {
        assert_eq!(fetcher.fetch(&get(&url)).await.unwrap_err(), FetchError::Upstream(503));
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(fetcher.fetch(&get(&url)).await.unwrap_err(), FetchError::Upstream(503), "the trial");
    assert_eq!(fetcher.fetch(&get(&url)).await.unwrap_err(), FetchError::CircuitOpen);
    assert_eq!(server.hits().len(), 3);
}

#[tokio::test]
async fn a_conditional_request_gets_not_modified() {
    let app = Router::new().route(
        "/cached",
        route(|headers: HeaderMap| async move {
            if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "\"v7\"") {
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, "\"v7\"")]).into_response();
            }
            ([(header::CONTENT_TYPE, "text/html"), (header::ETAG, "\"v7\"")], HTML).into_response()
        }),
    );
    let server = TestServer::start(app).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));
    let url = server.url("site.test", "/cached");

    let first = fetcher.fetch(&get(&url)).await.expect("first");
    assert!(!first.not_modified);
    assert_eq!(first.validators.etag.as_deref(), Some("\"v7\""));

    let again = FetchRequest { validators: Some(first.validators.clone()), ..get(&url) };
    let second = fetcher.fetch(&again).await.expect("revalidated");
    assert!(second.not_modified);
    assert_eq!(second.status, 304);
    assert!(second.body.is_empty());
    assert_eq!(second.validators.etag.as_deref(), Some("\"v7\""));

    // A stale validator gets the full page.
    let stale = Validators { etag: Some("\"v6\"".to_owned()), last_modified: None };
    let third = fetcher.fetch(&FetchRequest { validators: Some(stale), ..get(&url) }).await.expect("changed");
    assert!(!third.not_modified);
    assert_eq!(third.body, HTML);
}

#[tokio::test]
async fn caller_headers_are_sent_but_credentials_stop_at_another_origin() {
    let target = TestServer::start(Router::new().route("/landing", route(|| async { html(HTML) }))).await;
    let location = target.url("other.test", "/landing");
    let app = Router::new()
        .route("/start", route(|| async { redirect(StatusCode::FOUND, "/same".to_owned()) }))
        .route("/same", route(move || async move { redirect(StatusCode::FOUND, location) }));
    let server = TestServer::start(app).await;
    let fetcher = fetcher(config(vec![server.allow("site.test"), target.allow("other.test")]));

    let request = FetchRequest {
        headers: vec![
            ("X-Tenant-Hint".to_owned(), "blue".to_owned()),
            ("Authorization".to_owned(), "Bearer secret".to_owned()),
            ("Cookie".to_owned(), "session=1".to_owned()),
            ("Host".to_owned(), "internal.example".to_owned()),
            ("Connection".to_owned(), "close, X-Drop-Me".to_owned()),
            ("X-Drop-Me".to_owned(), "1".to_owned()),
        ],
        ..get(&server.url("site.test", "/start"))
    };
    let page = fetcher.fetch(&request).await.expect("page");
    assert_eq!(page.final_url.as_str(), target.url("other.test", "/landing"));

    let same = &server.hits_to("/same")[0].headers;
    assert_eq!(same["x-tenant-hint"], "blue");
    assert_eq!(same[header::AUTHORIZATION], "Bearer secret", "kept on the same origin");
    assert_eq!(same[header::COOKIE], "session=1");
    assert_eq!(same[header::HOST], format!("site.test:{}", server.port()));
    assert!(!same.contains_key("x-drop-me"), "headers named by Connection are hop-by-hop");

    let other = &target.hits_to("/landing")[0].headers;
    assert_eq!(other["x-tenant-hint"], "blue");
    assert!(!other.contains_key(header::AUTHORIZATION));
    assert!(!other.contains_key(header::COOKIE));
}

#[tokio::test]
async fn invalid_caller_headers_are_refused() {
    let fetcher = fetcher(config(Vec::new()));
    let request =
        FetchRequest { headers: vec![("Bad Header".to_owned(), "x".to_owned())], ..get("https://example.com/") };
    let error = fetcher.fetch(&request).await.unwrap_err();
    assert!(matches!(error, FetchError::InvalidHeader(_)), "{error:?}");
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_non_2xx_answer_is_an_upstream_error() {
    let server = TestServer::start(Router::new().route("/", route(|| async { html(HTML) }))).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));
    let error = fetcher.fetch(&get(&server.url("site.test", "/missing"))).await.unwrap_err();
    assert_eq!(error, FetchError::Upstream(404));
}
