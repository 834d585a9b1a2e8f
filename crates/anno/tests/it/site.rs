//! A small web site on loopback for the content tests: articles, redirects,
//! slow, large and odd responses, robots.txt, validators. It runs on its own
//! thread and runtime so it outlives any one test's runtime, and counts the
//! requests each path received.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The host name the platform is allowed to reach the site by (it resolves
/// to loopback, which is otherwise refused).
pub const HOST: &str = "localhost";

pub struct Site {
    pub port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Site {
    /// `http://localhost:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{HOST}:{}{path}", self.port)
    }

    /// `host:port`, as `fetch.allowed_private_hosts` takes it.
    pub fn allowed(&self) -> String {
        format!("{HOST}:{}", self.port)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().map(|h| h.get(path).copied().unwrap_or(0)).unwrap_or(0)
    }
}

const PROSE: &[&str] = &[
    "The harbour authority confirmed on Tuesday that the northern breakwater, damaged in the winter storms, will be rebuilt over the next two summers at a cost the council puts at a little over forty million.",
    "Engineers who surveyed the structure in March found that the concrete armour units along its outer face had shifted by as much as a metre, leaving the core exposed to the swell in several places.",
    "Fishing crews have complained for months that the damaged wall lets waves into the inner basin, where smaller boats are moored, and two vessels were lost at their moorings in February.",
    "Work will begin in June, when the weather allows barges to sit alongside the wall, and will pause each winter; the authority expects the harbour to stay open throughout, with some berths closed.",
];

/// A news article with navigation, a table, code and a sidebar around it.
pub fn article(title: &str) -> String {
    let paragraphs: String = PROSE.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} | Harbour News</title>
<meta property="og:site_name" content="Harbour News"><meta property="og:type" content="article">
<meta name="author" content="Jane Doe">
<script type="application/ld+json">{{"@context":"https://schema.org","@type":"NewsArticle","headline":"{title}","datePublished":"2024-05-14"}}</script>
</head><body><nav><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a></nav>
<main><article><h1>{title}</h1>{paragraphs}
<h2>Costs by year</h2>
<table><tr><th>Year</th><th>Cost</th></tr><tr><td>2025</td><td>18m</td></tr><tr><td>2026</td><td>23m</td></tr></table>
<p>The survey's data is read with a short script, shown below, and <a href="/survey">published in full</a>.</p>
<pre><code class="language-python">print("breakwater")</code></pre>
</article></main><aside><h2>Most read</h2><ul><li><a href="/a">Ferry timetable</a></li></ul></aside>
<footer>© 2024 Harbour News</footer></body></html>"#
    )
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn page(
    State(hits): State<Arc<Mutex<HashMap<String, usize>>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Ok(mut hits) = hits.lock() {
        *hits.entry(format!("/{path}")).or_default() += 1;
    }
    match path.as_str() {
        "robots.txt" => ([(header::CONTENT_TYPE, "text/plain")], "User-agent: *\nDisallow: /private\n").into_response(),
        "article" => html(article("Breakwater to be rebuilt")),
        "other" => html(article("Ferry timetable changes")),
        "private/page" => html(article("Private")),
        "redirect" => redirect("/hop"),
        "hop" => redirect("/article"),
        // To the site itself, by an address the guard refuses.
        "redirect-out" => redirect("http://127.0.0.1/article"),
        "validated" => {
            let etag = "\"v1\"";
            if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == etag) {
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
            }
            let mut response = html(article("Validated"));
            response.headers_mut().insert(header::ETAG, HeaderValue::from_static(etag));
            response
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            html(article("Too late"))
        }
        "big" => html(format!("<html><body><p>{}</p></body></html>", "x".repeat(11 << 20))),
        "paper.pdf" => ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.7 …").into_response(),
        "broken" => (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        "latin1" => {
            // windows-1252 bytes with the charset only in a <meta>.
            let mut bytes =
                b"<html><head><meta charset=\"windows-1252\"><title>Caf\xe9</title></head><body><article><p>".to_vec();
            bytes.extend_from_slice(PROSE[0].as_bytes());
            bytes.extend_from_slice(b" Le caf\xe9 na\xefve \x93quoted\x94.</p></article></body></html>");
            ([(header::CONTENT_TYPE, "text/html")], Body::from(bytes)).into_response()
        }
        "sniffed" => {
            // windows-1252 bytes with no charset anywhere: told by sniffing.
            let mut bytes = b"<html><head><title>Sniffed</title></head><body><article><p>".to_vec();
            bytes.extend_from_slice(PROSE[1].as_bytes());
            bytes.extend_from_slice(b" D\xe9j\xe0 vu, cr\xe8me br\xfbl\xe9e et \xe7a.</p></article></body></html>");
            ([(header::CONTENT_TYPE, "text/html")], Body::from(bytes)).into_response()
        }
        _ if path.starts_with("crawl/") => crawl_page(&path["crawl/".len()..]).await,
        _ => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

/// A chain of pages for crawls: `crawl/0` … `crawl/5`, each linking to the
/// next and back to the first, each answering after 200 ms.
async fn crawl_page(n: &str) -> Response {
    let Ok(n) = n.parse::<u32>() else { return (StatusCode::NOT_FOUND, "no such page").into_response() };
    if n > 5 {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = if n < 5 { format!("<a href=\"/crawl/{}\">next</a>", n + 1) } else { String::new() };
    let body = article(&format!("Chapter {n}"))
        .replace("</footer>", &format!("{next} <a href=\"/crawl/0\">start</a></footer>"));
    html(body)
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response()
}

/// The site, started on first use.
pub fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fixture site");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("address").port();
        let router = Router::new().route("/{*path}", get(page)).with_state(hits.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("the fixture site's runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let _ = axum::serve(listener, router).await;
            });
        });
        Site { port, hits }
    })
}
