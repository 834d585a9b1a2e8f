//! Pages built to break a parser or an extractor: each finishes, keeps what it
//! builds proportional to its input and returns a sane document.

use crate::{Lcg, assert_linear_tree, assert_sane, extract_as, past_the_sniffer, run, sane, sane_both, size};
use anno_extract::{Block, Outcome, Span};

/// A sentence long enough, with commas, to be scored as content.
const PROSE: &str = "The committee met on Tuesday, heard from residents, and voted to keep the library open.";

fn spans(block: &Block) -> &[Span] {
    match block {
        Block::Heading { spans, .. }
        | Block::Paragraph { spans }
        | Block::ListItem { spans, .. }
        | Block::Quote { spans } => spans,
        _ => &[],
    }
}

// ---------------------------------------------------------------------------
// Depth

/// `open` repeated `n` times around the prose, then `close` as many times, then
/// a paragraph after it all.
fn nested(open: &str, close: &str, n: usize) -> String {
    format!("<body>{}<p>{PROSE}</p>{}<p>And after the nesting, {PROSE}</p></body>", open.repeat(n), close.repeat(n))
}

/// How deep: a hundred thousand in an optimised build. The parser caps depth
/// at 512 and scans up to that many open elements per tag, so a debug build
/// gets the same shape at a fifth of the size.
fn depth() -> usize {
    size(100_000, 20_000)
}

fn assert_nested(open: &str, close: &str) {
    let html = nested(open, close, depth());
    let [main, whole] = sane_both(html.as_bytes());
    assert!(main.text.contains(PROSE), "{open}: {:?}", &main.text[..main.text.len().min(200)]);
    assert!(whole.text.contains(PROSE), "{open}, whole page");
}

#[test]
fn a_hundred_thousand_nested_divs() {
    let html = nested("<div>", "</div>", depth());
    assert_linear_tree(&html);
    let [main, whole] = sane_both(html.as_bytes());
    assert!(main.text.starts_with(PROSE) && whole.text.contains(PROSE));
    assert!(whole.doc.blocks.len() == 2, "{} blocks", whole.doc.blocks.len());
    // Unclosed, and with the prose at the very bottom.
    let html = "<div>".repeat(depth()) + PROSE;
    let out = sane(html.as_bytes());
    assert_eq!(out.text, PROSE);
}

#[test]
fn a_hundred_thousand_nested_inline_elements() {
    assert_nested("<b>", "</b>");
    assert_nested("<span class=x>", "</span>");
    assert_nested("<em><strong>", "</strong></em>");
    assert_nested("<x-custom>", "</x-custom>");
    // Bold all the way down: the prose is strong, and emitted once.
    let html = "<b>".repeat(depth()) + PROSE;
    let out = sane(html.as_bytes());
    assert_eq!(out.text, PROSE);
    assert!(out.doc.blocks.iter().flat_map(spans).all(|s| s.strong));
    assert_eq!(out.markdown.trim(), format!("**{PROSE}**"));
}

#[test]
fn a_hundred_thousand_nested_tables() {
    assert_nested("<table>", "</table>");
    assert_nested("<table><tr><td>", "</td></tr></table>");
    let html = "<table><tr><td>".repeat(depth()) + PROSE;
    let out = sane(html.as_bytes());
    assert!(out.text.contains(PROSE));
}

#[test]
fn a_hundred_thousand_nested_list_items() {
    assert_nested("<ul><li>", "</li></ul>");
    assert_nested("<ol><li>", "</li></ol>");
    // Bare `<li>`s close each other: siblings, not nesting.
    assert_nested("<li>", "</li>");
    let html = format!("<ul>{}</ul>", "<li>item ".repeat(depth()));
    let out = sane(html.as_bytes());
    assert_eq!(out.doc.blocks.len(), depth());
    assert!(out.doc.blocks.iter().all(|b| matches!(b, Block::ListItem { depth: 0, .. })));
}

#[test]
fn a_hundred_thousand_nested_links() {
    assert_nested("<a href=/n>", "</a>");
    // A link opening inside a link closes it: a hundred thousand siblings.
    let html: String = (0..depth()).map(|i| format!("<a href=/p/{i}>")).collect::<String>() + PROSE;
    let out = sane(html.as_bytes());
    assert!(out.text.is_empty() || out.text.contains(PROSE));
}

#[test]
fn a_hundred_thousand_unmatched_end_tags() {
    let html = format!("<p>{PROSE}{}</p>", "</div></span></x-y></table></li>".repeat(100_000 / 5));
    let out = sane(html.as_bytes());
    assert_eq!(out.text, PROSE);
}

#[test]
fn inline_formatting_misnested_across_block_boundaries() {
    // Formatting opened in one block and closed in another, a hundred
    // thousand layers deep in all.
    let mut html = String::from("<body><article>");
    let rounds = size(20_000, 5_000);
    for i in 0..rounds {
        html.push_str(&format!(
            "<b><i><u><p>Paragraph {i} starts, bold <em>and</b> italic</i></p><div>then {i} ends</u></em></div>"
        ));
    }
    html.push_str("</article></body>");
    let out = sane(html.as_bytes());
    // The parser does not re-parent misnested formatting, so `</b>` ends the
    // paragraph early; no text is lost and its order is kept.
    let flat = collapse(&out.text);
    for i in [0, rounds / 2, rounds - 1] {
        assert!(flat.contains(&format!("Paragraph {i} starts, bold and italic then {i} ends")), "round {i}");
    }
    // The same without ever closing anything.
    let rounds = size(100_000, 20_000);
    let html = format!("<article>{}</article>", "<b><p>bold <i><div>text, ".repeat(rounds));
    let out = sane(html.as_bytes());
    assert_eq!(collapse(&out.text), "bold text, ".repeat(rounds).trim_end());
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------
// Size

#[test]
fn a_five_megabyte_line_of_text() {
    let n = size(5 << 20, 1 << 20);
    // One text node of words.
    let words = "lorem ipsum, dolor sit amet ".repeat(n / 28);
    let html = format!("<html><body><article><p>{words}</p></article></body></html>");
    let out = sane(html.as_bytes());
    assert_eq!(out.text, words.trim());
    // One word, no spaces at all.
    let word = "x".repeat(n);
    let html = format!("<p>{word}</p>");
    let out = sane(html.as_bytes());
    assert_eq!(out.text.len(), n);
    // No markup at all: not HTML, unless the header says it is.
    assert_eq!(sane(word.as_bytes()).doc.outcome, Outcome::NotHtml);
    let out = extract_as(word.as_bytes(), Some("text/html"), true);
    assert_sane(word.as_bytes(), &out);
    assert_eq!(out.text.len(), n);
}

#[test]
fn a_five_megabyte_attribute_value() {
    let n = size(5 << 20, 1 << 20);
    let value = "v".repeat(n);
    for attribute in ["title", "class", "id", "style", "data-x", "href", "src", "alt", "content"] {
        for quote in ["\"", "'", ""] {
            let html = format!("<article><p {attribute}={quote}{value}{quote}>{PROSE}</p></article>");
            let out = sane(html.as_bytes());
            assert!(out.text.len() <= PROSE.len(), "{attribute}: the value is not text");
        }
    }
    // On links and images, where values become URLs and alt text.
    let html = format!(
        "<article><p>{PROSE} <a href=\"/{value}\">a link</a></p><img src=\"/{value}\" alt=\"{value}\"></article>"
    );
    let out = sane(html.as_bytes());
    assert!(out.text.starts_with(PROSE));
    // In the head: a title, a description, JSON-LD.
    let html = format!(
        "<head><title>{value}</title><meta name=description content=\"{value}\">\
         <script type=application/ld+json>{{\"@type\":\"Article\",\"headline\":\"{value}\"}}</script></head>\
         <body><p>{PROSE}</p></body>"
    );
    let out = sane(html.as_bytes());
    assert_eq!(out.text, PROSE);
}

#[test]
fn two_hundred_thousand_paragraphs() {
    let n = size(200_000, 20_000);
    let paragraph = |i: usize| format!("Paragraph {i} says something, briefly, and ends.");
    for close in ["</p>", ""] {
        let html: String = (0..n).map(|i| format!("<p>{}{close}\n", paragraph(i))).collect();
        let html = format!("<html><body>{html}</body></html>");
        assert_linear_tree(&html);
        let out = sane(html.as_bytes());
        assert_eq!(out.doc.blocks.len(), n, "closing with {close:?}");
        let expected: Vec<String> = (0..n).map(paragraph).collect();
        assert_eq!(out.text, expected.join("\n\n"));
    }
}

#[test]
fn a_table_ten_thousand_columns_wide() {
    let columns = 10_000;
    let header: String = (0..columns).map(|c| format!("<th>h{c}</th>")).collect();
    let row: String = (0..columns).map(|c| format!("<td>v{c}</td>")).collect();
    let html = format!("<article><p>{PROSE}</p><table><tr>{header}</tr><tr>{row}</tr><tr>{row}</tr></table></article>");
    let out = sane(html.as_bytes());
    assert!(out.text.contains("h0\th1\th2"), "the table is read as data");
    let table = out.doc.blocks.iter().find_map(|b| match b {
        Block::Table { table } => Some(table),
        _ => None,
    });
    let table = table.expect("a data table");
    assert_eq!(table.rows.len(), 2);
    assert!(table.rows.iter().all(|r| r.len() == table.headers.len()), "a rectangular grid");
    assert!(table.headers.len() <= columns);
}

#[test]
fn cells_spanning_a_hundred_thousand_columns_or_rows() {
    // Each span alone; spans are capped, so output stays proportional.
    let cases = [
        "<table><tr><th>a</th><th>b</th></tr><tr><td colspan=100000>wide</td><td>x</td></tr></table>",
        "<table><tr><th>a</th><th>b</th></tr><tr><td rowspan=100000>tall</td><td>x</td></tr><tr><td>y</td></tr></table>",
        "<table><tr><td colspan=4294967296>a</td><td rowspan=-1>b</td><td colspan=0>c</td></tr></table>",
        "<table><tr><td colspan=\"99999999999999999999999\">a</td><td>b</td></tr></table>",
    ];
    for html in cases {
        let out = run(html.as_bytes());
        // Columns are capped at a thousand: a short cell may repeat that often.
        assert!(out.text.len() <= 1000 * html.len(), "{} bytes of text from {html}", out.text.len());
        assert!(!out.text.is_empty(), "{html}");
    }
    // Many rows under a tall cell.
    let rows: String = (0..size(10_000, 2_000)).map(|r| format!("<tr><td>r{r}</td></tr>")).collect();
    let html =
        format!("<table><tr><th>a</th><th>b</th></tr><tr><td>x</td><td rowspan=100000>tall</td></tr>{rows}</table>");
    let out = sane(html.as_bytes());
    assert!(out.text.contains("r0\ttall"), "the tall cell fills its column");
}

#[test]
fn a_hundred_thousand_attributes_on_one_element() {
    // Repeated names: one is kept, the rest are duplicates.
    let html = format!("<article><p {}>{PROSE}</p></article>", "data-x=1 ".repeat(100_000));
    let out = sane(html.as_bytes());
    assert_eq!(out.text, PROSE);
    // Attributes without values, and a `/` between each.
    let html = format!("<article><p{}>{PROSE}</p></article>", " hidden/".repeat(100_000));
    sane(html.as_bytes());
    // Distinct names, as many as the parser stays linear for (see
    // `regressions` for a hundred thousand).
    let distinct: String = (0..2_000).map(|i| format!(" a{i}=\"{i}\"")).collect();
    let html = format!("<article><p{distinct}>{PROSE}</p></article>");
    let out = sane(html.as_bytes());
    assert_eq!(out.text, PROSE);
}

// ---------------------------------------------------------------------------
// Things never closed

#[test]
fn a_comment_never_closed() {
    let n = 1 << 20;
    // A comment runs to `-->`: a `>` alone does not end it.
    let body = "comment text <p>not a paragraph</p> -- - > --!".repeat(n / 46);
    let html = format!("<article><p>{PROSE}</p></article><!--{body}");
    assert_eq!(sane(html.as_bytes()).text, PROSE);
    // Bogus comments and end tags run to the next `>`: here there is none.
    let body = "comment text <p not a paragraph -- - ".repeat(n / 37);
    for open in ["<!-", "<!", "<![CDATA[", "<?", "<?xml ", "</", "</ ", "</p ", "<p "] {
        let html = format!("<article><p>{PROSE}</p></article>{open}{body}");
        assert_eq!(sane(html.as_bytes()).text, PROSE, "after {open}");
    }
    // `<!--->` is a complete, empty comment: what follows is markup again.
    let body = "<p>not in a comment</p>".repeat(n / 23);
    let html = format!("<article><p>{PROSE}</p></article><!--->{body}");
    assert!(extract_as(html.as_bytes(), None, false).text.contains("not in a comment"));
}

#[test]
fn raw_text_elements_never_closed() {
    let body =
        "var a = 1 < 2; document.write('<p>not text</p>'); </scrip </scriptx <\\/script> ".repeat((1 << 20) / 80);
    for element in ["script", "style", "noscript", "template", "iframe", "textarea", "noembed", "noframes"] {
        let html = format!("<body><article><p>{PROSE}</p></article><{element}>{body}");
        let out = sane(html.as_bytes());
        assert_eq!(out.text, PROSE, "<{element}> never closed");
        assert!(!out.markdown.contains("not text"));
    }
    // A title never closed holds the rest of the page; it is metadata only.
    let html = format!("<html><head><title>Page {body}<body><p>{PROSE}</p>");
    let out = sane(html.as_bytes());
    assert!(out.doc.metadata.title.as_deref().is_some_and(|t| t.starts_with("Page var a")));
    // A start tag never closed.
    let html = format!("<p>{PROSE}</p><div class=\"{body}");
    let out = sane(html.as_bytes());
    assert_eq!(out.text, PROSE);
    let html = format!("<p>{PROSE}</p><div {}", "a b c ".repeat(100_000));
    let out = sane(html.as_bytes());
    assert_eq!(out.text, PROSE);
}

#[test]
fn many_less_than_signs_in_a_script() {
    let n = size(5 << 20, 1 << 20);
    for filler in ["<", "</", "</s", "</script", "</script<", "<!--", "<script>"] {
        let html = format!("<p>{PROSE}</p><script>{}</script><p>{PROSE}</p>", filler.repeat(n / filler.len()));
        let out = extract_as(html.as_bytes(), None, false);
        assert_sane(html.as_bytes(), &out);
        assert_eq!(out.text, format!("{PROSE}\n\n{PROSE}"), "script of {filler:?}");
    }
}

// ---------------------------------------------------------------------------
// Character references

#[test]
fn entity_bombs() {
    // Ten megabytes of each: two million `&amp;`s, a million `&#x1F600;`s.
    let bytes = size(10 << 20, 256 << 10);
    let cases: [(&str, &str); 10] = [
        ("&amp;", "&"),
        ("&#x1F600;", "😀"),
        ("&#128512;", "😀"),
        ("&amp", "&"),
        ("&lt", "<"),
        ("&#38", "&"),
        ("&#x110000;", "\u{FFFD}"),
        ("&#0;", "\u{FFFD}"),
        ("&CounterClockwiseContourIntegral;", "∳"),
        ("&nGt;", "≫\u{20D2}"),
    ];
    for (reference, decoded) in cases {
        let n = bytes / reference.len();
        let html = format!("<p>Start {} end</p>", reference.repeat(n));
        let out = sane(html.as_bytes());
        assert_eq!(out.text.len(), "Start  end".len() + decoded.len() * n, "{reference}");
        assert!(out.text.starts_with(&format!("Start {}", decoded.repeat(3))), "{reference}");
    }
    // What does not decode stays as written.
    for kept in ["& ", "&", "&#", "&#x", "&#;", "&unknown;", "&;", "&#xZZ;"] {
        let written = kept.repeat(bytes / kept.len());
        let out = sane(format!("<p>Start {written} end</p>").as_bytes());
        assert_eq!(out.text, collapse(&format!("Start {written} end")), "{kept}");
    }
    // Digits without end.
    let html = format!("<p>Start &#{}; end</p>", "9".repeat(bytes));
    assert_eq!(sane(html.as_bytes()).text, "Start \u{FFFD} end");
    let html = format!("<p>Start &#x{} end</p>", "F".repeat(bytes));
    assert_eq!(sane(html.as_bytes()).text, "Start \u{FFFD} end");
}

#[test]
fn an_ampersand_then_ten_thousand_letters() {
    let letters = "a".repeat(10_000);
    let html = format!("<p>&{letters}</p><p>&{letters};</p><p>&amp{letters}</p><p>&copy{letters}</p><p>{PROSE}</p>");
    let out = sane(html.as_bytes());
    assert_eq!(
        out.text,
        format!("&{letters}\n\n&{letters};\n\n&{letters}\n\n©{letters}\n\n{PROSE}"),
        "unknown names stay; legacy prefixes decode"
    );
    // Over and over, five megabytes of them.
    let html = format!("<p>{}</p>", format!("&{letters} ").repeat(size(500, 50)));
    sane(html.as_bytes());
    // And in attributes.
    let html =
        format!("<p><a href=\"/x?{}\" title=\"&{letters}\">link</a> {PROSE}</p>", format!("&{letters}=1").repeat(100));
    let out = sane(html.as_bytes());
    assert!(out.text.contains(PROSE));
}

// ---------------------------------------------------------------------------
// Not HTML, or no content

#[test]
fn random_binary_data() {
    let mut lcg = Lcg::new(1);
    let n = size(4 << 20, 512 << 10);
    let noise = lcg.bytes(n);
    for content_type in [None, Some("text/html"), Some("image/png"), Some("text/html; charset=utf-16le")] {
        let out = extract_as(&noise, content_type, true);
        assert_sane(&noise, &out);
        assert_eq!(out.doc.outcome, Outcome::NotHtml, "{content_type:?}");
    }
    // Behind magic numbers of other formats.
    for magic in
        [&b"\x89PNG\r\n\x1a\n"[..], b"\x1f\x8b\x08", b"%PDF-1.7\n", b"PK\x03\x04", b"\xff\xd8\xff\xe0", b"\0\0\0\0"]
    {
        let input = [magic, &noise[..n / 8]].concat();
        assert_eq!(sane(&input).doc.outcome, Outcome::NotHtml);
    }
    // Behind a kilobyte of markup the noise is parsed, whatever it holds.
    let input = past_the_sniffer(&noise);
    for content_type in
        [None, Some("text/html"), Some("text/html; charset=shift_jis"), Some("text/html; charset=utf-16le")]
    {
        for main_content in [true, false] {
            assert_sane(&input, &extract_as(&input, content_type, main_content));
        }
    }
    // All NULs; every byte value in turn; the same behind markup.
    let zeros = vec![0; n / 4];
    let every: Vec<u8> = (0..=255u8).cycle().take(n / 4).collect();
    for input in [&zeros, &every] {
        assert_eq!(sane(input).doc.outcome, Outcome::NotHtml);
        sane(&past_the_sniffer(input));
    }
}

#[test]
fn no_content_at_all() {
    let empty: [&[u8]; 13] = [
        b"",
        b" \n\t\r ",
        b"<html><body></body></html>",
        b"<!DOCTYPE html>",
        b"<!DOCTYPE html><html><head><title>Only a title</title></head><body>   </body></html>",
        b"<!-- only a comment -->",
        b"<script>var only = 'a script';</script>",
        b"<style>p { color: red }</style>",
        b"<p></p><div> </div><span>\n</span>",
        b"\xEF\xBB\xBF",
        b"\xFF\xFE",
        b"</",
        b"<?php echo 1; ?>",
    ];
    for input in empty {
        let out = sane(input);
        assert!(out.doc.blocks.is_empty(), "{:?}: {:?}", String::from_utf8_lossy(input), out.doc.blocks);
        assert_eq!((out.text.as_str(), out.markdown.as_str()), ("", ""));
    }
    let out = sane(b"<html><head><title>Only a title</title></head><body></body></html>");
    assert_eq!(out.doc.metadata.title.as_deref(), Some("Only a title"));
}

// ---------------------------------------------------------------------------
// Encodings

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let page = |middle: &[u8]| {
        [b"<html><body><article><p>Before, ".as_slice(), middle, b" after.</p></article></body></html>"].concat()
    };
    let invalid: [&[u8]; 8] = [
        b"\xFF\xFE\xFD",
        b"\xC3",                 // a lead byte cut short
        b"\xE2\x82",             // three-byte sequence cut short
        b"\xF0\x9F\x98",         // four-byte sequence cut short
        b"\xED\xA0\x80",         // an encoded surrogate
        b"\xC0\xAF",             // overlong `/`
        b"\xF4\x90\x80\x80",     // past U+10FFFF
        b"\x80\x80\x80\x80\x80", // continuation bytes alone
    ];
    for middle in invalid {
        let input = page(middle);
        let out = extract_as(&input, Some("text/html; charset=utf-8"), true);
        assert_sane(&input, &out);
        assert!(out.text.starts_with("Before, ") && out.text.ends_with(" after."), "{:?}", out.text);
        assert!(out.text.contains('\u{FFFD}'), "{middle:?} is replaced");
        // Undeclared, it is sniffed instead; the ASCII stays intact.
        let out = sane(&input);
        assert!(out.text.contains("Before,") && out.text.contains("after."), "{:?}", out.text);
    }
    // Cut off in the middle of a character at the very end.
    let out = extract_as("<p>Привет".as_bytes().split_last().unwrap().1, Some("text/html; charset=utf-8"), true);
    assert!(out.text.starts_with("Приве") && out.text.ends_with('\u{FFFD}'));
}

#[test]
fn mixed_and_conflicting_encodings() {
    let utf8 = "Ångström, naïve café — Привет, 안녕하세요, こんにちは.";
    let latin1 = b"caf\xe9 cr\xe8me br\xfbl\xe9e";
    let mixed = [b"<html><body><p>".as_slice(), utf8.as_bytes(), b"</p><p>", latin1, b"</p></body></html>"].concat();
    for content_type in [
        None,
        Some("text/html; charset=utf-8"),
        Some("text/html; charset=iso-8859-1"),
        Some("text/html; charset=windows-1251"),
    ] {
        let out = extract_as(&mixed, content_type, false);
        assert_sane(&mixed, &out);
        assert_eq!(out.doc.blocks.len(), 2, "{content_type:?}");
    }
    // Declared one way in the header, another in the page: the header wins.
    let declared = [b"<meta charset=windows-1251><p>".as_slice(), latin1, b"</p>"].concat();
    let out = extract_as(&declared, Some("text/html; charset=windows-1252"), false);
    assert_eq!(out.text, "café crème brûlée");
    // A UTF-8 page whose meta says windows-1251 reads as mojibake, not an error.
    let lying = format!("<meta charset=windows-1251><p>{utf8}</p>");
    let out = extract_as(lying.as_bytes(), None, false);
    assert_sane(lying.as_bytes(), &out);
    assert!(out.text.starts_with("Г…ngstr"), "{:?}", out.text);
    // Labels that are no charset, or odd ones.
    for label in ["klingon", "", "\"", "utf-16", "utf-16be", "x-user-defined", "iso-2022-kr", "replacement", "utf-7"] {
        let out = extract_as(&mixed, Some(&format!("text/html; charset={label}")), false);
        assert_sane(&mixed, &out);
    }
}

#[test]
fn utf16_pages_and_odd_byte_order_marks() {
    let html = "<html><body><article><p>Ein Absatz, auf Deutsch, mit Umlauten: äöü ß.</p></article></body></html>";
    let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(html.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    let be: Vec<u8> = [0xFE, 0xFF].into_iter().chain(html.encode_utf16().flat_map(u16::to_be_bytes)).collect();
    for input in [&le, &be] {
        let out = extract_as(input, Some("text/html"), true);
        assert_sane(input, &out);
        assert_eq!(out.text, "Ein Absatz, auf Deutsch, mit Umlauten: äöü ß.");
        // Without a `Content-Type` (see `regressions`), and cut at an odd byte.
        sane(input);
        sane(&input[..input.len() - 1]);
        assert_sane(input, &extract_as(&input[..input.len() - 1], Some("text/html"), false));
    }
    // UTF-16 without a byte order mark is not guessed: no panic either way.
    let bare: Vec<u8> = html.encode_utf16().flat_map(u16::to_le_bytes).collect();
    sane(&bare);
    let bom = [&[0xEF, 0xBB, 0xBF][..], html.as_bytes()].concat();
    assert_eq!(
        extract_as(&bom, Some("text/html; charset=shift_jis"), true).text,
        "Ein Absatz, auf Deutsch, mit Umlauten: äöü ß."
    );
}
