//! Anno's extraction engine: a page's bytes and URL in; its main content as typed
//! blocks, Markdown and plain text, its metadata, and an outcome out. Pure: no
//! I/O, no async.

pub mod blocks;
pub mod budget;
pub mod content;
pub mod decode;
pub mod dom;
pub mod edges;
pub mod entities;
mod entities_table;
pub mod metadata;
pub mod model;
pub mod outcome;
pub mod parse;
pub mod render;
pub mod select;
pub mod tokens;

pub use metadata::Metadata;
pub use model::{Block, Span, Table};
pub use outcome::{Heuristics, Outcome};
pub use tokens::TokenCounts;

use serde::Serialize;

/// How to extract.
#[derive(Clone, Debug)]
pub struct Options {
    /// Only the main content (true), or the whole page as clean text.
    pub main_content: bool,
    pub links: bool,
    pub images: bool,
    /// Render the Markdown (`Document::markdown`); off, it is left empty, for
    /// callers that want only the text or the blocks (rendering Markdown costs
    /// about a sixth of the extraction).
    pub markdown: bool,
    /// Count o200k_base tokens of the raw HTML, the Markdown and the text
    /// (`Document::tokens`). Tokenizing the raw page costs many times the
    /// extraction itself (the tokenizer reads some 10 MB/s); turn it off when
    /// the counts are not wanted.
    pub count_tokens: bool,
    /// Keep only as many blocks as fit in this many tokens of Markdown.
    pub max_tokens: Option<usize>,
    /// Keep at most this many blocks.
    pub max_nodes: Option<usize>,
    /// Only these parts of the page (`select::parse("article, .post")`); main
    /// content detection, when on, then looks within them.
    pub include: Option<select::SelectorList>,
    /// Never these parts of the page.
    pub exclude: Option<select::SelectorList>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            main_content: true,
            links: true,
            images: true,
            markdown: true,
            count_tokens: true,
            max_tokens: None,
            max_nodes: None,
            include: None,
            exclude: None,
        }
    }
}

/// A page, extracted.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub url: String,
    /// What was found: an article, or why not.
    pub outcome: Outcome,
    /// How likely the content is the page's real article, in [0, 1]
    /// ([`outcome::assess`] gives the formula).
    pub confidence: f32,
    /// The signals the outcome and confidence were computed from.
    pub heuristics: Heuristics,
    pub metadata: Metadata,
    /// The main content in reading order.
    pub blocks: Vec<Block>,
    /// The blocks as GitHub-flavoured Markdown (links and images as asked;
    /// empty when `Options::markdown` is off).
    pub markdown: String,
    /// The blocks as plain text: blank lines between blocks, no URLs.
    pub text: String,
    /// Every table of the content, as data.
    pub tables: Vec<Table>,
    /// Token counts, when asked for (`None` too for a page that is not HTML).
    pub tokens: Option<TokenCounts>,
    /// Blocks were dropped to keep within `max_tokens` or `max_nodes`.
    pub truncated: bool,
}

impl Document {
    /// The main content as plain text: blocks separated by a blank line, no
    /// URLs. A copy of the `text` field, which can be borrowed or moved instead.
    pub fn text(&self) -> String {
        self.text.clone()
    }

    /// The blocks as GitHub-flavoured Markdown rendered with other options
    /// than the `markdown` field was (say, without links).
    pub fn markdown(&self, options: &render::RenderOptions) -> String {
        render::markdown(&self.blocks, options)
    }

    fn not_html(url: &str) -> Document {
        let assessment = outcome::Assessment::not_html();
        Document {
            url: url.to_owned(),
            outcome: assessment.outcome,
            confidence: assessment.confidence,
            heuristics: assessment.heuristics,
            metadata: Metadata::default(),
            blocks: Vec::new(),
            markdown: String::new(),
            text: String::new(),
            tables: Vec::new(),
            tokens: None,
            truncated: false,
        }
    }
}

/// Extracts a page given its bytes, its URL and, when known, its `Content-Type`.
pub fn extract(bytes: &[u8], url: &str, content_type: Option<&str>, options: &Options) -> Document {
    if !outcome::is_html(bytes, content_type) {
        return Document::not_html(url);
    }
    let decoded = decode::decode(bytes, content_type);
    let dom = parse::parse(decoded.text);
    let base = url::Url::parse(url).ok();
    let metadata = metadata::read(&dom, base.as_ref());
    let scope = content::Scope {
        exclude: options.exclude.as_ref().map(|e| e.select(&dom, dom::ROOT)).unwrap_or_default(),
        include: options.include.as_ref().map(|i| i.select(&dom, dom::ROOT)),
    };
    let analysis = content::analyse_in(&dom, &scope);
    let found = match (&scope.include, options.main_content) {
        (_, true) => content::main_content(&dom, &analysis),
        // Without main-content detection, what was included is the content.
        (Some(included), false) => included.clone(),
        (None, false) => Vec::new(),
    };
    // The container's share of the page's visible text, when one stood out.
    let content_share = (!found.is_empty()).then(|| {
        let chosen: u64 = found.iter().map(|r| u64::from(analysis.text[*r as usize])).sum();
        let page = u64::from(analysis.text[dom::ROOT as usize]);
        if page == 0 { 0.0 } else { (chosen as f64 / page as f64).min(1.0) as f32 }
    });
    let roots = if found.is_empty() {
        dom.find(dom::ROOT, dom::Tag::Body).map(|b| vec![b]).unwrap_or_else(|| vec![dom::ROOT])
    } else {
        found
    };
    let mut emitter = blocks::Emitter::new(&dom, &analysis, base);
    emitter.links = options.links;
    emitter.images = options.images;
    emitter.trim_edges = options.main_content;
    emitter.title = metadata.title.clone().unwrap_or_default();
    for root in roots {
        emitter.emit(root);
    }
    let mut blocks = emitter.finish();
    // Judged on everything found, before any cut to a budget.
    let assessment = outcome::assess(&dom, &metadata, &blocks, content_share);
    let render_options = render::RenderOptions { links: options.links, images: options.images };
    let limits = budget::Limits { max_tokens: options.max_tokens, max_nodes: options.max_nodes };
    let cut = budget::cut(&mut blocks, limits, &render_options);
    let text = render::text(&blocks);
    let markdown = match cut.markdown {
        Some(markdown) => markdown,
        None if options.markdown || options.count_tokens => render::markdown(&blocks, &render_options),
        None => String::new(),
    };
    let tables = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Table { table } => Some(table.clone()),
            _ => None,
        })
        .collect();
    let tokens = options.count_tokens.then(|| TokenCounts::measure(dom.source(), &markdown, &text));
    let markdown = if options.markdown { markdown } else { String::new() };
    Document {
        url: url.to_owned(),
        outcome: assessment.outcome,
        confidence: assessment.confidence,
        heuristics: assessment.heuristics,
        metadata,
        blocks,
        markdown,
        text,
        tables,
        tokens,
        truncated: cut.truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(html: &str) -> Document {
        extract(
            html.as_bytes(),
            "https://news.example.com/2024/05/harbour",
            Some("text/html; charset=utf-8"),
            &Options::default(),
        )
    }

    const PROSE: &[&str] = &[
        "The harbour authority confirmed on Tuesday that the northern breakwater, damaged in the winter storms, will be rebuilt over the next two summers at a cost the council puts at a little over forty million.",
        "Engineers who surveyed the structure in March found that the concrete armour units along its outer face had shifted by as much as a metre, leaving the core exposed to the swell in several places.",
        "Fishing crews have complained for months that the damaged wall lets waves into the inner basin, where smaller boats are moored, and two vessels were lost at their moorings in February.",
        "Work will begin in June, when the weather allows barges to sit alongside the wall, and will pause each winter; the authority expects the harbour to stay open throughout, with some berths closed.",
        "Residents asked at a public meeting whether the new wall would be higher, and the project's engineer said it would rise by half a metre to allow for rising sea levels over its design life.",
        "The council will publish the contract documents next week, and a second meeting is planned for the autumn, once the contractor has set out how deliveries will reach the site without using the harbour road.",
    ];

    fn article(extra: &str) -> String {
        let paragraphs: String = PROSE.iter().map(|p| format!("<p>{p}</p>\n")).collect();
        format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Breakwater to be rebuilt | Harbour News</title>
<meta property="og:type" content="article">
<meta property="article:published_time" content="2024-05-14T09:00:00Z">
<script type="application/ld+json">{{"@context":"https://schema.org","@type":"NewsArticle","headline":"Breakwater to be rebuilt","datePublished":"2024-05-14"}}</script>
<script>window.dataLayer = [];</script></head>
<body><header><nav><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a> <a href="/login">Sign in</a></nav></header>
<main><article class="story"><h1>Breakwater to be rebuilt</h1>
<div class="story-body">{paragraphs}{extra}</div></article></main>
<aside class="sidebar"><h2>Most read</h2><ul><li><a href="/a">Ferry timetable changes</a></li><li><a href="/b">Council tax rise</a></li></ul></aside>
<footer><p>© 2024 Harbour News. All rights reserved.</p></footer></body></html>"#
        )
    }

    #[test]
    fn an_article_is_ok_with_high_confidence() {
        let doc = run(&article(""));
        assert_eq!(doc.outcome, Outcome::Ok, "{:?}", doc.heuristics);
        assert!(doc.confidence > 0.7, "{} {:?}", doc.confidence, doc.heuristics);
        assert!(doc.heuristics.article_type && doc.heuristics.published && doc.heuristics.container_found);
        assert!(doc.heuristics.paragraphs >= 5 && doc.heuristics.main_words > 150);
        assert!(doc.text.starts_with("The harbour authority") && doc.text() == doc.text);
        assert!(doc.markdown.contains("The harbour authority") && doc.markdown == doc.markdown(&Default::default()));
        assert!(!doc.truncated);
    }

    #[test]
    fn an_article_that_mentions_a_captcha_stays_ok() {
        let extra = "<p>Online bookings for the public meeting briefly failed on Monday, when a captcha on the council's website rejected every attempt; the council said the problem was fixed within the hour.</p>";
        let doc = run(&article(extra));
        assert_eq!(doc.outcome, Outcome::Ok);
        assert!(doc.text.contains("captcha"));
    }

    #[test]
    fn a_bot_check_is_a_challenge_page() {
        let cloudflare = r#"<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta name="robots" content="noindex,nofollow">
<style>*{box-sizing:border-box;margin:0;padding:0}html{line-height:1.15}</style>
<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=8a1b2c3d4e5f6a7b"></script></head>
<body class="no-js"><div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">news.example.com</h1>
<h2 class="h2" id="challenge-running">Checking your browser before accessing news.example.com.</h2>
<div id="challenge-stage"></div><div id="challenge-spinner" class="spacer loading-spinner" style="display: none"></div>
<noscript><div id="challenge-error-title"><div class="h2"><span class="icon-wrapper"></span><span id="challenge-error-text">Enable JavaScript and cookies to continue</span></div></div></noscript>
<div id="challenge-body-text" class="core-msg spacer">news.example.com needs to review the security of your connection before proceeding.</div>
</div></div><div class="footer" role="contentinfo"><div class="footer-inner"><div class="clearfix diagnostic-wrapper"><div class="ray-id">Ray ID: <code>8a1b2c3d4e5f6a7b</code></div></div>
<div class="text-center" id="footer-text">Performance &amp; security by Cloudflare</div></div></div>
<script>(function(){window._cf_chl_opt={cvId: '3',cZone: "news.example.com",cType: 'managed'};}());</script></body></html>"#;
        let doc = run(cloudflare);
        assert_eq!(doc.outcome, Outcome::ChallengePage);
        assert!(doc.confidence <= 0.05);

        let hold = r#"<html><head><title>Access to this page has been denied</title></head><body>
<div id="px-captcha-wrapper"><h1>Before we continue...</h1><p>Press &amp; Hold to confirm you are a human (and not a bot).</p>
<div id="px-captcha"></div><p>Reference ID 5f2c1a70-8d1e-11ee-b9d1-0242ac120002</p></div></body></html>"#;
        assert_eq!(run(hold).outcome, Outcome::ChallengePage);

        let sorry = r#"<html><head><title>https://www.example.com/search?q=harbour</title></head><body>
<div style="max-width:400px;"><hr noshade size="1"><br>
<div style="font-size:13px;"><b>About this page</b><br><br>Our systems have detected unusual traffic from your computer network.
This page checks to see if it's really you sending the requests, and not a robot.<br><br>
<form id="captcha-form" method="post"><div class="g-recaptcha"></div></form></div>
<div style="font-size:13px;">IP address: 203.0.113.7<br>Time: 2024-05-14T09:00:00Z<br>URL: https://www.example.com/search?q=harbour</div></div></body></html>"#;
        assert_eq!(run(sorry).outcome, Outcome::ChallengePage);

        let akamai = r#"<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>
You don't have permission to access "http&#58;&#47;&#47;www&#46;example&#46;com&#47;" on this server.<P>
Reference&#32;&#35;18&#46;2f3c1002&#46;1715677200&#46;5a1b2c3</BODY></HTML>"#;
        assert_eq!(run(akamai).outcome, Outcome::ChallengePage);
    }

    #[test]
    fn a_login_wall_is_an_auth_wall() {
        let teaser = r#"<html><head><title>Inside the new budget | The Ledger</title>
<meta property="og:type" content="article"></head><body>
<header><a href="/">The Ledger</a> <a href="/subscribe">Subscribe</a></header>
<article><h1>Inside the new budget</h1>
<p>The chancellor's statement on Wednesday held few surprises for the markets, but the detail published afterwards tells a different story.</p>
<div class="paywall-prompt"><h2>Subscribe to continue reading</h2>
<p>This article is for subscribers. Already a subscriber? <a href="/login">Sign in</a></p>
<a class="button" href="/subscribe">See subscription options</a></div></article>
<footer><a href="/terms">Terms</a> <a href="/privacy">Privacy</a></footer></body></html>"#;
        let doc = run(teaser);
        assert_eq!(doc.outcome, Outcome::AuthWall);
        assert!(doc.confidence <= 0.15);

        let login = r#"<!doctype html><html><head><title>Sign in - Acme Workspace</title></head><body>
<main><div class="card"><h1>Welcome back</h1>
<form method="post" action="/session"><label for="email">Email</label><input id="email" type="email" name="email">
<label for="password">Password</label><input id="password" type="password" name="password">
<button type="submit">Sign in</button></form><p><a href="/reset">Forgot your password?</a></p>
<p>New here? <a href="/signup">Create an account</a></p></div></main></body></html>"#;
        assert_eq!(run(login).outcome, Outcome::AuthWall);
    }

    #[test]
    fn what_is_not_html_is_not_extracted() {
        let doc = extract(
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
            "https://example.com/report.pdf",
            Some("application/pdf"),
            &Options::default(),
        );
        assert_eq!((doc.outcome, doc.confidence, doc.blocks.len(), doc.tokens), (Outcome::NotHtml, 0.0, 0, None));
        let html_as_pdf =
            extract(article("").as_bytes(), "https://example.com/a", Some("application/pdf"), &Options::default());
        assert_eq!(html_as_pdf.outcome, Outcome::NotHtml);

        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0".to_vec();
        png.extend((0..2000u32).map(|i| (i * 31 % 251) as u8));
        assert_eq!(extract(&png, "https://example.com/x", None, &Options::default()).outcome, Outcome::NotHtml);
        let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        assert_eq!(
            extract(&noise, "https://example.com/x", Some("text/html"), &Options::default()).outcome,
            Outcome::NotHtml
        );
    }

    #[test]
    fn a_page_without_text_is_empty() {
        for page in [
            "",
            "<html><head><title></title></head><body></body></html>",
            "<body>\n  <div><img src=a.png></div>\n</body>",
        ] {
            let doc = run(page);
            assert_eq!(doc.outcome, Outcome::Empty, "{page:?}");
            assert_eq!(doc.confidence, 0.0);
        }
    }

    #[test]
    fn a_short_page_is_low_content() {
        let page = "<html><head><title>Notice</title></head><body><main><p>The office is closed on Monday for the public holiday and reopens on Tuesday at nine in the morning as usual, thank you.</p></main></body></html>";
        let doc = run(page);
        assert_eq!(doc.outcome, Outcome::LowContent);
        assert!(doc.heuristics.main_words >= 20 && doc.heuristics.main_words < 50);
        assert!(doc.confidence <= 0.3);
    }

    #[test]
    fn a_real_article_is_trusted_more_than_a_link_farm() {
        let items: String = (0..30)
            .map(|i| {
                format!(
                    "<p>Deal {i}: compare the latest offers from our partners for <a href=\"/deal/{i}\">cheap car insurance quotes</a> and <a href=\"/loan/{i}\">instant payday loans online</a>.</p>"
                )
            })
            .collect();
        let farm = format!(
            "<html><head><title>Top deals directory</title></head><body><h1>Top deals</h1><div class=\"deals\">{items}</div></body></html>"
        );
        let farm = run(&farm);
        let real = run(&article(""));
        assert!(farm.heuristics.link_density > 0.35 && farm.outcome == Outcome::Ok, "{:?}", farm.heuristics);
        assert!(
            real.confidence > farm.confidence + 0.2,
            "{} {:?} vs {} {:?}",
            real.confidence,
            real.heuristics,
            farm.confidence,
            farm.heuristics
        );
        assert!((0.0..=1.0).contains(&farm.confidence));
    }

    #[test]
    fn the_budget_cuts_the_document_at_a_block() {
        let full = run(&article(""));
        let all = tokens::count(&full.markdown);
        let budget = all / 2;
        let options = Options { max_tokens: Some(budget), ..Options::default() };
        let cut = extract(article("").as_bytes(), "https://news.example.com/a", None, &options);
        assert!(cut.truncated);
        assert!(tokens::count(&cut.markdown) <= budget);
        assert!(!cut.blocks.is_empty() && cut.blocks.len() < full.blocks.len());
        assert_eq!(cut.blocks[..], full.blocks[..cut.blocks.len()]);
        assert_eq!(cut.markdown, render::markdown(&cut.blocks, &Default::default()));
        assert_eq!(cut.text, render::text(&cut.blocks));
        assert_eq!(cut.tokens.as_ref().map(|t| t.markdown), Some(tokens::count(&cut.markdown)));
        // The outcome and confidence describe the page, not the cut.
        assert_eq!((cut.outcome, cut.confidence), (full.outcome, full.confidence));

        let two = extract(
            article("").as_bytes(),
            "https://news.example.com/a",
            None,
            &Options { max_nodes: Some(2), ..Options::default() },
        );
        assert_eq!((two.blocks.len(), two.truncated), (2, true));
    }

    #[test]
    fn token_counts_show_the_reduction() {
        let doc = run(&article(
            "<table><tr><th>Phase</th><th>Year</th></tr><tr><td>Outer wall</td><td>2024</td></tr></table>",
        ));
        let tokens = doc.tokens.as_ref().expect("counted by default");
        assert!(tokens.raw > tokens.markdown && tokens.markdown >= tokens.text && tokens.text > 0);
        assert!(tokens.reduction > 0.0 && tokens.reduction < 1.0, "{}", tokens.reduction);
        assert_eq!(doc.tables.len(), 1);
        assert_eq!(doc.tables[0].headers, ["Phase", "Year"]);
        let fast = extract(
            article("").as_bytes(),
            "https://a.example/",
            None,
            &Options { count_tokens: false, ..Options::default() },
        );
        assert!(fast.tokens.is_none() && !fast.markdown.is_empty());
        let text_only = extract(
            article("").as_bytes(),
            "https://a.example/",
            None,
            &Options { markdown: false, count_tokens: false, ..Options::default() },
        );
        assert!(text_only.markdown.is_empty() && text_only.text == fast.text && text_only.tokens.is_none());
        let counted = extract(
            article("").as_bytes(),
            "https://a.example/",
            None,
            &Options { markdown: false, ..Options::default() },
        );
        assert!(counted.markdown.is_empty());
        assert_eq!(counted.tokens.map(|t| t.markdown), Some(tokens::count(&fast.markdown)));
    }

    #[test]
    fn the_document_serialises_in_camel_case() {
        let json = serde_json::to_value(run(&article(""))).unwrap();
        assert_eq!(json["outcome"], "ok");
        assert!(json["heuristics"]["mainWords"].as_u64().unwrap() > 150);
        assert!(json["heuristics"]["scores"]["links"].as_f64().is_some());
        assert!(json["tokens"]["reduction"].as_f64().is_some());
        assert_eq!(json["truncated"], false);
    }

    #[test]
    fn selectors_include_and_exclude_compose_with_main_content() {
        let para = |t: &str| {
            format!(
                "<p>{t} This sentence makes the paragraph long enough to count as prose, with commas, clauses, and detail.</p>"
            )
        };
        let html = format!(
            "<html><body><nav>Home News</nav><article>{}<div class=\"ad\">{}</div>{}</article><section id=\"notes\">{}</section></body></html>",
            para("First."),
            para("Sponsored."),
            para("Last."),
            para("Notes.")
        );
        let url = "https://example.com/a";
        let plain = extract(html.as_bytes(), url, None, &Options::default());
        assert!(plain.text.contains("Sponsored."), "{}", plain.text);

        let exclude = Options { exclude: Some(select::parse(".ad").unwrap()), ..Options::default() };
        let doc = extract(html.as_bytes(), url, None, &exclude);
        assert!(
            doc.text.contains("First.") && doc.text.contains("Last.") && !doc.text.contains("Sponsored."),
            "{}",
            doc.text
        );

        let include = Options { include: Some(select::parse("#notes").unwrap()), ..Options::default() };
        let doc = extract(html.as_bytes(), url, None, &include);
        assert!(doc.text.contains("Notes.") && !doc.text.contains("First."), "{}", doc.text);

        let whole =
            Options { include: Some(select::parse("nav, #notes").unwrap()), main_content: false, ..Options::default() };
        let doc = extract(html.as_bytes(), url, None, &whole);
        assert!(
            doc.text.contains("Home News") && doc.text.contains("Notes.") && !doc.text.contains("First."),
            "{}",
            doc.text
        );
    }
}
