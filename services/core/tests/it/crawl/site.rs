//! A small website on 127.0.0.1, reached as `site.test`: pages linking to each
//! other at several depths, a robots.txt with a `Disallow` and a `Sitemap` line,
//! a sitemap listing pages nothing links to, a link to another host, a page
//! answering 500, and a `/slow/` section whose pages wait for the test to let
//! them through.

use anno_fetch::{FetchConfig, Fetcher, HostCoordinator, StaticResolver};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Pages under `/slow/` (besides `/slow/` itself).
pub const SLOW_PAGES: usize = 12;

#[derive(Clone)]
struct Shared {
    port: u16,
    gate: Arc<Semaphore>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

pub struct Site {
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Site {
    pub async fn start() -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the site");
        let port = listener.local_addr().expect("address").port();
        let shared = Shared { port, gate: Arc::new(Semaphore::new(0)), hits: Arc::default() };
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Site { shared, server }
    }

    /// The absolute URL of a path of the site.
    pub fn url(&self, path: &str) -> String {
        format!("http://site.test:{}{path}", self.shared.port)
    }

    /// The path of one of the site's URLs; other hosts' URLs as they are.
    pub fn path<'a>(&self, url: &'a str) -> &'a str {
        let origin = format!("http://site.test:{}", self.shared.port);
        url.strip_prefix(origin.as_str()).unwrap_or(url)
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// How often a path was requested.
    pub fn hits(&self, path: &str) -> u32 {
        self.shared.hits.lock().map(|h| h.get(path).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// Lets `n` more slow pages answer.
    pub fn release(&self, n: usize) {
        self.shared.gate.add_permits(n);
    }

    /// A fetcher that reaches this site (and `elsewhere.test`, which must never be fetched).
    pub fn fetcher(&self) -> Fetcher {
        let local = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let resolver = StaticResolver::new().with("site.test", local).with("elsewhere.test", local);
        let config = FetchConfig {
            allowed_private_hosts: vec![format!("site.test:{}", self.shared.port)],
            host_interval: Duration::ZERO,
            retries: 0,
            total_timeout: Duration::from_secs(10),
            breaker_failures: 0,
            ..FetchConfig::default()
        };
        Fetcher::new(config, Arc::new(resolver), HostCoordinator::Local).expect("a fetcher")
    }
}

/// The links of each page, by path: `None` is no such page.
fn links(path: &str, port: u16) -> Option<Vec<String>> {
    let list = |l: &[&str]| Some(l.iter().map(|s| (*s).to_owned()).collect());
    match path {
        "/" => Some(vec![
            "/a".into(),
            "/b".into(),
            "/docs/".into(),
            "/private/".into(),
            "/broken".into(),
            format!("http://elsewhere.test:{port}/"),
            "/a#top".into(),
            "mailto:team@site.test".into(),
        ]),
        "/a" => list(&["/a/1", "/a/2", "/a/3"]),
        "/b" => list(&["/b/1", "/b/2"]),
        "/docs/" => list(&["/docs/intro", "/docs/guide", "/docs/api"]),
        "/private/" => list(&["/private/inner"]),
        "/a/1" => list(&["/a/1/x", "/a/1/y"]),
        "/a/2" => list(&["/a/2/x"]),
        "/docs/guide" => list(&["/docs/guide/deep"]),
        "/docs/guide/deep" => list(&["/docs/guide/deep/er"]),
        "/a/3"
        | "/b/1"
        | "/b/2"
        | "/docs/intro"
        | "/docs/api"
        | "/a/1/x"
        | "/a/1/y"
        | "/a/2/x"
        | "/docs/guide/deep/er"
        | "/private/inner"
        | "/orphan/1"
        | "/orphan/2"
        | "/orphan/3" => list(&[]),
        "/slow/" => Some((1..=SLOW_PAGES).map(|i| format!("/slow/{i}")).collect()),
        _ => match path.strip_prefix("/slow/").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if (1..=SLOW_PAGES).contains(&n) => list(&[]),
            _ => None,
        },
    }
}

/// A page: some prose in `<main>` and its links in the footer, outside the main
/// content, where the crawler must find them all the same.
fn page(path: &str, links: &[String]) -> String {
    let items: String = links.iter().map(|l| format!("<li><a href=\"{l}\">{l}</a></li>")).collect();
    // The slow section keeps to itself.
    let home = if path.starts_with("/slow/") { "/slow/" } else { "/" };
    format!(
        "<!doctype html><html><head><title>Page {path}</title></head><body>\
         <nav><a href=\"{home}\">Home</a></nav>\
         <main><article><h1>About {path}</h1>\
         <p>This page, {path}, is part of a small test site. It has a few sentences of prose so that \
         the extractor finds real content here, with commas, clauses, and enough words to count.</p>\
         <p>The second paragraph adds a little more text about {path}, which makes the page look like \
         an article rather than a list of links, as real pages usually do.</p></article></main>\
         <footer><ul>{items}</ul></footer></body></html>"
    )
}

async fn serve(State(site): State<Shared>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    if let Ok(mut hits) = site.hits.lock() {
        *hits.entry(path.clone()).or_default() += 1;
    }
    let origin = format!("http://site.test:{}", site.port);
    match path.as_str() {
        "/robots.txt" => {
            let body = format!("User-agent: *\nDisallow: /private/\n\nSitemap: {origin}/sitemap.xml\n");
            return ([(header::CONTENT_TYPE, "text/plain")], body).into_response();
        }
        "/sitemap.xml" => {
            let urls: String = ["/", "/orphan/1", "/orphan/2", "/orphan/3"]
                .iter()
                .map(|p| format!("<url><loc>{origin}{p}</loc></url>"))
                .collect();
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                 <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{urls}</urlset>"
            );
            return ([(header::CONTENT_TYPE, "application/xml")], body).into_response();
        }
        "/broken" => return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        _ => {}
    }
    let Some(links) = links(&path, site.port) else { return StatusCode::NOT_FOUND.into_response() };
    if path.starts_with("/slow/") && path != "/slow/" {
        match site.gate.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page(&path, &links)).into_response()
}
