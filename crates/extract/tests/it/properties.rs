//! Properties that hold for every input, checked over inputs drawn from a
//! fixed-seed generator: arbitrary bytes, mutations of a real page, and
//! generated tag soups never make extraction panic or its output outgrow its
//! input; markup never leaks into the plain text; and a page built from known
//! paragraphs gives back every one of them, word for word.
//!
//! A token budget (`max_tokens`) is never exceeded and cuts between blocks.

use crate::{Extracted, Lcg, assert_sane, extract_as, extract_with, past_the_sniffer, size};
use anno_extract::render::{self, RenderOptions};
use anno_extract::{Options, tokens};

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some("text/html"),
    Some("text/html; charset=utf-8"),
    Some("text/html; charset=windows-1252"),
    Some("text/html; charset=shift_jis"),
    Some("text/html; charset=utf-16le"),
    Some("application/octet-stream; charset=\"gb18030\""),
    Some("garbage;;;=;charset"),
];

/// Bytes HTML is made of, to draw noise that reaches past the tokenizer.
const HTMLISH: &[u8] = b"<<<>>>///!!?--==\"\"''&&&;;##xX0123456789abcdefpPaAdivtrlmscupqhbr \n\t\r\x00\xc3\xa9\xff";

fn noise(lcg: &mut Lcg, len: usize, kind: usize) -> Vec<u8> {
    match kind {
        0 => lcg.bytes(len),
        1 => (0..len).map(|_| lcg.pick(HTMLISH)).collect(),
        _ => (0..len).map(|_| if lcg.chance(10) { (lcg.next_u64() >> 3) as u8 } else { lcg.pick(HTMLISH) }).collect(),
    }
}

fn check_both(bytes: &[u8], content_type: Option<&str>) -> [Extracted; 2] {
    [true, false].map(|main_content| {
        let out = extract_as(bytes, content_type, main_content);
        assert_sane(bytes, &out);
        out
    })
}

#[test]
fn arbitrary_bytes_never_panic_and_stay_bounded() {
    let mut lcg = Lcg::new(0xB17E5);
    for case in 0..size(4_000, 600) {
        let len = if lcg.chance(5) { lcg.below(50_000) } else { lcg.below(800) };
        let bytes = noise(&mut lcg, len, case % 3);
        let content_type = lcg.pick(&CONTENT_TYPES);
        check_both(&bytes, content_type);
        // The same behind markup, so that the parser sees it.
        check_both(&past_the_sniffer(&bytes), content_type);
    }
}

/// A page with a bit of everything extraction reads.
const SEED_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Harbour reopens after storm | Coast Times</title>
<meta property="og:title" content="Harbour reopens after storm"><link rel="canonical" href="/2024/harbour">
<script type="application/ld+json">{"@type":"NewsArticle","headline":"Harbour reopens","author":{"name":"A. Writer"}}</script>
<style>.ad{display:none}</style><script>if (a < b && c) { document.write("<p>x</p>"); }</script></head>
<body><header><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li></ul></nav></header>
<main><article class="post-content"><h1>Harbour reopens after storm</h1>
<p class="byline">By <a href="/authors/a">A. Writer</a>, <time datetime="2024-05-17">17 May</time></p>
<p>The harbour reopened on Friday, three days after the storm, and the first ferries left at dawn &mdash; <em>on time</em>.</p>
<p>Crews cleared <strong>forty tonnes</strong> of debris, repaired two cranes, and checked every mooring &amp; ladder.</p>
<ul><li>Ferries: <a href="https://ferries.example/timetable?day=fri&amp;dir=out">timetable</a></li><li>Cargo: from Monday</li></ul>
<ol start="3"><li>Step three</li><li>Step four<ol><li>nested</li></ol></li></ol>
<blockquote><p>&ldquo;We worked through the night,&rdquo; said the harbour master.</p></blockquote>
<pre><code class="language-rust">fn main() { println!("<ok>"); }</code></pre>
<table><caption>Arrivals</caption><thead><tr><th>Ship</th><th>Time</th></tr></thead>
<tbody><tr><td>Aurora</td><td>06:10</td></tr><tr><td colspan="2">Delayed: Boreas</td></tr><tr><td rowspan="2">Cass</td><td>07:00</td></tr><tr><td>07:30</td></tr></tbody></table>
<figure><img src="/img/harbour.jpg" alt="The harbour at dawn" title="Dawn"><figcaption>Photo: staff</figcaption></figure>
<p>Caf&eacute; owners said trade was back to normal &#8212; &#x1F600; &nbsp; &copy 2024 &unknown; &#xD800; &#1114112;.</p>
</article><aside class="related"><a href="/a">Related one</a><a href="/b">Related two</a></aside></main>
<footer><p>&copy; Coast Times</p></footer><!-- trailing comment --></body></html>"#;

#[test]
fn mutations_of_a_real_page_never_panic_and_stay_bounded() {
    let seed = SEED_PAGE.as_bytes();
    let whole = check_both(seed, None);
    assert!(whole[0].text.contains("The harbour reopened on Friday"));
    let mut lcg = Lcg::new(0x5EED);
    for _ in 0..size(3_000, 500) {
        let mut bytes = seed.to_vec();
        for _ in 0..1 + lcg.below(8) {
            let at = lcg.below(bytes.len() + 1);
            match lcg.below(6) {
                // Flip a byte.
                0 if at < bytes.len() => bytes[at] ^= 1 << lcg.below(8),
                // Insert noise.
                1 => {
                    let len = lcg.below(16);
                    let kind = lcg.below(3);
                    let inserted = noise(&mut lcg, len, kind);
                    bytes.splice(at..at, inserted);
                }
                // Delete a range.
                2 => {
                    let end = (at + lcg.below(64)).min(bytes.len());
                    bytes.drain(at..end);
                }
                // Repeat a range many times.
                3 => {
                    let end = (at + lcg.below(40)).min(bytes.len());
                    let range = bytes[at..end].repeat(1 + lcg.below(200));
                    bytes.splice(at..at, range);
                }
                // Cut the page short.
                4 => bytes.truncate(at),
                // Swap a `<` or `>` for the other, or a quote for a space.
                _ => {
                    if let Some(b) = bytes.get_mut(at) {
                        *b = match *b {
                            b'<' => b'>',
                            b'>' => b'<',
                            b'"' | b'\'' => b' ',
                            other => other,
                        };
                    }
                }
            }
        }
        let content_type = lcg.pick(&CONTENT_TYPES);
        check_both(&bytes, content_type);
    }
}

/// Pieces of tag soup. None of them shows markup as text by itself: no
/// `<xmp>`, `<plaintext>` or `<textarea>`, no `&lt;`.
const FRAGMENTS: &[&str] = &[
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<div class=\"content\">",
    "<div class=\"sidebar nav\">",
    "<span>",
    "</span>",
    "<b>",
    "</b>",
    "<i>",
    "</i>",
    "<em>",
    "<strong>",
    "</strong>",
    "<code>",
    "</code>",
    "<pre>",
    "</pre>",
    "<a href=\"/x\">",
    "<a href=\"https://other.example/y?q=1&amp;r=2\">",
    "</a>",
    "<a href=\"javascript:alert(1)\">",
    "<a href='#top'>",
    "<a href=//cdn.example/z>",
    "<ul>",
    "<ol start=3>",
    "<li>",
    "</li>",
    "</ul>",
    "</ol>",
    "<blockquote>",
    "</blockquote>",
    "<h1>",
    "</h1>",
    "<h2>",
    "<h3>",
    "</h2>",
    "<table>",
    "<tr>",
    "<td>",
    "<th>",
    "</td>",
    "</tr>",
    "</table>",
    "<td colspan=3>",
    "<td rowspan=2>",
    "<thead>",
    "<tbody>",
    "<caption>",
    "<br>",
    "<hr>",
    "<img src=\"/i.png\" alt=\"alt text\">",
    "<img src=x>",
    "<!-- c -->",
    "<!--",
    "-->",
    "<!DOCTYPE html>",
    "<?xml?>",
    "<![CDATA[x]]>",
    "<svg><path/></svg>",
    "<math>",
    "<template>",
    "</template>",
    "<select><option>o</select>",
    "<html>",
    "<head>",
    "<title>T</title>",
    "<body>",
    "</body>",
    "</html>",
    "<meta charset=utf-8>",
    "<article>",
    "</article>",
    "<main>",
    "<nav>",
    "</nav>",
    "<footer>",
    "<aside>",
    "<header>",
    "<",
    ">",
    "</",
    "/>",
    "=",
    "\"",
    "'",
    "&",
    "&amp;",
    "&#x1F600;",
    "&#0;",
    "&nbsp;",
    "&copy",
    "&#",
    " ",
    "\n",
    "\t",
    "word",
    "Words, commas, and sentences. ",
    "é",
    "日本語",
    "Привет",
    "\u{0}",
    "\u{FFFD}",
    "\u{200B}",
    "1.",
    "# ",
    "* ",
    "- ",
    "`",
    "[x](y)",
    "|",
    "\\",
    "<p hidden>",
    "<div style=\"display: none\">",
    "<div aria-hidden=true>",
    "<p title=\"",
    "<p title='",
    "<x-y>",
    "</x-y>",
    "<div class=\"comments\">",
    "<li><a href=\"/n\">nav link</a></li>",
    "<p>A long paragraph, with commas, that reads like an article and goes on for a while. </p>",
];

/// Elements whose content is raw text: never shown, so never in the text.
const RAW_TEXT: &[&str] = &[
    "<script>var s = '<p>';</script>",
    "<script>",
    "</script>",
    "<style>p{}</style>",
    "<style>",
    "<noscript>",
    "</noscript>",
];

/// What plain text never holds when the page does not spell it out as text:
/// tags, comments, attributes. (A literal `<` next to other text can make
/// `<word` or `</>` legitimately, so only what no fragment spells out as text
/// is looked for.)
fn assert_no_markup(text: &str, input: &str) {
    const MARKUP: &[&str] = &[
        "href=",
        "src=",
        "class=",
        "style=",
        "<script",
        "<style",
        "<!--",
        "<?xml",
        "<div",
        "<p>",
        "<p ",
        "<a ",
        "<td",
        "<table",
        "<span",
        "<img",
        "<li>",
        "<meta",
        "<title",
        "<noscript",
        "<svg",
        "<option",
    ];
    for needle in MARKUP {
        assert!(!text.contains(needle), "{needle:?} in the text {text:?} of {input:?}");
    }
}

fn soup(lcg: &mut Lcg, fragments: &[&[&str]]) -> String {
    let count = if lcg.chance(5) { lcg.below(3_000) } else { lcg.below(120) };
    (0..count)
        .map(|_| {
            let set = lcg.pick(fragments);
            lcg.pick(set)
        })
        .collect()
}

fn check_soup(soup: &str) {
    let [main, whole] = check_both(soup.as_bytes(), None);
    for out in [&main, &whole] {
        assert_no_markup(&out.text, soup);
        assert!(!out.markdown.contains("<script"), "{soup:?}");
    }
    // Extraction is a function of its input, and its result serialises.
    assert_eq!(extract_as(soup.as_bytes(), None, true).doc.blocks, main.doc.blocks);
    let json = serde_json::to_value(&main.doc).expect("a document serialises");
    assert!(json["blocks"].is_array());
}

#[test]
fn tag_soup_never_leaks_markup_into_text() {
    let mut lcg = Lcg::new(0x50_0B);
    for _ in 0..size(4_000, 600) {
        check_soup(&soup(&mut lcg, &[FRAGMENTS, RAW_TEXT]));
    }
}

/// Words to build paragraphs from: plain, accented, other scripts, and ones
/// with the characters HTML and Markdown treat specially.
const WORDS: &[&str] = &[
    "the",
    "council",
    "river",
    "budget",
    "harbour",
    "voted",
    "on",
    "Tuesday",
    "residents",
    "library",
    "naïve",
    "café",
    "résumé",
    "Москва",
    "библиотека",
    "서울",
    "지하철",
    "東京",
    "新聞",
    "€5",
    "3.5%",
    "don't",
    "e-mail",
    "C++",
    "a_b",
    "AT&T",
    "x<y",
    "b>a",
    "\"quoted\"",
    "'single'",
    "*star*",
    "#hash",
    "[bracket]",
    "(paren)",
    "back\\slash",
    "`tick`",
    "1.",
    "-",
    "+",
    "|pipe|",
    "~tilde~",
    "https://example.org/path",
    "ünïcödé",
    "😀",
];

/// A word as a page might write it: its specials escaped one way or another.
fn written(lcg: &mut Lcg, word: &str) -> String {
    let mut out = String::new();
    for c in word.chars() {
        let forms: &[&str] = match c {
            '&' => &["&amp;", "&#38;", "&#x26;", "&AMP;"],
            '<' => &["&lt;", "&#60;", "&#x3C;", "&LT"],
            '>' => &["&gt;", ">", "&#62;"],
            '"' => &["&quot;", "\"", "&#34;"],
            '\'' => &["&apos;", "'", "&#39;"],
            'é' => &["&eacute;", "é", "&#233;", "&#xE9;"],
            '€' => &["&euro;", "€", "&#8364;"],
            _ => &[],
        };
        if forms.is_empty() {
            out.push(c);
        } else {
            out.push_str(lcg.pick(forms));
        }
    }
    out
}

/// A word with inline markup around it, or none.
fn wrapped(lcg: &mut Lcg, word: String, links: &mut usize) -> String {
    match lcg.below(14) {
        0 => format!("<b>{word}</b>"),
        1 => format!("<em>{word}</em>"),
        2 => format!("<strong><i>{word}</i></strong>"),
        3 => format!("<span class=\"hl\">{word}</span>"),
        4 => format!("<code>{word}</code>"),
        5 if *links < 2 => {
            *links += 1;
            format!("<a href=\"/wiki/{}\">{word}</a>", lcg.below(1000))
        }
        6 => format!("<mark>{word}</mark>"),
        _ => word,
    }
}

const SPACES: &[&str] = &[" ", " ", " ", "\n", "\t", "  \n    ", "\r\n", " <!-- note --> ", "<br>"];

/// A news page around paragraphs of random words, written with random inline
/// markup, whitespace and character references; and the paragraphs' words.
fn article_page(lcg: &mut Lcg, case: usize) -> (String, Vec<Vec<&'static str>>) {
    let paragraphs: Vec<Vec<&str>> =
        (0..3 + lcg.below(10)).map(|_| (0..12 + lcg.below(50)).map(|_| lcg.pick(WORDS)).collect()).collect();
    let mut article = String::new();
    for words in &paragraphs {
        let mut links = 0;
        article.push_str(if lcg.chance(20) { "\n<p class=\"lead\">" } else { "\n<p>" });
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                article.push_str(lcg.pick(SPACES));
            }
            let word = written(lcg, word);
            article.push_str(&wrapped(lcg, word, &mut links));
        }
        if lcg.chance(70) {
            article.push_str("</p>");
        }
        if lcg.chance(15) {
            article.push_str("<script>var ad = '<p>advert</p>';</script><!-- <p>commented out</p> -->");
        }
    }
    let nav: String = (0..8).map(|i| format!("<li><a href=\"/section/{i}\">Section {i} navlink</a></li>")).collect();
    let page = format!(
        "<!DOCTYPE html><html><head><title>Case {case}</title><style>p {{ margin: 0 }}</style></head>\
         <body><header><nav><ul>{nav}</ul></nav></header><main><article>{article}</article>\
         <aside class=\"sidebar\"><h3>Most read</h3><ul>{nav}</ul></aside></main>\
         <footer><p>Footer text, contact us, and the legal notice.</p></footer></body></html>"
    );
    (page, paragraphs)
}

#[test]
fn every_paragraph_comes_back_word_for_word() {
    let mut lcg = Lcg::new(0xA27);
    for case in 0..size(400, 80) {
        let (page, paragraphs) = article_page(&mut lcg, case);
        let expected: Vec<String> = paragraphs.iter().map(|words| words.join(" ")).collect();
        let [main, whole] = check_both(page.as_bytes(), None);
        for out in [&main, &whole] {
            let mut from = 0;
            for paragraph in &expected {
                let Some(at) = out.text[from..].find(paragraph.as_str()) else {
                    panic!("case {case}: {paragraph:?} not in order in {:?}\nfrom {page}", out.text)
                };
                from += at + paragraph.len();
            }
            assert!(!out.text.contains("advert") && !out.text.contains("commented out"), "case {case}");
        }
        assert!(!main.text.contains("navlink") && !main.text.contains("Footer text"), "case {case}: {}", main.text);
        // Markdown escapes, but every plain word is there as written.
        for word in paragraphs.iter().flatten().filter(|w| w.chars().all(char::is_alphanumeric)) {
            assert!(main.markdown.contains(word), "case {case}: {word} in the markdown");
        }
    }
}

#[test]
fn the_token_budget_is_never_exceeded_and_cuts_between_blocks() {
    let mut lcg = Lcg::new(0x70C);
    for case in 0..size(60, 15) {
        let (page, _) = article_page(&mut lcg, case);
        let options = Options { count_tokens: false, ..Options::default() };
        let full = extract_with(page.as_bytes(), None, &options);
        let all = tokens::count(&full.markdown);
        assert!(!full.doc.truncated);
        for budget in [0, 1, 7, lcg.below(all + 1), all.saturating_sub(1), all, all + 10] {
            let limited = Options { max_tokens: Some(budget), ..options.clone() };
            let cut = extract_with(page.as_bytes(), None, &limited);
            let kept = cut.doc.blocks.len();
            assert!(tokens::count(&cut.markdown) <= budget, "case {case}: over a budget of {budget}");
            assert_eq!(cut.doc.blocks[..], full.doc.blocks[..kept], "case {case}: a prefix, cut between blocks");
            assert_eq!(cut.doc.truncated, kept < full.doc.blocks.len(), "case {case}, budget {budget}");
            assert_eq!(cut.markdown, render::markdown(&cut.doc.blocks, &RenderOptions::default()));
            assert_eq!(cut.text, render::text(&cut.doc.blocks));
            // Nearly as much as fits: counted block by block, the estimate may
            // be a token or two over the whole (as budget.rs allows).
            if kept < full.doc.blocks.len() {
                let more = tokens::count(&render::markdown(&full.doc.blocks[..=kept], &RenderOptions::default()));
                assert!(
                    more > budget.saturating_sub(2),
                    "case {case}: {kept} blocks kept, {} fit in {budget}",
                    kept + 1
                );
            }
            if budget > all + 2 {
                assert_eq!(&cut.markdown, &full.markdown, "case {case}: {all} tokens fit in {budget}");
            }
            // The outcome describes the page, not the cut.
            assert_eq!((cut.doc.outcome, cut.doc.confidence), (full.doc.outcome, full.doc.confidence));
        }
        let nodes = lcg.below(full.doc.blocks.len() + 2);
        let cut = extract_with(page.as_bytes(), None, &Options { max_nodes: Some(nodes), ..options.clone() });
        assert_eq!(cut.doc.blocks[..], full.doc.blocks[..nodes.min(full.doc.blocks.len())]);
    }
}

#[test]
fn token_counts_on_hostile_text_are_bounded() {
    // Long runs the tokenizer merges byte pair by byte pair, and noise.
    let n = size(1 << 20, 64 << 10);
    let mut lcg = Lcg::new(0x70C2);
    let noise: String = (0..n / 4).map(|_| char::from_u32(lcg.next_u64() as u32 % 0x3_0000).unwrap_or('?')).collect();
    let inputs = [
        "x".repeat(n),
        "😀".repeat(n / 4),
        "&amp;".repeat(n / 5),
        "ab".repeat(n / 2),
        // A million spaces in a row make the tokenizer panic (see
        // `regressions`); half as many do not.
        " ".repeat(n / 2) + "word",
        "\n".repeat(n) + "word",
        noise,
    ];
    for body in inputs {
        let html = format!("<p>Start {body} end</p>");
        let out = extract_with(html.as_bytes(), Some("text/html"), &Options::default());
        assert_sane(html.as_bytes(), &out);
        let counts = out.doc.tokens.expect("counted");
        assert!(counts.raw <= html.len() && counts.text <= out.text.len() + 1, "{counts:?}");
        assert!(counts.reduction.is_finite() && counts.reduction <= 1.0, "{counts:?}");
    }
}
