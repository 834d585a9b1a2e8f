//! robots.txt: the parser, and how the fetcher obeys it.

use crate::support::{TestServer, closed_port, config, fetcher, get};
use anno_fetch::robots::{MAX_ROBOTS_BYTES, product_token};
use anno_fetch::{
    BlockReason, FetchConfig, FetchError, FetchRequest, Fetcher, HostCoordinator, Robots, StaticResolver,
};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get as route;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

const UA: &str = "AnnoBot/1.0 (+https://anno.dev/bot)";

fn robots(text: &str) -> Robots {
    Robots::parse(text, UA)
}

#[test]
fn the_product_token_is_the_first_word_before_the_slash() {
    assert_eq!(product_token("AnnoBot/1.0 (+https://anno.dev/bot)"), "annobot");
    assert_eq!(product_token("annobot"), "annobot");
    assert_eq!(product_token(""), "");
}

const ALLOWED: bool = true;
const DISALLOWED: bool = false;

/// Checks each path's verdict and reports every wrong one.
fn assert_verdicts(text: &str, cases: &[(&str, bool)]) {
    let robots = robots(text);
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(path, allowed)| robots.allowed(path) != *allowed)
        .map(|(path, allowed)| format!("{path}: expected allowed = {allowed}"))
        .collect();
    assert!(wrong.is_empty(), "{text:?}\n{}", wrong.join("\n"));
}

#[test]
fn the_longest_match_wins() {
    assert_verdicts(
        "User-agent: *\nDisallow: /shop\nAllow: /shop/public\nDisallow: /shop/public/drafts\n",
        &[
            ("/shop", DISALLOWED),
            ("/shop/cart", DISALLOWED),
            ("/shop/public/item", ALLOWED),
            ("/shop/public/drafts/1", DISALLOWED),
            ("/about", ALLOWED),
            ("/", ALLOWED),
        ],
    );
}

#[test]
fn allow_wins_a_tie() {
    // `/x*` and `/x$` are the same length: the Allow wins where both match.
    assert_verdicts(
        "User-agent: *\nDisallow: /page\nAllow: /page\nDisallow: /x*\nAllow: /x$\n",
        &[("/page", ALLOWED), ("/page/2", ALLOWED), ("/x", ALLOWED), ("/xy", DISALLOWED)],
    );
}

#[test]
fn wildcards_match_any_sequence() {
    assert_verdicts(
        "User-agent: *\nDisallow: /*.json\nDisallow: /*/private/*/edit\nDisallow: /search*q=\n",
        &[
            ("/api/data.json", DISALLOWED),
            ("/data.json?x=1", DISALLOWED),
            ("/data.xml", ALLOWED),
            ("/a/private/b/edit", DISALLOWED),
            ("/a/b/private/c/d/edit/x", DISALLOWED),
            ("/a/private/edit", ALLOWED),
            ("/search?lang=en&q=rust", DISALLOWED),
            ("/search?lang=en", ALLOWED),
        ],
    );
}

#[test]
fn the_dollar_sign_anchors_the_end() {
    assert_verdicts(
        "User-agent: *\nDisallow: /*.pdf$\nDisallow: /exact$\n",
        &[
            ("/files/report.pdf", DISALLOWED),
            ("/files/report.pdf?download=1", ALLOWED),
            ("/files/report.pdf.html", ALLOWED),
            ("/exact", DISALLOWED),
            ("/exact/", ALLOWED),
            ("/exactly", ALLOWED),
        ],
    );
}

#[test]
fn our_group_is_chosen_by_product_token_and_merged() {
    let text = "\
User-agent: *
Disallow: /

User-agent: OtherBot
Allow: /

# Groups naming us are merged, whatever the case.
User-agent: annobot
Disallow: /private

User-agent: Googlebot
User-agent: ANNOBOT/2.0
Disallow: /drafts
Crawl-delay: 2.5
";
    let r = robots(text);
    assert!(r.allowed("/"), "the `*` group does not apply once a group names us");
    assert!(!r.allowed("/private/x"));
    assert!(!r.allowed("/drafts/x"));
    assert!(r.allowed("/public"));
    assert_eq!(r.crawl_delay(), Some(Duration::from_millis(2500)));

    let other = Robots::parse(text, "SomeCrawler/3");
    assert!(!other.allowed("/anything"), "the `*` group applies to agents without a group");
    assert_eq!(other.crawl_delay(), None);

    let unlisted = robots("User-agent: OtherBot\nDisallow: /\n");
    assert!(unlisted.allowed("/anything"), "no group for us and no `*`: everything is allowed");
}

#[test]
fn percent_encoding_is_normalised() {
    assert_verdicts(
        "User-agent: *\nDisallow: /%7Euser\nDisallow: /caf%c3%a9\nDisallow: /löwe\nDisallow: /a%2fb\n",
        &[
            // %7E is an unreserved `~`.
            ("/~user/page", DISALLOWED),
            // Escapes compare without regard to hex case.
            ("/caf%C3%A9", DISALLOWED),
            // Raw UTF-8 in a rule matches its escaped form.
            ("/l%C3%B6we", DISALLOWED),
            ("/a%2Fb", DISALLOWED),
            // An escaped `/` is not a path separator.
            ("/a/b", ALLOWED),
        ],
    );
}

#[test]
fn empty_rules_comments_and_stray_lines_are_handled() {
    let r = robots(
        "Disallow: /before-any-group\n\
         User-agent: * # everyone\n\
         Disallow:\n\
         Disallow: /tmp # scratch\r\n\
         Sitemap: https://example.com/sitemap.xml\n\
         Unknown-directive: whatever\n\
         no colon here\n",
    );
    assert!(r.allowed("/before-any-group"), "rules outside a group are ignored");
    assert!(r.allowed("/"), "an empty Disallow allows everything");
    assert!(!r.allowed("/tmp/file"));
    assert_eq!(r.sitemaps(), ["https://example.com/sitemap.xml"]);
}

#[test]
fn robots_txt_itself_is_always_allowed() {
    let r = robots("User-agent: *\nDisallow: /\n");
    assert!(!r.allowed("/index.html"));
    assert!(r.allowed("/robots.txt"));
    assert!(Robots::disallow_all().allowed("/robots.txt"));
    assert!(!Robots::disallow_all().allowed("/"));
    assert!(Robots::allow_all().allowed("/anything"));
}

#[test]
fn only_the_first_500_kib_count() {
    let filler = "# padding\n".repeat(MAX_ROBOTS_BYTES / 10);
    let r = robots(&format!("User-agent: *\nDisallow: /early\n{filler}Disallow: /late\n"));
    assert!(!r.allowed("/early"));
    assert!(r.allowed("/late"), "a rule past the limit is not read");
}

#[test]
fn odd_crawl_delays_are_ignored_or_capped() {
    assert_eq!(robots("User-agent: *\nCrawl-delay: -1\n").crawl_delay(), None);
    assert_eq!(robots("User-agent: *\nCrawl-delay: soon\n").crawl_delay(), None);
    assert_eq!(robots("User-agent: *\nCrawl-delay: NaN\n").crawl_delay(), None);
    assert_eq!(robots("User-agent: *\nCrawl-delay: 1e300\n").crawl_delay(), Some(Duration::from_secs(24 * 3600)));
}

fn respecting(url: &str) -> FetchRequest {
    FetchRequest { respect_robots: true, ..get(url) }
}

fn site(robots: &'static str) -> Router {
    Router::new()
        .route("/robots.txt", route(move || async move { ([(header::CONTENT_TYPE, "text/plain")], robots) }))
        .route("/{*path}", route(|| async { ([(header::CONTENT_TYPE, "text/html")], "<p>page</p>") }))
}

#[tokio::test]
async fn a_disallowed_path_is_refused_before_the_page_is_fetched() {
    let server =
        TestServer::start(site("User-agent: *\nDisallow: /private\nSitemap: https://site.test/sitemap.xml\n")).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));

    let error = fetcher.fetch(&respecting(&server.url("site.test", "/private/page"))).await.unwrap_err();
    assert_eq!(error, FetchError::RobotsDisallowed);
    assert_eq!((error.code(), error.status()), ("robots_disallowed", StatusCode::FORBIDDEN));
    assert!(server.hits_to("/private/page").is_empty());

    let page = fetcher.fetch(&respecting(&server.url("site.test", "/public"))).await.expect("allowed page");
    assert_eq!(page.body, "<p>page</p>");
    assert_eq!(server.hits_to("/robots.txt").len(), 1, "robots.txt is cached per origin");

    // Without respect_robots the page is fetched.
    fetcher.fetch(&get(&server.url("site.test", "/private/page"))).await.expect("not checked");

    let url = Url::parse(&server.url("site.test", "/")).expect("url");
    assert_eq!(fetcher.robots(&url).await.sitemaps(), ["https://site.test/sitemap.xml"]);
}

#[tokio::test]
async fn missing_robots_allows_and_a_failing_one_disallows() {
    let missing = Router::new().route("/", route(|| async { "<p>home</p>" }));
    let failing = Router::new()
        .route("/robots.txt", route(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/", route(|| async { "<p>home</p>" }));
    let missing = TestServer::start(missing).await;
    let failing = TestServer::start(failing).await;
    let fetcher = fetcher(config(vec![missing.allow("site.test"), failing.allow("other.test")]));

    let page = fetcher.fetch(&respecting(&missing.url("site.test", "/"))).await.expect("404 robots allows all");
    assert_eq!(page.body, "<p>home</p>");
    assert_eq!(missing.hits_to("/robots.txt").len(), 1);

    let error = fetcher.fetch(&respecting(&failing.url("other.test", "/"))).await.unwrap_err();
    assert_eq!(error, FetchError::RobotsDisallowed);
    assert!(failing.hits_to("/").is_empty());
}

/// An unreachable robots.txt disallows the whole site; a page of that site
/// then fails for the reason robots.txt did (it is just as unreachable), not
/// as if the site had said no.
#[tokio::test]
async fn unreachable_robots_disallows() {
    let port = closed_port().await;
    let fetcher = fetcher(config(vec![format!("site.test:{port}")]));
    let url = Url::parse(&format!("http://site.test:{port}/page")).unwrap();
    let robots = fetcher.robots(&url).await;
    assert!(!robots.allowed("/page"));
    assert!(matches!(robots.failure(), Some(FetchError::Unreachable(_))), "{:?}", robots.failure());
    let error = fetcher.fetch(&respecting(url.as_str())).await.unwrap_err();
    assert!(matches!(error, FetchError::Unreachable(_)), "{error:?}");
}

/// A name that resolves to a refused address is `url_blocked` whether or not
/// robots.txt is asked first.
#[tokio::test]
async fn a_blocked_site_is_blocked_not_disallowed() {
    let resolver = StaticResolver::new().with("private.test", ["10.0.0.7".parse().unwrap()]);
    let fetcher = Fetcher::new(FetchConfig::default(), Arc::new(resolver), HostCoordinator::Local).unwrap();
    let error = fetcher.fetch(&respecting("http://private.test/page")).await.unwrap_err();
    assert_eq!(error, FetchError::Blocked(BlockReason::Private));
}

#[tokio::test]
async fn robots_redirects_are_followed() {
    let app = Router::new()
        .route(
            "/robots.txt",
            route(|| async {
                (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/real-robots.txt")]).into_response()
            }),
        )
        .route("/real-robots.txt", route(|| async { "User-agent: AnnoBot\nDisallow: /no\n" }))
        .route("/{*path}", route(|| async { "<p>page</p>" }));
    let server = TestServer::start(app).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));
    let error = fetcher.fetch(&respecting(&server.url("site.test", "/no/way"))).await.unwrap_err();
    assert_eq!(error, FetchError::RobotsDisallowed);
}

#[tokio::test]
async fn crawl_delay_spaces_requests_to_a_host() {
    let server = TestServer::start(site("User-agent: *\nCrawl-delay: 0.5\n")).await;
    let fetcher = fetcher(config(vec![server.allow("site.test")]));

    fetcher.fetch(&respecting(&server.url("site.test", "/one"))).await.expect("first");
    fetcher.fetch(&respecting(&server.url("site.test", "/two"))).await.expect("second");

    let first = server.hits_to("/one")[0].at;
    let second = server.hits_to("/two")[0].at;
    let gap = second - first;
    assert!(gap >= Duration::from_millis(480), "the second fetch waited only {gap:?}");
}

#[tokio::test]
async fn a_crawl_delay_longer_than_the_allowed_wait_is_host_busy_at_once() {
    let server = TestServer::start(site("User-agent: *\nCrawl-delay: 1\n")).await;
    let mut config = config(vec![server.allow("site.test")]);
    config.max_host_wait = Duration::from_millis(100);
    let fetcher = fetcher(config);

    fetcher.fetch(&respecting(&server.url("site.test", "/one"))).await.expect("first");
    let started = Instant::now();
    let error = fetcher.fetch(&respecting(&server.url("site.test", "/two"))).await.unwrap_err();
    assert!(matches!(error, FetchError::HostBusy { .. }), "{error:?}");
    assert_eq!((error.code(), error.status()), ("host_busy", StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(error.retry_after_secs(), Some(1));
    assert!(started.elapsed() < Duration::from_millis(100), "refused without waiting: {:?}", started.elapsed());
    assert!(server.hits_to("/two").is_empty());
}

/// A plain backtracking glob: `*` is any run, and the whole text must match.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => glob(rest, text) || (!text.is_empty() && glob(pattern, &text[1..])),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// RFC 9309 read literally: among the rules whose pattern matches the path
/// (a prefix, unless it ends in `$`), the longest wins and `Allow` wins a tie;
/// no rule matching allows.
fn reference(rules: &[(bool, String)], path: &str) -> bool {
    let matching = rules.iter().filter(|(_, pattern)| match pattern.strip_suffix('$') {
        Some(body) => glob(body.as_bytes(), path.as_bytes()),
        None => glob(format!("{pattern}*").as_bytes(), path.as_bytes()),
    });
    matching.max_by_key(|(allow, pattern)| (pattern.len(), *allow)).is_none_or(|(allow, _)| *allow)
}

/// The fast matcher (literal segments placed leftmost, linear in the path)
/// decides as the literal reading does, over generated rule sets and paths.
#[test]
fn rules_decide_as_the_specification_reads() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for _ in 0..3_000 {
        let rules: Vec<(bool, String)> = (0..1 + next(4))
            .map(|_| {
                let mut pattern = "/".to_owned();
                for _ in 0..1 + next(6) {
                    pattern.push(['a', 'b', '/', '*'][next(4) as usize]);
                }
                if next(3) == 0 {
                    pattern.push('$');
                }
                (next(2) == 0, pattern)
            })
            .collect();
        let lines: String =
            rules.iter().map(|(allow, p)| format!("{}: {p}\n", if *allow { "Allow" } else { "Disallow" })).collect();
        let text = format!("User-agent: *\n{lines}");
        let robots = Robots::parse(&text, "AnnoBot/1.0");
        for _ in 0..20 {
            let mut path = "/".to_owned();
            for _ in 0..next(8) {
                path.push(['a', 'b', '/'][next(3) as usize]);
            }
            assert_eq!(robots.allowed(&path), reference(&rules, &path), "{text}{path}");
        }
    }
}

/// Any text parses, and any path gets an answer, without a panic.
#[test]
fn any_text_parses() {
    let mut state = 0x9e37_79b9u64;
    let pieces = [
        "User-agent: *\n",
        "User-agent: AnnoBot\n",
        "Disallow: ",
        "Allow: ",
        "Crawl-delay: ",
        "Sitemap: ",
        "*",
        "$",
        "%",
        "%2",
        "%2F",
        "%zz",
        "/",
        "a",
        "\u{e9}",
        "\u{0}",
        "#",
        ":",
        "\r\n",
        "\n",
        " ",
        "9999999999999999999",
        "-1",
        "NaN",
        "\u{feff}",
    ];
    for _ in 0..2_000 {
        let mut text = String::new();
        for _ in 0..state % 60 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            text.push_str(pieces[(state >> 33) as usize % pieces.len()]);
        }
        let robots = Robots::parse(&text, "AnnoBot/1.0");
        for path in ["/", "/a", "/%2F", "/\u{e9}?q=1", "", "/robots.txt"] {
            let _ = robots.allowed(path);
        }
        let _ = (robots.crawl_delay(), robots.sitemaps());
    }
}
