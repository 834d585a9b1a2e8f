//! Renderings of extracted blocks: GitHub-Flavored Markdown that renders to
//! exactly the extracted text, and plain text for indexing and scoring.
//!
//! Markdown escapes conservatively: anything in ordinary text that could turn
//! into markup is backslash-escaped, and emphasis markers are emitted only
//! where a CommonMark parser will read them as emphasis. When a marker would
//! not take effect (say, strong text that opens with punctuation in the middle
//! of a word), the styling is dropped rather than leaving stray asterisks in
//! the rendered text.

use crate::model::{Block, Span, Table};

/// What the Markdown rendering keeps besides text and structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Inline links as `[text](href)`; otherwise only their text.
    pub links: bool,
    /// Image blocks as `![alt](src)`; otherwise they are left out.
    pub images: bool,
}

impl Default for RenderOptions {
    fn default() -> RenderOptions {
        RenderOptions { links: true, images: true }
    }
}

/// The blocks as GitHub-Flavored Markdown: blocks separated by one blank line,
/// list items of one list on consecutive lines, and a single trailing newline
/// when there is anything at all.
pub fn markdown(blocks: &[Block], options: &RenderOptions) -> String {
    let mut out = String::new();
    let mut list = ListState::default();
    let mut in_list = false;
    for block in blocks {
        if let Block::ListItem { depth, ordered, number, spans } = block {
            let content = inline(spans, options);
            if content.is_empty() {
                continue;
            }
            let (item, tight) = list.item(*depth, *ordered, *number, &content);
            push_block(&mut out, &item, if in_list && tight { "\n" } else { "\n\n" });
            in_list = true;
            continue;
        }
        let rendered = match block {
            Block::Heading { level, spans } => heading(*level, spans, options),
            Block::Paragraph { spans } => inline(spans, options),
            Block::Quote { spans } => {
                let content = inline(spans, options);
                if content.is_empty() { content } else { format!("> {content}") }
            }
            Block::Code { language, text } => code_block(language.as_deref(), text),
            Block::Table { table } => table_markdown(table),
            Block::Image { alt, src, title } if options.images => image(alt, src, title.as_deref()),
            Block::Image { .. } | Block::ListItem { .. } => String::new(),
        };
        if rendered.is_empty() {
            continue;
        }
        push_block(&mut out, &rendered, "\n\n");
        list = ListState::default();
        in_list = false;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// The blocks as plain text: each block's text with whitespace collapsed (code
/// verbatim), blocks — every list item among them — separated by one blank
/// line, table cells separated by tabs. No URLs, no markup, no image alt text.
pub fn text(blocks: &[Block]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for block in blocks {
        let part = match block {
            Block::Heading { spans, .. }
            | Block::Paragraph { spans }
            | Block::ListItem { spans, .. }
            | Block::Quote { spans } => spans_text(spans),
            Block::Code { text, .. } => code_body(text).to_owned(),
            Block::Table { table } => table_text(table),
            Block::Image { .. } => continue,
        };
        if !part.is_empty() {
            parts.push(part);
        }
    }
    parts.join("\n\n").trim().to_owned()
}

fn push_block(out: &mut String, block: &str, separator: &str) {
    if !out.is_empty() {
        out.push_str(separator);
    }
    out.push_str(block);
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn spans_text(spans: &[Span]) -> String {
    collapse(&spans.iter().map(|s| s.text.as_str()).collect::<String>())
}

/// Code without the blank lines before it and the whitespace after it; the
/// indentation of its first line is kept.
fn code_body(text: &str) -> &str {
    let text = text.trim_end();
    let start = text
        .find(|c: char| !c.is_whitespace())
        .map_or(text.len(), |first| text[..first].rfind('\n').map_or(0, |newline| newline + 1));
    &text[start..]
}

fn table_text(table: &Table) -> String {
    let mut lines = Vec::new();
    if let Some(caption) = table.caption.as_deref().map(collapse).filter(|c| !c.is_empty()) {
        lines.push(caption);
    }
    for row in std::iter::once(&table.headers).chain(&table.rows) {
        let cells: Vec<String> = row.iter().map(|cell| collapse(cell)).collect();
        if cells.iter().any(|cell| !cell.is_empty()) {
            lines.push(cells.join("\t"));
        }
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------
// Blocks

fn heading(level: u8, spans: &[Span], options: &RenderOptions) -> String {
    let mut content = inline_unescaped_start(spans, options);
    if content.is_empty() {
        return content;
    }
    // A trailing run of `#` would be read as the heading's closing sequence.
    if content.ends_with('#') {
        content.insert(content.len() - 1, '\\');
    }
    escape_line_start(&mut content);
    format!("{} {content}", "#".repeat(usize::from(level.clamp(1, 6))))
}

fn code_block(language: Option<&str>, text: &str) -> String {
    let body = code_body(text);
    if body.is_empty() {
        return String::new();
    }
    let fence = "`".repeat(longest_run(body, '`').max(2) + 1);
    // The language is one word of the characters language names use; the
    // info string of a backtick fence may not hold backticks, and odd
    // characters there can make some parsers read the fence as something else.
    let language: String = language
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '+' | '-' | '#' | '.' | '_'))
        .collect();
    format!("{fence}{language}\n{body}\n{fence}")
}

fn table_markdown(table: &Table) -> String {
    let caption = table.caption.as_deref().map(|c| escaped_line(&collapse(c))).unwrap_or_default();
    let (header, body): (&[String], &[Vec<String>]) = if table.headers.is_empty() {
        match table.rows.split_first() {
            Some((first, rest)) => (first, rest),
            None => (&[], &[]),
        }
    } else {
        (&table.headers, &table.rows)
    };
    let width = body.iter().map(Vec::len).fold(header.len(), usize::max);
    let has_content =
        std::iter::once(header).chain(body.iter().map(Vec::as_slice)).flatten().any(|cell| !cell.trim().is_empty());
    if width == 0 || !has_content {
        return caption;
    }
    let mut lines = Vec::with_capacity(body.len() + 4);
    if !caption.is_empty() {
        lines.push(caption);
        lines.push(String::new());
    }
    lines.push(table_row(header, width));
    lines.push(format!("|{}", " --- |".repeat(width)));
    lines.extend(body.iter().map(|row| table_row(row, width)));
    lines.join("\n")
}

fn table_row(cells: &[String], width: usize) -> String {
    let mut line = String::from("|");
    for i in 0..width {
        let cell = collapse(cells.get(i).map_or("", String::as_str));
        if !cell.is_empty() {
            line.push(' ');
            escape_text(&cell, true, &mut line);
        }
        line.push_str(" |");
    }
    line
}

fn image(alt: &str, src: &str, title: Option<&str>) -> String {
    let src = src.trim();
    if src.is_empty() {
        return String::new();
    }
    let mut out = String::from("![");
    escape_text(&collapse(alt), false, &mut out);
    out.push_str("](");
    out.push_str(&encode_url(src));
    if let Some(title) = title.map(collapse).filter(|t| !t.is_empty()) {
        out.push_str(" \"");
        for c in title.chars() {
            if matches!(c, '"' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push(')');
    out
}

/// The deepest list nesting Markdown shows; deeper items stay at this depth.
const MAX_LIST_DEPTH: usize = 6;

/// Indentation and numbering of the list being written.
#[derive(Default)]
struct ListState {
    /// The most recent item at each depth, outermost first.
    levels: Vec<ListLevel>,
}

struct ListLevel {
    /// The column the item's content starts at, where its children go.
    content_column: usize,
    /// The item's number when it is ordered.
    number: Option<u32>,
}

impl ListState {
    /// The item's line, and whether it may follow the previous item without a
    /// blank line.
    fn item(&mut self, depth: u8, ordered: bool, number: Option<u32>, content: &str) -> (String, bool) {
        // An item deeper than one below the last one is nested one level, and
        // none deeper than `MAX_LIST_DEPTH`: past that, indentation only
        // multiplies the output (each level may add eleven columns).
        let depth = usize::from(depth).min(self.levels.len()).min(MAX_LIST_DEPTH - 1);
        let indent = depth.checked_sub(1).map_or(0, |parent| self.levels[parent].content_column);
        let previous = self.levels.get(depth).and_then(|level| level.number);
        let (marker, number) = if ordered {
            // CommonMark list numbers have at most nine digits.
            let n = number.unwrap_or_else(|| previous.map_or(1, |p| p.saturating_add(1))).min(999_999_999);
            (format!("{n}. "), Some(n))
        } else {
            ("- ".to_owned(), None)
        };
        // A nested ordered list that starts at anything but 1 cannot interrupt
        // its parent's text, so it needs a blank line before it.
        let tight = !(depth > 0 && previous.is_none() && number.is_some_and(|n| n != 1));
        self.levels.truncate(depth);
        self.levels.push(ListLevel { content_column: indent + marker.len(), number });
        (format!("{}{marker}{content}", " ".repeat(indent)), tight)
    }
}

// ---------------------------------------------------------------------------
// Inline text

/// A run of inline text with whitespace collapsed and neighbours of the same
/// style merged.
struct Piece<'a> {
    text: String,
    href: Option<&'a str>,
    strong: bool,
    emphasis: bool,
    code: bool,
}

impl Piece<'_> {
    fn same_style(&self, href: Option<&str>, span: &Span) -> bool {
        self.href == href && self.strong == span.strong && self.emphasis == span.emphasis && self.code == span.code
    }
}

fn pieces<'a>(spans: &'a [Span], links: bool) -> Vec<Piece<'a>> {
    let mut pieces: Vec<Piece<'a>> = Vec::new();
    // Leading whitespace is dropped, as if a space came before.
    let mut after_space = true;
    for span in spans {
        let href = if links { span.href.as_deref().map(str::trim).filter(|h| !h.is_empty()) } else { None };
        let mut text = String::new();
        for c in span.text.chars() {
            if !c.is_whitespace() {
                text.push(c);
                after_space = false;
            } else if !after_space {
                text.push(' ');
                after_space = true;
            }
        }
        if text.is_empty() {
            continue;
        }
        match pieces.last_mut() {
            Some(last) if last.same_style(href, span) => last.text.push_str(&text),
            _ => pieces.push(Piece { text, href, strong: span.strong, emphasis: span.emphasis, code: span.code }),
        }
    }
    if let Some(last) = pieces.last_mut() {
        if last.text.ends_with(' ') {
            last.text.pop();
        }
        if last.text.is_empty() {
            pieces.pop();
        }
    }
    pieces
}

/// Inline Markdown for a paragraph-like block, safe at the start of a line.
fn inline(spans: &[Span], options: &RenderOptions) -> String {
    let mut out = inline_unescaped_start(spans, options);
    escape_line_start(&mut out);
    out
}

fn inline_unescaped_start(spans: &[Span], options: &RenderOptions) -> String {
    let pieces = pieces(spans, options.links);
    let mut out = String::new();
    // The last piece when it ended in a bare code span: where the span starts
    // in `out`, and its content.
    let mut open_code: Option<(usize, String)> = None;
    for (i, piece) in pieces.iter().enumerate() {
        let previous_code = open_code.take();
        let core = piece.text.trim_start_matches(' ');
        let leading = &piece.text[..piece.text.len() - core.len()];
        let core = core.trim_end_matches(' ');
        let trailing = &piece.text[leading.len() + core.len()..];
        out.push_str(leading);
        if core.is_empty() {
            continue;
        }
        let after =
            if trailing.is_empty() { pieces.get(i + 1).and_then(|next| next.text.chars().next()) } else { Some(' ') };
        match piece.href {
            Some(href) => {
                // `!` right before a link would make it an image.
                if out.ends_with('!') {
                    out.insert(out.len() - 1, '\\');
                }
                // At the start of a paragraph, `[` followed by a `]:` that
                // only a code span can hold would be read as a link reference
                // definition: such text goes without its code span.
                let code = piece.code && !(out.is_empty() && core.contains(']'));
                out.push('[');
                out.push_str(&styled(core, piece, code, Some('['), Some(']')));
                out.push_str("](");
                out.push_str(&encode_url(href));
                out.push(')');
            }
            None => {
                let styled = styled(core, piece, piece.code, out.chars().next_back(), after);
                if styled.starts_with('`') {
                    // Two code spans side by side would run their backticks
                    // together: they become one span.
                    let content = match previous_code {
                        Some((start, previous)) if leading.is_empty() => {
                            out.truncate(start);
                            previous + core
                        }
                        _ => core.to_owned(),
                    };
                    let start = out.len();
                    code_span(&content, &mut out);
                    open_code = trailing.is_empty().then_some((start, content));
                } else {
                    out.push_str(&styled);
                }
            }
        }
        out.push_str(trailing);
    }
    out
}

/// Text with its code, emphasis and strong markup, between the characters
/// `before` and `after` (`None`: the edge of the block).
fn styled(core: &str, piece: &Piece, code: bool, before: Option<char>, after: Option<char>) -> String {
    let mut inner = String::new();
    if code {
        code_span(core, &mut inner);
    } else {
        escape_text(core, false, &mut inner);
    }
    let wrap = |marker: &str, s: &str| format!("{marker}{s}{marker}");
    if piece.strong && piece.emphasis {
        // The inner marker sits between punctuation (the outer marker) and
        // the text, where it always takes effect if it does not merge.
        for (strong, emphasis) in [("**", '_'), ("__", '*')] {
            if !edges(&inner).contains(&Some(emphasis)) {
                let both = wrap(strong, &wrap(&emphasis.to_string(), &inner));
                if delimits(strong, before, &both[2..both.len() - 2], after) {
                    return both;
                }
            }
        }
    }
    if piece.strong {
        for marker in ["**", "__"] {
            if delimits(marker, before, &inner, after) {
                return wrap(marker, &inner);
            }
        }
    }
    if piece.emphasis {
        for marker in ["_", "*"] {
            if delimits(marker, before, &inner, after) {
                return wrap(marker, &inner);
            }
        }
    }
    inner
}

fn edges(s: &str) -> [Option<char>; 2] {
    [s.chars().next(), s.chars().next_back()]
}

/// Whether `marker` around `inner`, between `before` and `after`, is read as
/// emphasis: the opening run must be left-flanking and the closing run
/// right-flanking (with the stricter rules for `_`), and neither may merge with
/// a neighbouring run of the same character. Characters whose Unicode class
/// cannot be told without tables count as whichever is worse.
fn delimits(marker: &str, before: Option<char>, inner: &str, after: Option<char>) -> bool {
    let Some(m) = marker.chars().next() else { return false };
    let [first, last] = edges(inner);
    if [before, first, last, after].contains(&Some(m)) {
        return false;
    }
    let underscore = m == '_';
    [false, true].into_iter().all(|unknown_is_punctuation| {
        let classify = |c: Option<char>| class(c, unknown_is_punctuation);
        let (before, first, last, after) = (classify(before), classify(first), classify(last), classify(after));
        let opens = left_flanking(before, first)
            && (!underscore || !right_flanking(before, first) || before == Class::Punctuation);
        let closes =
            right_flanking(last, after) && (!underscore || !left_flanking(last, after) || after == Class::Punctuation);
        opens && closes
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Space,
    Punctuation,
    Other,
}

fn class(c: Option<char>, unknown_is_punctuation: bool) -> Class {
    match c {
        None => Class::Space,
        Some(c) if c.is_whitespace() => Class::Space,
        Some(c) if c.is_ascii_punctuation() => Class::Punctuation,
        Some(c) if c.is_ascii() || c.is_alphanumeric() => Class::Other,
        // Non-ASCII symbols and punctuation: which they are depends on the
        // Unicode category and the CommonMark version.
        Some(_) if unknown_is_punctuation => Class::Punctuation,
        Some(_) => Class::Other,
    }
}

/// A delimiter run between `prev` and `next` that can open emphasis.
fn left_flanking(prev: Class, next: Class) -> bool {
    next != Class::Space && (next != Class::Punctuation || prev != Class::Other)
}

/// A delimiter run between `prev` and `next` that can close emphasis.
fn right_flanking(prev: Class, next: Class) -> bool {
    prev != Class::Space && (prev != Class::Punctuation || next != Class::Other)
}

fn code_span(text: &str, out: &mut String) {
    let fence = "`".repeat(longest_run(text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    out.push_str(&fence);
    out.push_str(pad);
    out.push_str(text);
    out.push_str(pad);
    out.push_str(&fence);
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// Backslash-escapes what could be read as inline markup; `|` too in table
/// cells.
fn escape_text(text: &str, in_table: bool, out: &mut String) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let escape = match c {
            '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '~' => true,
            '|' => in_table,
            // An entity or character reference would be decoded.
            '&' => chars.peek().is_some_and(|n| n.is_ascii_alphanumeric() || *n == '#'),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

fn escaped_line(text: &str) -> String {
    let mut out = String::new();
    escape_text(text, false, &mut out);
    escape_line_start(&mut out);
    out
}

/// Escapes what would start a heading, quote, list or thematic break at the
/// start of a line.
fn escape_line_start(line: &mut String) {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    match line.as_bytes().get(digits) {
        Some(b'.' | b')') if digits > 0 => line.insert(digits, '\\'),
        Some(b'#' | b'>' | b'-' | b'+') if digits == 0 => line.insert(0, '\\'),
        _ => {}
    }
}

/// A link destination that needs no angle brackets: spaces, parentheses,
/// angle brackets, backslashes and control characters percent-encoded.
fn encode_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        if c.is_whitespace() || c.is_control() || matches!(c, '(' | ')' | '<' | '>' | '\\') {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Span {
        Span::plain(text)
    }

    fn strong(text: &str) -> Span {
        Span { strong: true, ..Span::plain(text) }
    }

    fn emphasis(text: &str) -> Span {
        Span { emphasis: true, ..Span::plain(text) }
    }

    fn code(text: &str) -> Span {
        Span { code: true, ..Span::plain(text) }
    }

    fn link(text: &str, href: &str) -> Span {
        Span { href: Some(href.to_owned()), ..Span::plain(text) }
    }

    fn para(spans: Vec<Span>) -> Block {
        Block::Paragraph { spans }
    }

    fn item(depth: u8, ordered: bool, number: Option<u32>, text: &str) -> Block {
        Block::ListItem { depth, ordered, number, spans: vec![plain(text)] }
    }

    fn md(blocks: &[Block]) -> String {
        markdown(blocks, &RenderOptions::default())
    }

    fn table(caption: Option<&str>, headers: &[&str], rows: &[&[&str]]) -> Block {
        Block::Table {
            table: Table {
                caption: caption.map(str::to_owned),
                headers: headers.iter().map(|h| (*h).to_owned()).collect(),
                rows: rows.iter().map(|r| r.iter().map(|c| (*c).to_owned()).collect()).collect(),
            },
        }
    }

    #[test]
    fn render_empty_input_is_empty() {
        assert_eq!(md(&[]), "");
        assert_eq!(text(&[]), "");
        assert_eq!(md(&[para(vec![plain("  \n ")])]), "");
        assert_eq!(text(&[para(vec![plain("  \n ")])]), "");
    }

    #[test]
    fn render_heading_levels_are_clamped() {
        let blocks = [
            Block::Heading { level: 0, spans: vec![plain("Zero")] },
            Block::Heading { level: 2, spans: vec![plain(" Two ")] },
            Block::Heading { level: 9, spans: vec![plain("Nine")] },
        ];
        assert_eq!(md(&blocks), "# Zero\n\n## Two\n\n###### Nine\n");
    }

    #[test]
    fn render_heading_trailing_hash_is_escaped() {
        let blocks = [
            Block::Heading { level: 1, spans: vec![plain("Issue #")] },
            Block::Heading { level: 2, spans: vec![plain("C#")] },
        ];
        assert_eq!(md(&blocks), "# Issue \\#\n\n## C\\#\n");
    }

    #[test]
    fn render_paragraphs_are_separated_by_one_blank_line() {
        let blocks = [para(vec![plain("  First\n  paragraph. ")]), para(vec![plain("Second\t\tone.")])];
        assert_eq!(md(&blocks), "First paragraph.\n\nSecond one.\n");
        assert_eq!(text(&blocks), "First paragraph.\n\nSecond one.");
    }

    #[test]
    fn render_unordered_list_is_one_list_with_nesting() {
        let blocks = [
            para(vec![plain("Before")]),
            item(0, false, None, "one"),
            item(1, false, None, "one a"),
            item(0, false, None, "two"),
            para(vec![plain("After")]),
        ];
        assert_eq!(md(&blocks), "Before\n\n- one\n  - one a\n- two\n\nAfter\n");
    }

    #[test]
    fn render_ordered_list_counts_and_uses_numbers() {
        let blocks = [
            item(0, true, None, "first"),
            item(1, false, None, "detail"),
            item(0, true, None, "second"),
            item(0, true, Some(7), "seventh"),
            item(0, true, None, "eighth"),
        ];
        assert_eq!(md(&blocks), "1. first\n   - detail\n2. second\n7. seventh\n8. eighth\n");
    }

    #[test]
    fn render_list_numbering_restarts_after_other_blocks_and_depths() {
        let blocks = [
            item(0, true, None, "a"),
            item(1, true, None, "a.1"),
            item(1, true, None, "a.2"),
            item(0, true, None, "b"),
            item(1, true, None, "b.1"),
            para(vec![plain("Break")]),
            item(0, true, None, "c"),
        ];
        assert_eq!(md(&blocks), "1. a\n   1. a.1\n   2. a.2\n2. b\n   1. b.1\n\nBreak\n\n1. c\n");
    }

    #[test]
    fn render_list_depth_jumps_nest_one_level() {
        let blocks = [item(2, false, None, "deep start"), item(0, false, None, "top"), item(3, false, None, "child")];
        assert_eq!(md(&blocks), "- deep start\n- top\n  - child\n");
    }

    #[test]
    fn render_nested_ordered_list_starting_past_one_gets_a_blank_line() {
        let blocks = [item(0, false, None, "parent"), item(1, true, Some(3), "third")];
        assert_eq!(md(&blocks), "- parent\n\n  3. third\n");
    }

    #[test]
    fn render_list_items_are_separate_blocks_in_text() {
        let blocks = [para(vec![plain("Intro")]), item(0, false, None, "one"), item(1, true, None, "two")];
        assert_eq!(text(&blocks), "Intro\n\none\n\ntwo");
    }

    #[test]
    fn render_code_block_with_language() {
        let blocks =
            [Block::Code { language: Some("rust".into()), text: "\nfn main() {\n    let a = *b_c;\n}\n\n".into() }];
        assert_eq!(md(&blocks), "```rust\nfn main() {\n    let a = *b_c;\n}\n```\n");
        assert_eq!(text(&blocks), "fn main() {\n    let a = *b_c;\n}");
    }

    #[test]
    fn render_code_block_containing_a_fence_gets_a_longer_fence() {
        let blocks = [Block::Code { language: None, text: "```md\n# x\n```".into() }];
        assert_eq!(md(&blocks), "````\n```md\n# x\n```\n````\n");
        let blocks = [Block::Code { language: Some(" c++ `x` ".into()), text: "a".into() }];
        assert_eq!(md(&blocks), "```c++\na\n```\n");
        let blocks = [Block::Code { language: Some("|".into()), text: "|-".into() }];
        assert_eq!(md(&blocks), "```\n|-\n```\n");
    }

    #[test]
    fn render_quote_is_prefixed() {
        let blocks =
            [Block::Quote { spans: vec![plain("To be,\nor not ")] }, Block::Quote { spans: vec![plain("> nested?")] }];
        assert_eq!(md(&blocks), "> To be, or not\n\n> \\> nested?\n");
        assert_eq!(text(&blocks), "To be, or not\n\n> nested?");
    }

    #[test]
    fn render_table_with_outer_pipes_and_separator() {
        // Colspan already resolved: the spanning cell repeats.
        let blocks = [table(
            Some("Prices"),
            &["Item", "Cost"],
            &[&["Tea", "1"], &["Total", "Total"], &["a|b", "two\nlines"], &["short"]],
        )];
        assert_eq!(
            md(&blocks),
            "Prices\n\n| Item | Cost |\n| --- | --- |\n| Tea | 1 |\n| Total | Total |\n| a\\|b | two lines |\n| short | |\n"
        );
        assert_eq!(text(&blocks), "Prices\nItem\tCost\nTea\t1\nTotal\tTotal\na|b\ttwo lines\nshort");
    }

    #[test]
    fn render_table_without_headers_uses_first_row() {
        let blocks = [table(None, &[], &[&["x", "y"], &["1", "2", "3"]])];
        assert_eq!(md(&blocks), "| x | y | |\n| --- | --- | --- |\n| 1 | 2 | 3 |\n");
        assert_eq!(text(&blocks), "x\ty\n1\t2\t3");
    }

    #[test]
    fn render_table_with_only_headers_and_empty_tables() {
        assert_eq!(md(&[table(None, &["a", "b"], &[])]), "| a | b |\n| --- | --- |\n");
        assert_eq!(md(&[table(Some("Empty"), &[], &[])]), "Empty\n");
        assert_eq!(md(&[table(None, &[], &[&[" ", ""]])]), "");
    }

    #[test]
    fn render_table_cells_escape_markup() {
        let blocks = [table(None, &["*a*", "[b]"], &[&["`c`", "# d"]])];
        assert_eq!(md(&blocks), "| \\*a\\* | \\[b\\] |\n| --- | --- |\n| \\`c\\` | # d |\n");
    }

    #[test]
    fn render_images_with_and_without_title() {
        let blocks = [
            Block::Image { alt: "A [cat]".into(), src: "https://x.test/a cat (1).png".into(), title: None },
            Block::Image { alt: "Dog".into(), src: "https://x.test/dog.png".into(), title: Some("The \"dog\"".into()) },
        ];
        assert_eq!(
            md(&blocks),
            "![A \\[cat\\]](https://x.test/a%20cat%20%281%29.png)\n\n![Dog](https://x.test/dog.png \"The \\\"dog\\\"\")\n"
        );
    }

    #[test]
    fn render_images_off_drops_images() {
        let blocks = [
            para(vec![plain("Before")]),
            Block::Image { alt: "Cat".into(), src: "https://x.test/cat.png".into(), title: None },
            para(vec![plain("After")]),
        ];
        let options = RenderOptions { images: false, ..RenderOptions::default() };
        assert_eq!(markdown(&blocks, &options), "Before\n\nAfter\n");
    }

    #[test]
    fn render_inline_styles_keep_whitespace_outside_markers() {
        let blocks = [para(vec![
            plain("Some"),
            strong(" bold "),
            plain("and"),
            emphasis(" soft "),
            plain("and"),
            code(" x = 1"),
            plain("."),
        ])];
        assert_eq!(md(&blocks), "Some **bold** and _soft_ and `x = 1`.\n");
        assert_eq!(text(&blocks), "Some bold and soft and x = 1.");
    }

    #[test]
    fn render_whitespace_only_spans_get_no_markers() {
        let blocks = [para(vec![plain("a"), strong("  "), emphasis("\n"), plain("b")])];
        assert_eq!(md(&blocks), "a b\n");
    }

    #[test]
    fn render_strong_emphasis_and_adjacent_runs() {
        let both = Span { strong: true, emphasis: true, ..Span::plain("both") };
        let blocks = [para(vec![plain("x "), both, plain(" "), strong("one"), strong(" two")])];
        assert_eq!(md(&blocks), "x **_both_** **one two**\n");
    }

    #[test]
    fn render_emphasis_inside_a_word_uses_asterisks() {
        let blocks = [para(vec![plain("un"), emphasis("believ"), plain("able")])];
        assert_eq!(md(&blocks), "un*believ*able\n");
    }

    #[test]
    fn render_markers_that_would_not_take_effect_are_dropped() {
        // `a**(b)**c` is not strong in CommonMark: the text is kept, unstyled.
        let blocks = [para(vec![plain("a"), strong("(b)"), plain("c")])];
        assert_eq!(md(&blocks), "a(b)c\n");
        // Next to other punctuation they work.
        let blocks = [para(vec![plain("Note: "), strong("(b)"), plain(".")])];
        assert_eq!(md(&blocks), "Note: **(b)**.\n");
    }

    #[test]
    fn render_code_span_with_backticks_gets_a_longer_fence() {
        let blocks = [para(vec![plain("Use "), code("a `b` c"), plain(" or "), code("`x")])];
        assert_eq!(md(&blocks), "Use ``a `b` c`` or `` `x ``\n");
    }

    #[test]
    fn render_adjacent_code_spans_become_one() {
        // The strong marker cannot open before a backtick after a letter, so
        // both runs end up as bare code and must not run their fences together.
        let blocks = [para(vec![plain("a"), Span { strong: true, ..code("b") }, code("c``d")])];
        assert_eq!(md(&blocks), "a```bc``d```\n");
        let blocks = [para(vec![code("x"), Span { strong: true, ..code("y") }])];
        assert_eq!(md(&blocks), "`x`**`y`**\n");
    }

    #[test]
    fn render_links_with_escaped_text_and_encoded_urls() {
        let blocks = [para(vec![
            plain("See "),
            link("the [draft] ", "https://x.test/a b_(c)"),
            plain("and "),
            Span { strong: true, ..link("this", "https://x.test/*") },
            plain("!"),
        ])];
        assert_eq!(
            md(&blocks),
            "See [the \\[draft\\]](https://x.test/a%20b_%28c%29) and [**this**](https://x.test/*)!\n"
        );
    }

    #[test]
    fn render_link_at_paragraph_start_cannot_become_a_definition() {
        let linked_code = Span { code: true, ..link("a]:b", "https://x.test/") };
        let blocks = [para(vec![linked_code.clone()]), para(vec![plain("x "), linked_code])];
        assert_eq!(md(&blocks), "[a\\]:b](https://x.test/)\n\nx [`a]:b`](https://x.test/)\n");
    }

    #[test]
    fn render_bang_before_link_is_escaped() {
        let blocks = [para(vec![plain("Wow!"), link("x", "https://x.test/")])];
        assert_eq!(md(&blocks), "Wow\\![x](https://x.test/)\n");
    }

    #[test]
    fn render_links_off_drops_urls() {
        let blocks = [para(vec![plain("Read "), link("the docs", "https://x.test/docs"), plain(" now.")])];
        let options = RenderOptions { links: false, ..RenderOptions::default() };
        assert_eq!(markdown(&blocks, &options), "Read the docs now.\n");
    }

    #[test]
    fn render_escapes_markdown_specials() {
        let blocks = [para(vec![plain(r"a*b _c_ `d` [e] <f> \g ~h~ &amp; & i")])];
        assert_eq!(md(&blocks), "a\\*b \\_c\\_ \\`d\\` \\[e\\] \\<f> \\\\g \\~h\\~ \\&amp; & i\n");
    }

    #[test]
    fn render_escapes_block_starts() {
        let blocks = [
            para(vec![plain("# not a heading")]),
            para(vec![plain("> not a quote")]),
            para(vec![plain("- not a list")]),
            para(vec![plain("+ nor this")]),
            para(vec![plain("2024. A year")]),
            para(vec![plain("1) Paren")]),
            para(vec![plain("--- rule?")]),
            item(0, false, None, "---"),
        ];
        assert_eq!(
            md(&blocks),
            "\\# not a heading\n\n\\> not a quote\n\n\\- not a list\n\n\\+ nor this\n\n2024\\. A year\n\n1\\) Paren\n\n\\--- rule?\n\n- \\---\n"
        );
    }

    #[test]
    fn render_non_latin_text_passes_through() {
        let blocks = [
            Block::Heading { level: 1, spans: vec![plain("Привет, мир")] },
            para(vec![plain("日本語のテキスト、"), strong("重要"), plain("です。")]),
        ];
        assert_eq!(md(&blocks), "# Привет, мир\n\n日本語のテキスト、**重要**です。\n");
        assert_eq!(text(&blocks), "Привет, мир\n\n日本語のテキスト、重要です。");
    }

    #[test]
    fn render_text_has_no_urls_no_alt_and_verbatim_code() {
        let blocks = [
            Block::Heading { level: 1, spans: vec![plain("Title")] },
            para(vec![plain("A "), link("link", "https://x.test/secret"), plain(" here.")]),
            Block::Image { alt: "alt words".into(), src: "https://x.test/img.png".into(), title: Some("t".into()) },
            Block::Code { language: Some("sh".into()), text: "  echo  *hi*\n".into() },
            Block::Quote { spans: vec![emphasis("quoted")] },
        ];
        let out = text(&blocks);
        assert_eq!(out, "Title\n\nA link here.\n\n  echo  *hi*\n\nquoted");
        assert!(!out.contains("x.test") && !out.contains("alt"));
    }

    #[test]
    fn render_text_skips_empty_table_rows() {
        let blocks = [table(Some(" Cap  tion "), &[], &[&["", ""], &["a", ""], &["", "b"]])];
        assert_eq!(text(&blocks), "Cap tion\na\t\n\tb");
    }

    #[test]
    fn render_default_options_keep_links_and_images() {
        assert_eq!(RenderOptions::default(), RenderOptions { links: true, images: true });
    }

    /// A small linear congruential generator, so the property test needs no
    /// dependencies and is reproducible.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn chance(&mut self, one_in: usize) -> bool {
            self.below(one_in) == 0
        }

        fn text(&mut self, max: usize) -> String {
            const CHARS: &[char] = &[
                'a', 'b', 'z', 'Q', '0', '1', '7', ' ', ' ', '\n', '\t', '\u{a0}', '*', '_', '`', '[', ']', '<', '>',
                '#', '-', '+', '.', ')', '(', '!', '\\', '|', '&', '~', '"', ':', 'é', 'ж', 'Я', '語', 'の', '🙂',
            ];
            let len = self.below(max + 1);
            (0..len).map(|_| CHARS[self.below(CHARS.len())]).collect()
        }

        fn spans(&mut self, serial: &mut usize) -> Vec<Span> {
            (0..self.below(5))
                .map(|_| {
                    let mut span = Span::plain(self.text(10));
                    span.strong = self.chance(4);
                    span.emphasis = self.chance(4);
                    span.code = self.chance(6);
                    if self.chance(4) {
                        *serial += 1;
                        span.href = Some(format!("https://link.invalid/{serial} x)"));
                    }
                    // Styled runs are whole words, so words of the text show up
                    // unbroken by markers in the Markdown.
                    if span.strong || span.emphasis || span.code || span.href.is_some() {
                        span.text = format!(" {} ", span.text);
                    }
                    span
                })
                .collect()
        }

        fn block(&mut self, serial: &mut usize) -> Block {
            match self.below(7) {
                0 => Block::Heading { level: self.below(9) as u8, spans: self.spans(serial) },
                1 => Block::Paragraph { spans: self.spans(serial) },
                2 => Block::ListItem {
                    depth: self.below(4) as u8,
                    ordered: self.chance(2),
                    number: self.chance(3).then(|| self.below(20) as u32),
                    spans: self.spans(serial),
                },
                3 => Block::Code { language: self.chance(2).then(|| self.text(4)), text: self.text(30) },
                4 => Block::Quote { spans: self.spans(serial) },
                5 => Block::Table {
                    table: Table {
                        caption: self.chance(2).then(|| self.text(8)),
                        headers: (0..self.below(3)).map(|_| self.text(6)).collect(),
                        rows: (0..self.below(4)).map(|_| (0..self.below(4)).map(|_| self.text(6)).collect()).collect(),
                    },
                },
                _ => {
                    *serial += 1;
                    Block::Image {
                        alt: self.text(8),
                        src: format!("https://img.invalid/{serial}.png"),
                        title: self.chance(2).then(|| self.text(5)),
                    }
                }
            }
        }
    }

    #[test]
    fn render_property_random_blocks() {
        let mut rng = Lcg(0x5eed_1234_abcd_0042);
        let mut serial = 0;
        let all_off = RenderOptions { links: false, images: false };
        for _ in 0..400 {
            let blocks: Vec<Block> = (0..rng.below(8)).map(|_| rng.block(&mut serial)).collect();
            let plain_text = text(&blocks);
            let rendered = md(&blocks);
            let bare = markdown(&blocks, &all_off);

            assert!(!plain_text.contains(".invalid"), "URL in text: {plain_text:?} from {blocks:?}");
            assert!(!bare.contains(".invalid"), "URL with links and images off: {bare:?}");
            assert_eq!(plain_text, plain_text.trim());
            for out in [&rendered, &bare] {
                assert!(out.is_empty() || (out.ends_with('\n') && !out.ends_with("\n\n")), "{out:?}");
            }
            let unescaped = rendered.replace('\\', "");
            for word in plain_text.split_whitespace() {
                let word = word.replace('\\', "");
                assert!(unescaped.contains(&word), "{word:?} missing from {rendered:?} for {plain_text:?}");
            }
        }
    }
}
