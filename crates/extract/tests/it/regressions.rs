//! Inputs that once broke the engine: each test says what went wrong and
//! asserts what the fix achieves.

use crate::timing::{alone, assert_within, fill};
use crate::{OPTIMISED, URL, assert_sane, extract_as, extract_with, run, size};
use anno_extract::dom::{ROOT, Tag};
use anno_extract::{Block, Options, extract, parse};
use std::time::{Duration, Instant};

const PROSE: &str = "The committee met on Tuesday, heard from residents, and voted to keep the library open.";

/// The start tag parser checked each attribute's name against every earlier
/// one on the element, to drop duplicates: `n` distinct names cost n²/2
/// comparisons, and 100,000 of them took about forty seconds in a release
/// build. An element keeps at most 65,535 attributes.
#[test]
fn a_hundred_thousand_distinct_attributes_parse_in_linear_time() {
    let n = 100_000;
    let attributes: String = (0..n).map(|i| format!(" data-a{i}=\"{i}\"")).collect();
    let html = format!("<article><p{attributes} class=\"last\">{PROSE}</p></article>");
    let start = Instant::now();
    let out = run(html.as_bytes());
    let took = start.elapsed();
    assert_sane(html.as_bytes(), &out);
    assert_eq!(out.text, PROSE);
    if OPTIMISED {
        assert!(took < Duration::from_secs(1), "{n} attributes took {took:?}");
    }
    let dom = parse::parse(html);
    let p = dom.find(ROOT, Tag::P).expect("the paragraph");
    assert_eq!(dom.attrs(p).len(), usize::from(u16::MAX));
    assert_eq!(dom.attr(p, "data-a0").as_deref(), Some("0"));
}

/// Token counts (on by default) run tiktoken-rs over the raw page, and its
/// pre-splitting pattern (fancy-regex, backtracking) gave up on a run of about
/// a million spaces or tabs: `CoreBPE::encode_ordinary` unwrapped the error
/// (`RuntimeError(StackOverflow)`) and `extract` panicked.
#[test]
fn a_megabyte_of_spaces_does_not_panic_the_token_count() {
    // The tokenizer is slow unoptimised: a debug build checks spaces alone,
    // just past the size that panicked.
    let runs: &[&str] = if OPTIMISED { &[" ", "\t", "\u{A0}"] } else { &[" "] };
    for space in runs {
        let run = space.repeat(size(2 << 20, 1_100_000) / space.len());
        let counted = std::panic::catch_unwind(|| anno_extract::tokens::count(&run));
        assert!(counted.is_ok(), "tokens::count panicked on {} bytes of {space:?}", run.len());
    }
    if OPTIMISED {
        let spaces = " ".repeat(1 << 20);
        let html = format!("<p>{PROSE}{spaces}{PROSE}</p><pre>{spaces}code</pre>");
        let out = extract_with(html.as_bytes(), Some("text/html"), &Options::default());
        assert!(out.doc.tokens.is_some());
    }
}

/// Table cells and captions (`blocks::data_table`), headings and `<pre>`
/// (`blocks::Emitter::enter`) take their text from `Dom::text_content`, which
/// concatenated every text node below: the source of a `<script>` or
/// `<style>` came out as the cell's, caption's, heading's or code block's
/// text, and an unclosed `<style>` in a cell turned the rest of the page,
/// markup and all, into text.
#[test]
fn script_and_style_text_stays_out_of_cells_headings_and_code() {
    let cases = [
        "<table><tr><td>cell<script>var secret = 1;</script></td><td>b<style>.secret{}</style></td></tr></table>",
        "<table><caption>Caption<script>var secret = 1;</script></caption><tr><th>a</th><th>b</th></tr></table>",
        "<h2>Heading<script>var secret = 1;</script><noscript>secret</noscript></h2>",
        "<pre>code<script>var secret = 1;</script><template><p>secret</p></template></pre>",
        "<table><tr><td>a</td><td><style>p{}</style></td></tr></table><a href=\"/secret\">x</a>",
    ];
    assert_no_secret(&cases);
}

/// The same for hidden elements (`hidden`, `display:none`, `aria-hidden`),
/// which `content::analyse` removes and `Dom::text_content` once still read.
#[test]
fn hidden_text_stays_out_of_cells_headings_and_code() {
    let cases = [
        "<table><tr><td>cell<span hidden>secret</span></td><td>b</td></tr></table>",
        "<table><caption>Caption <span style=\"display:none\">secret</span></caption><tr><th>a</th><th>b</th></tr></table>",
        "<h2>Heading <span style=\"display: none\">secret</span></h2>",
        "<pre>code<span aria-hidden=\"true\">secret</span></pre>",
    ];
    assert_no_secret(&cases);
}

fn assert_no_secret(cases: &[&str]) {
    let prose = format!("<p>{PROSE}</p>");
    for case in cases {
        let html = format!("<article>{prose}{case}{prose}</article>");
        let out = run(html.as_bytes());
        assert!(out.text.contains(PROSE), "{case}");
        assert!(!out.text.contains("secret"), "{case}: {:?}", out.text);
    }
}

/// A cell spanning many columns and many rows is copied into every slot of
/// its span: columns are capped at 1,000 but rows only at the table's row
/// count, so 4 KB of markup (a 100-byte cell, `colspan` and `rowspan` of
/// 100,000, and a thousand empty `<tr>`s) make a grid of a million copies,
/// 100 MB of text and as much Markdown; with a 10 KB cell, gigabytes (the
/// process is killed for want of memory).
#[test]
fn a_cell_spanning_rows_and_columns_does_not_multiply_the_output() {
    let cell = "x".repeat(100);
    let html = format!(
        "<table><tr><td colspan=100000 rowspan=100000>{cell}</td><td>y</td></tr>{}</table>",
        "<tr>".repeat(1000)
    );
    let out = extract_as(html.as_bytes(), None, false);
    // The bound a single row already has: a cell repeated across at most
    // 1,000 columns.
    assert!(
        out.text.len() <= 1000 * html.len(),
        "{} bytes of text from {} bytes of markup",
        out.text.len(),
        html.len()
    );
}

/// Each `rowspan` leaves an entry in a list of pending cells that is never
/// pruned, and every later row walks the whole list: a table whose rows each
/// hold a `rowspan=2` cell is quadratic in its rows. 10,000 rows take 0.1 s in
/// a release build, 40,000 rows 2.3 s, 100,000 rows (3.9 MB) over thirty.
#[test]
fn rowspans_are_resolved_in_linear_time() {
    let rows = size(100_000, 20_000);
    let html = format!("<table>{}</table>", "<tr><td rowspan=2>a</td><td>b</td></tr>".repeat(rows));
    let start = Instant::now();
    let out = run(html.as_bytes());
    let took = start.elapsed();
    assert_sane(html.as_bytes(), &out);
    let table = out.doc.blocks.iter().find_map(|b| match b {
        Block::Table { table } => Some(table),
        _ => None,
    });
    assert!(table.is_some_and(|t| t.rows.len() + 1 >= rows), "every row is kept");
    if OPTIMISED {
        assert!(took < Duration::from_secs(1), "{rows} rows took {took:?}");
    }
}

/// Markdown indents a nested list item by the width of every marker above it,
/// and lists nest up to 255 deep: under 255 ordered lists that start at
/// 999,999,999 each item of five bytes (`<li>x`) was written after 2.8 KB of
/// indentation (56 KB of markup gave 28 MB of Markdown). Markdown shows six
/// levels, so an item costs at most 6 × 11 columns and its own marker.
#[test]
fn deeply_nested_lists_do_not_multiply_the_markdown() {
    let html = format!("<article>{}{}</article>", "<ol start=999999999><li>a".repeat(255), "<li>x".repeat(10_000));
    let doc = extract(html.as_bytes(), URL, None, &Options { main_content: false, ..Options::default() });
    let markdown = doc.markdown(&Default::default());
    assert!(markdown.len() <= 16 * html.len() + 1024, "{} bytes of Markdown from {}", markdown.len(), html.len());
}

/// `outcome::has_markup` looks for `<` followed by a letter in the raw bytes;
/// in UTF-16 every `<` is followed by a zero byte, so a UTF-16 page with a
/// byte order mark and no `Content-Type` (or a generic one such as
/// `application/octet-stream`) is `NotHtml` and yields nothing.
#[test]
fn a_utf16_page_without_a_content_type_is_html() {
    let html = "<html><body><article><p>Ein Absatz, auf Deutsch, mit Umlauten: äöü ß.</p></article></body></html>";
    let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(html.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    for content_type in [None, Some("application/octet-stream")] {
        let out = extract_as(&le, content_type, true);
        assert_eq!(out.text, "Ein Absatz, auf Deutsch, mit Umlauten: äöü ß.", "{content_type:?}");
    }
}

/// Every table, when the emitter reaches it, is offered to
/// `blocks::data_table`, which scanned the table's whole subtree for blocks of
/// prose; nested tables (capped at 512 deep) scanned the same nodes again at
/// every level: ten megabytes of `<table><tr><td>` took 2.7 s.
#[test]
fn ten_megabytes_of_nested_tables_extract_as_fast_as_a_real_page() {
    let _alone = alone();
    let bytes = size(10 << 20, 128 << 10);
    assert_within(Duration::from_secs(1), &[("nested tables", fill("<table><tr><td>", bytes))]);
}
