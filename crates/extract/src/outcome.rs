//! What kind of page was extracted, and how far the extraction can be trusted.
//!
//! Every page gets an [`Outcome`]: an article-like page is `Ok`; a page that is
//! not HTML, shows nothing, is a bot check, asks the reader to sign in, or holds
//! too little text says so, so that a caller can retry, render, or skip it
//! instead of passing a captcha notice on as content. The rules are general —
//! lists of phrases and length conditions — never per site.
//!
//! Alongside it, a `confidence` in [0, 1] that the content returned is the
//! page's real article, with the signals it was computed from
//! ([`Heuristics`]).

use crate::dom::{Dom, NodeData, NodeId, ROOT, Tag};
use crate::metadata::Metadata;
use crate::model::{Block, Span};
use serde::Serialize;
use serde_json::Value;

/// What extraction found on a page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Content worth reading was found.
    #[default]
    Ok,
    /// The page shows no text at all.
    Empty,
    /// The response is not an HTML page: its `Content-Type` names another
    /// format, or its bytes are binary, or (without a `Content-Type`) it holds
    /// no markup at all. Nothing is extracted from it.
    NotHtml,
    /// A captcha or bot check stands in for the page.
    ChallengePage,
    /// A sign-in or subscription prompt stands in for the page.
    AuthWall,
    /// Content was found, but less than [`LOW_CONTENT_WORDS`] words of it.
    LowContent,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Empty => "empty",
            Outcome::NotHtml => "not_html",
            Outcome::ChallengePage => "challenge_page",
            Outcome::AuthWall => "auth_wall",
            Outcome::LowContent => "low_content",
        }
    }

    /// The highest confidence a page with this outcome can have: whatever its
    /// other signals say, a bot check or a login form is not the article.
    pub fn confidence_cap(self) -> f32 {
        match self {
            Outcome::Ok => 1.0,
            Outcome::LowContent => 0.3,
            Outcome::AuthWall => 0.15,
            Outcome::ChallengePage => 0.05,
            Outcome::Empty | Outcome::NotHtml => 0.0,
        }
    }
}

/// Below this many words of main text a page is `LowContent`.
///
/// Fifty words are two or three sentences. Under that, what was found is
/// almost never an article: error and "page not found" pages, stubs, landing
/// and index pages, teasers, or content a script fills in after load. The text
/// is still returned, but a caller should not take it for the page's content
/// without looking (or try rendering the page). Real articles rarely come this
/// short; those that do are flagged, not dropped.
pub const LOW_CONTENT_WORDS: usize = 50;

/// Only a page whose main text is shorter than this is looked at for sign-in
/// prompts: a long article stays `Ok` whatever its page furniture says.
pub const SHORT_CONTENT_WORDS: usize = 150;

/// Only a page whose whole visible text is shorter than this can be a bot
/// check: those pages say a sentence or two, so a real page that merely
/// mentions captchas is never taken for one.
pub const CHALLENGE_MAX_WORDS: usize = 300;

/// Phrases of captcha and bot-check pages, lower case. Checked on the visible
/// text and the title, never on scripts or attribute values.
const CHALLENGE_PHRASES: &[&str] = &[
    "verify you are human",
    "verify you're human",
    "verifying you are human",
    "verify that you are human",
    "verify that you're human",
    "confirm you are human",
    "confirm that you are human",
    "prove you are human",
    "prove you're human",
    "checking your browser",
    "verifying your browser",
    "checking if the site connection is secure",
    "needs to review the security of your connection",
    "are you a robot",
    "i'm not a robot",
    "i am not a robot",
    "you're not a robot",
    "you are not a robot",
    "robot or human",
    "human or robot",
    "complete the security check",
    "completing the security check",
    "enable javascript and cookies to continue",
    "unusual traffic from your computer",
    "unusual traffic from your network",
    "detected unusual traffic",
    "unusual activity from your",
    "press & hold",
    "press and hold the button",
    "pardon our interruption",
    "please solve the captcha",
    "please complete the captcha",
    "solve this captcha",
    "why have i been blocked",
    "ddos protection by",
    "request unsuccessful. incapsula",
    "automated access to this page",
    "we need to make sure you are not a robot",
    "to continue, please type the characters",
    "please enable js and disable any ad blocker",
];

/// Titles of bot-check pages, lower case (too common in running text to be
/// looked for there).
const CHALLENGE_TITLES: &[&str] = &[
    "just a moment...",
    "attention required!",
    "access denied",
    "security check",
    "human verification",
    "are you a robot",
    "robot or human",
    "pardon our interruption",
    "one more step",
];

/// Phrases that mark a bot check only together.
const CHALLENGE_PAIRS: &[(&str, &str)] = &[
    ("access denied", "captcha"),
    ("access denied", "you don't have permission to access"),
    ("blocked", "captcha"),
    ("security check", "captcha"),
    ("robot", "captcha"),
];

/// The start of a sign-in or subscription prompt, lower case: a prompt when an
/// [`AUTH_GOALS`] follows ("log in to continue", "subscribe to keep reading",
/// "you must be logged in to view this page") — not when it asks for something
/// else ("log in to post a comment", "sign up to our newsletter").
const AUTH_PROMPTS: &[&str] = &[
    "sign in to ",
    "signed in to ",
    "log in to ",
    "logged in to ",
    "login to ",
    "log on to ",
    "subscribe to ",
    "subscribe now to ",
    "subscriber to ",
    "register to ",
    "registered to ",
    "sign up to ",
    "create a free account to ",
    "create an account to ",
    "become a member to ",
    "member to ",
];

/// What a prompt asks the reader to sign in for: the content itself.
const AUTH_GOALS: &[&str] =
    &["continue", "keep reading", "read", "view", "access", "unlock", "finish reading", "see the full", "see this"];

/// Sign-in and subscription walls in so many words, lower case.
const AUTH_PHRASES: &[&str] = &[
    "this content is for subscribers",
    "this content is only available to subscribers",
    "this article is for subscribers",
    "this article is only available to subscribers",
    "available to subscribers only",
    "available exclusively to subscribers",
    "exclusive to subscribers",
    "for subscribers only",
    "subscribers only",
    "subscriber-only",
    "this content is for members",
    "this content is only available to members",
    "for members only",
    "members-only content",
];

/// Prompts that stand in for content only together.
const AUTH_PAIRS: &[(&str, &str)] = &[
    ("to continue reading", "subscribe"),
    ("to keep reading", "subscribe"),
    ("to continue reading", "sign in"),
    ("to continue reading", "log in"),
];

/// The signals the confidence is computed from, as measured and as scored.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Heuristics {
    /// Words of main text: runs of non-space characters (in scripts written
    /// without spaces, every two characters count as a word).
    pub main_words: usize,
    /// Paragraphs and quotes of at least ten words.
    pub paragraphs: usize,
    /// Whether a content container stood out (otherwise the whole body was taken).
    pub container_found: bool,
    /// The content container's share of the page's visible text (1 when none
    /// stood out and the whole body was taken).
    pub content_share: f32,
    /// The share of the main text that is link text.
    pub link_density: f32,
    /// JSON-LD says Article (or a kind of it), or `og:type` is `article`.
    pub article_type: bool,
    /// The page gives a publication date.
    pub published: bool,
    /// Each signal scaled to [0, 1] as it enters the confidence.
    pub scores: Scores,
}

/// The signals of [`Heuristics`], each scaled to [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scores {
    pub words: f32,
    pub share: f32,
    pub links: f32,
    pub metadata: f32,
    pub paragraphs: f32,
}

/// A page's outcome, confidence and the signals behind them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    pub outcome: Outcome,
    pub confidence: f32,
    pub heuristics: Heuristics,
}

impl Assessment {
    pub fn not_html() -> Assessment {
        Assessment { outcome: Outcome::NotHtml, confidence: 0.0, heuristics: Heuristics::default() }
    }
}

// ---------------------------------------------------------------------------
// Is it HTML at all?

/// What a `Content-Type` declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Declared {
    Html,
    /// No type, or one servers send for anything: look at the bytes.
    Unknown,
    Other,
}

fn declared(content_type: Option<&str>) -> Declared {
    let Some(content_type) = content_type else { return Declared::Unknown };
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "text/html" | "application/xhtml+xml" | "application/vnd.wap.xhtml+xml" => Declared::Html,
        ""
        | "*/*"
        | "application/octet-stream"
        | "binary/octet-stream"
        | "application/unknown"
        | "unknown/unknown"
        | "application/x-unknown-content-type"
        | "text/plain"
        | "text/xml"
        | "application/xml" => Declared::Unknown,
        m if !m.contains('/') => Declared::Unknown,
        _ => Declared::Other,
    }
}

/// Whether the bytes are to be extracted as HTML: the `Content-Type` does not
/// name another format, the bytes are not binary, and, when the type says
/// nothing, they hold markup (or nothing at all).
pub fn is_html(bytes: &[u8], content_type: Option<&str>) -> bool {
    match declared(content_type) {
        Declared::Other => false,
        Declared::Html => !looks_binary(bytes),
        // An empty response is an empty page, not another format.
        Declared::Unknown => !looks_binary(bytes) && (has_markup(bytes) || bytes.trim_ascii().is_empty()),
    }
}

/// Signatures of common binary formats.
const MAGIC: &[&[u8]] = &[b"%PDF-", b"\x89PNG", b"GIF87a", b"GIF89a", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b"];

/// How far into the bytes binary content is looked for.
const SNIFF: usize = 1024;

/// A format signature, a NUL byte or more than 5% control characters in the
/// first kilobyte. UTF-16 text (which has NULs) announces itself with a BOM.
pub fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\xff\xfe") || bytes.starts_with(b"\xfe\xff") {
        return false;
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if MAGIC.iter().any(|m| bytes.starts_with(m)) {
        return true;
    }
    let head = &bytes[..bytes.len().min(SNIFF)];
    if memchr::memchr(0, head).is_some() {
        return true;
    }
    // Tab, line feed, form feed, carriage return and escape (ISO-2022-JP) are text.
    let control = head.iter().filter(|b| (**b < 0x20 && !matches!(b, 0x09 | 0x0a | 0x0c | 0x0d | 0x1b)) || **b == 0x7f);
    control.count() * 20 > head.len()
}

/// A tag, comment or doctype anywhere: `<` followed by a letter, `/`, `!` or
/// `?`. UTF-16 text (told by its BOM) is read as 16-bit units.
pub fn has_markup(bytes: &[u8]) -> bool {
    let opens = |b: u8| b.is_ascii_alphabetic() || matches!(b, b'/' | b'!' | b'?');
    let utf16 = |unit: fn([u8; 2]) -> u16| {
        let mut after_open = false;
        bytes[2..].chunks_exact(2).any(|c| {
            let unit = unit([c[0], c[1]]);
            let found = after_open && u8::try_from(unit).is_ok_and(opens);
            after_open = unit == u16::from(b'<');
            found
        })
    };
    if bytes.starts_with(b"\xff\xfe") {
        return utf16(u16::from_le_bytes);
    }
    if bytes.starts_with(b"\xfe\xff") {
        return utf16(u16::from_be_bytes);
    }
    memchr::memchr_iter(b'<', bytes).any(|at| bytes.get(at + 1).is_some_and(|b| opens(*b)))
}

// ---------------------------------------------------------------------------
// Words

/// Counts words across pieces of text: runs of non-space characters, except
/// in scripts written without spaces (Chinese, Japanese, Thai, Lao), where
/// every two characters count as one word besides.
///
/// Works on bytes in one pass the compiler can vectorise — a counter of words
/// runs on every page, so it must cost next to nothing: control characters
/// count as spaces, and the unspaced scripts are told by their UTF-8 lead
/// bytes (U+3000–U+9FFF: `E3`–`E9`; U+0E00–U+0EFF: `E0 B8`–`E0 BB`).
pub struct WordCounter {
    words: usize,
    unspaced: usize,
    /// The last piece ended in a space (or nothing was fed yet).
    after_space: bool,
}

impl Default for WordCounter {
    fn default() -> Self {
        WordCounter { words: 0, unspaced: 0, after_space: true }
    }
}

fn is_space(b: u8) -> bool {
    b <= b' '
}

impl WordCounter {
    /// Counts the words of `text`, continuing a word the last piece ended in;
    /// returns the visible (non-space) bytes of `text`.
    pub fn feed(&mut self, text: &str) -> usize {
        let bytes = text.as_bytes();
        let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else { return 0 };
        let mut starts = usize::from(self.after_space && !is_space(first));
        let mut unspaced = usize::from((0xe3..=0xe9).contains(&last));
        let mut visible = usize::from(!is_space(last));
        for pair in bytes.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            starts += usize::from(is_space(a) & !is_space(b));
            unspaced += usize::from((0xe3..=0xe9).contains(&a) | ((a == 0xe0) & (b & 0xfc == 0xb8)));
            visible += usize::from(!is_space(a));
        }
        self.words += starts;
        self.unspaced += unspaced;
        self.after_space = is_space(last);
        visible
    }

    /// Ends the current word (between blocks or table cells).
    pub fn end(&mut self) {
        self.after_space = true;
    }

    pub fn total(&self) -> usize {
        self.words + self.unspaced.div_ceil(2)
    }
}

/// Counts words of a text.
pub fn words(text: &str) -> usize {
    let mut counter = WordCounter::default();
    counter.feed(text);
    counter.total()
}

// ---------------------------------------------------------------------------
// The content

/// Measurements of the extracted blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ContentStats {
    pub words: usize,
    pub paragraphs: usize,
    /// Visible characters (not whitespace), as UTF-8 bytes.
    pub chars: usize,
    /// Of which inside links.
    pub link_chars: usize,
}

/// Paragraphs shorter than this many words do not count as paragraphs.
const PARAGRAPH_WORDS: usize = 10;

/// Words, paragraphs and link share of the blocks, in one pass over their text.
pub fn content_stats(blocks: &[Block]) -> ContentStats {
    let mut stats = ContentStats::default();
    let mut counter = WordCounter::default();
    let spans_of = |spans: &[Span], counter: &mut WordCounter, stats: &mut ContentStats| {
        for span in spans {
            let chars = counter.feed(&span.text);
            stats.chars += chars;
            if span.href.is_some() {
                stats.link_chars += chars;
            }
        }
    };
    for block in blocks {
        let before = counter.total();
        match block {
            Block::Heading { spans, .. } | Block::ListItem { spans, .. } => spans_of(spans, &mut counter, &mut stats),
            Block::Paragraph { spans } | Block::Quote { spans } => {
                spans_of(spans, &mut counter, &mut stats);
                if counter.total() - before >= PARAGRAPH_WORDS {
                    stats.paragraphs += 1;
                }
            }
            Block::Code { text, .. } => stats.chars += counter.feed(text),
            Block::Table { table } => {
                let cells = table.caption.iter().chain(&table.headers).chain(table.rows.iter().flatten());
                for cell in cells {
                    stats.chars += counter.feed(cell);
                    counter.end();
                }
            }
            Block::Image { .. } => {}
        }
        counter.end();
    }
    stats.words = counter.total();
    stats
}

// ---------------------------------------------------------------------------
// The visible page

/// What a reader sees of the whole page, for telling walls from content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Visible {
    /// The body's visible text, lower case, whitespace collapsed, curly
    /// apostrophes straightened; `<noscript>` included (it is what a client
    /// without scripts is shown).
    pub text: String,
    /// The `<title>`, normalised the same way.
    pub title: String,
    pub words: usize,
    /// A visible password field.
    pub password: bool,
}

/// Hidden by attribute or inline style.
fn hidden(dom: &Dom, id: NodeId) -> bool {
    dom.attrs(id).iter().any(|attr| {
        let name = dom.slice(attr.name);
        name.eq_ignore_ascii_case("hidden")
            || (name.eq_ignore_ascii_case("style") && hidden_style(dom.slice(attr.value)))
    })
}

/// `display: none` or `visibility: hidden` in an inline style.
fn hidden_style(style: &str) -> bool {
    let has = |needle: &[u8]| style.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
    if !has(b"none") && !has(b"hidden") {
        return false;
    }
    let style: String = style.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    style.contains("display:none") || style.contains("visibility:hidden")
}

/// Markup removed from raw text (the content of `<noscript>`), decoded.
fn strip_tags(raw: &str, out: &mut Normalised) {
    let mut rest = raw;
    while let Some(lt) = rest.find('<') {
        out.push(&crate::entities::decode(&rest[..lt]));
        out.separate();
        rest = match rest[lt..].find('>') {
            Some(gt) => &rest[lt + gt + 1..],
            None => "",
        };
    }
    out.push(&crate::entities::decode(rest));
}

/// Text lower-cased, whitespace collapsed to single spaces, curly apostrophes
/// straightened, appended piece by piece.
#[derive(Default)]
struct Normalised {
    /// Always UTF-8: whole ASCII bytes and whole encoded characters are pushed.
    out: Vec<u8>,
    space: bool,
}

impl Normalised {
    fn push(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii() {
                i += 1;
                if b.is_ascii_whitespace() {
                    self.space = true;
                } else {
                    self.gap();
                    self.out.push(b.to_ascii_lowercase());
                }
                continue;
            }
            let Some(c) = text[i..].chars().next() else { break };
            i += c.len_utf8();
            if c.is_whitespace() {
                self.space = true;
                continue;
            }
            self.gap();
            let mut buf = [0u8; 4];
            match c {
                '\u{2018}' | '\u{2019}' | '\u{02bc}' => self.out.push(b'\''),
                c => c.to_lowercase().for_each(|l| self.out.extend_from_slice(l.encode_utf8(&mut buf).as_bytes())),
            }
        }
    }

    /// A word boundary, as between two elements.
    fn separate(&mut self) {
        self.space = true;
    }

    fn gap(&mut self) {
        if self.space && !self.out.is_empty() {
            self.out.push(b' ');
        }
        self.space = false;
    }

    fn finish(self) -> String {
        String::from_utf8(self.out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

fn normalise(text: &str) -> String {
    let mut n = Normalised::default();
    n.push(text);
    n.finish()
}

/// The page's visible text: everything but scripts, styles, templates,
/// embedded objects, form controls' own values and hidden elements.
pub fn visible(dom: &Dom) -> Visible {
    let mut text = Normalised::default();
    let mut title = String::new();
    let mut password = false;
    let mut nodes = dom.descendants(ROOT);
    while let Some(id) = nodes.next() {
        match dom.node(id).data {
            NodeData::Text(_) => text.push(&dom.text(id)),
            NodeData::Element { tag, .. } => {
                text.separate();
                let skip = match tag {
                    Tag::Script
                    | Tag::Style
                    | Tag::Template
                    | Tag::Svg
                    | Tag::Math
                    | Tag::Iframe
                    | Tag::Object
                    | Tag::Embed
                    | Tag::Canvas
                    | Tag::Select
                    | Tag::Textarea
                    | Tag::Noembed
                    | Tag::Noframes => true,
                    Tag::Title => {
                        if title.is_empty() {
                            title = normalise(&dom.text_content(id));
                        }
                        true
                    }
                    Tag::Noscript => {
                        for child in dom.children(id) {
                            strip_tags(dom.raw_text(child), &mut text);
                        }
                        true
                    }
                    Tag::Input => {
                        let kind = dom.attr_raw(id, "type").unwrap_or("");
                        password |= kind.trim().eq_ignore_ascii_case("password") && !hidden(dom, id);
                        true
                    }
                    _ => hidden(dom, id),
                };
                if skip {
                    nodes.skip_subtree(id);
                }
            }
            NodeData::Document => {}
        }
    }
    let text = text.finish();
    let words = words(&text);
    Visible { text, title, words, password }
}

fn any_phrase(haystacks: &[&str], phrases: &[&str], pairs: &[(&str, &str)]) -> bool {
    let has = |needle: &str| haystacks.iter().any(|h| h.contains(needle));
    phrases.iter().any(|p| has(p)) || pairs.iter().any(|(a, b)| has(a) && has(b))
}

/// A captcha or bot check: one of its phrases in the visible text or the
/// title, or a bot-check title, on a page that says little else.
pub fn is_challenge(visible: &Visible) -> bool {
    visible.words < CHALLENGE_MAX_WORDS
        && (any_phrase(&[&visible.text, &visible.title], CHALLENGE_PHRASES, CHALLENGE_PAIRS)
            || CHALLENGE_TITLES.iter().any(|t| visible.title.contains(t)))
}

/// Whether the text asks the reader to sign in or subscribe to go on.
fn prompts(text: &str) -> bool {
    AUTH_PROMPTS.iter().any(|prompt| {
        text.match_indices(prompt).any(|(at, _)| {
            let rest = &text[at + prompt.len()..];
            AUTH_GOALS.iter().any(|goal| rest.starts_with(goal))
        })
    })
}

/// A sign-in or subscription wall, on a page whose content is short: a prompt
/// to sign in or subscribe to go on, or a password field with next to no
/// content beside it (a login page).
pub fn is_auth_wall(visible: &Visible, main_words: usize) -> bool {
    main_words < SHORT_CONTENT_WORDS
        && (any_phrase(&[&visible.text, &visible.title], AUTH_PHRASES, AUTH_PAIRS)
            || prompts(&visible.text)
            || (visible.password && main_words < LOW_CONTENT_WORDS))
}

// ---------------------------------------------------------------------------
// Deciding

/// Whether the page's metadata says it is an article.
fn article_type(metadata: &Metadata) -> bool {
    let article = |t: &str| {
        t.ends_with("Article") || matches!(t, "BlogPosting" | "LiveBlogPosting" | "Report" | "SocialMediaPosting")
    };
    let ld = metadata.json_ld.iter().any(|v| match v.get("@type") {
        Some(Value::String(t)) => article(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(article),
        _ => false,
    });
    ld || metadata
        .open_graph
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("article"))
}

/// The weights of the confidence's signals; they sum to 1.
const WEIGHTS: Scores = Scores { words: 0.30, share: 0.15, links: 0.25, metadata: 0.15, paragraphs: 0.15 };

/// What a page's extraction is worth: its outcome and the confidence that the
/// blocks are the page's real article.
///
/// `content_share` is the chosen container's share of the page's visible text,
/// `None` when no container stood out. The page's own visible text is walked
/// only when the main text is short (under [`SHORT_CONTENT_WORDS`]), so long
/// articles cost one pass over their blocks.
///
/// The confidence is a weighted sum of five signals, each in [0, 1]:
///
/// ```text
/// words      = 1 − e^(−main words / 200)             saturates: 50 → 0.22, 200 → 0.63, 600 → 0.95
/// share      = min(content share / 0.5, 1)            0.25 when no container stood out
/// links      = clamp(1 − link density / 0.5, 0, 1)    link lists and menus score 0
/// metadata   = (article type + published date) / 2   JSON-LD Article or og:type=article; a date
/// paragraphs = min(paragraphs of ≥ 10 words / 5, 1)
///
/// confidence = 0.30·words + 0.15·share + 0.25·links + 0.15·metadata + 0.15·paragraphs
/// ```
///
/// capped by the outcome ([`Outcome::confidence_cap`]): 1 for `Ok`, 0.3 for
/// `LowContent`, 0.15 for `AuthWall`, 0.05 for `ChallengePage`, 0 for `Empty`
/// and `NotHtml`.
pub fn assess(dom: &Dom, metadata: &Metadata, blocks: &[Block], content_share: Option<f32>) -> Assessment {
    let stats = content_stats(blocks);
    let outcome = if stats.words < SHORT_CONTENT_WORDS {
        let visible = visible(dom);
        decide(&visible, stats.words)
    } else {
        Outcome::Ok
    };
    let link_density = if stats.chars == 0 { 0.0 } else { stats.link_chars as f32 / stats.chars as f32 };
    let article_type = article_type(metadata);
    let published = metadata.published.is_some();
    let scores = Scores {
        words: 1.0 - (-(stats.words as f32) / 200.0).exp(),
        share: content_share.map_or(0.25, |s| (s / 0.5).min(1.0)),
        links: (1.0 - link_density / 0.5).clamp(0.0, 1.0),
        metadata: (u8::from(article_type) + u8::from(published)) as f32 / 2.0,
        paragraphs: (stats.paragraphs as f32 / 5.0).min(1.0),
    };
    let confidence = WEIGHTS.words * scores.words
        + WEIGHTS.share * scores.share
        + WEIGHTS.links * scores.links
        + WEIGHTS.metadata * scores.metadata
        + WEIGHTS.paragraphs * scores.paragraphs;
    let confidence = confidence.clamp(0.0, 1.0).min(outcome.confidence_cap());
    let heuristics = Heuristics {
        main_words: stats.words,
        paragraphs: stats.paragraphs,
        container_found: content_share.is_some(),
        content_share: content_share.unwrap_or(1.0),
        link_density,
        article_type,
        published,
        scores,
    };
    Assessment { outcome, confidence, heuristics }
}

/// The outcome of a page with short main text, from what the page shows.
fn decide(visible: &Visible, main_words: usize) -> Outcome {
    if visible.words == 0 && main_words == 0 {
        Outcome::Empty
    } else if is_challenge(visible) {
        Outcome::ChallengePage
    } else if is_auth_wall(visible, main_words) {
        Outcome::AuthWall
    } else if main_words < LOW_CONTENT_WORDS {
        Outcome::LowContent
    } else {
        Outcome::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Table;

    #[test]
    fn content_types_that_are_not_html_are_not_html() {
        let page = b"<!doctype html><p>Hello</p>";
        assert!(is_html(page, Some("text/html; charset=utf-8")));
        assert!(is_html(page, Some("application/xhtml+xml")));
        assert!(is_html(page, Some("TEXT/HTML")));
        assert!(is_html(page, None));
        assert!(is_html(page, Some("application/octet-stream")));
        for other in ["application/pdf", "image/png", "application/json", "text/css", "video/mp4"] {
            assert!(!is_html(page, Some(other)), "{other}");
        }
    }

    #[test]
    fn binary_bytes_and_plain_text_are_not_html() {
        assert!(looks_binary(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"));
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(looks_binary(b"<html>\0\0\0\x01\x02"));
        assert!(looks_binary(&[0x01, 0x02, 0x03, 0x04, 0x05, b'a', b'b', b'c', 0x06, 0x07]));
        assert!(!looks_binary("<p>Grüße, 日本語 \t\r\n</p>".as_bytes()));
        assert!(!looks_binary(b"\xff\xfe<\0p\0>\0"), "UTF-16 with a BOM is text");
        assert!(!is_html(b"%PDF-1.4 <not html>", Some("text/html")));
        assert!(!is_html(b"just some words, no markup", None));
        assert!(is_html(b"", None) && is_html(b" \n", None), "an empty response is an empty page");
        assert!(is_html(b"just some words, no markup", Some("text/html")));
        assert!(has_markup(b"text <!-- comment -->") && !has_markup(b"1 < 2 and 3 > 2"));
    }

    #[test]
    fn words_are_counted_across_spans_and_in_unspaced_scripts() {
        assert_eq!(words("The quick brown fox — jumps!"), 6);
        assert_eq!(words("  \n\t"), 0);
        assert_eq!(words("日本語のテキスト"), 1 + 4);
        assert_eq!(words("ภาษาไทย"), 1 + 4);
        assert_eq!(words("Ünïcödé wörds, naïve café"), 4);
        let mut counter = WordCounter::default();
        counter.feed("hyper");
        counter.feed("text link");
        assert_eq!(counter.total(), 2);
        counter.end();
        counter.feed("next");
        assert_eq!(counter.total(), 3);
    }

    #[test]
    fn content_stats_count_paragraphs_and_links() {
        let link = Span { href: Some("https://example.com/".into()), ..Span::plain("a link") };
        let blocks = vec![
            Block::Heading { level: 2, spans: vec![Span::plain("A heading of four")] },
            Block::Paragraph { spans: vec![Span::plain("one two three four five six seven eight nine "), link] },
            Block::Paragraph { spans: vec![Span::plain("too short")] },
            Block::Table { table: Table { caption: None, headers: vec!["a".into()], rows: vec![vec!["b c".into()]] } },
        ];
        let stats = content_stats(&blocks);
        assert_eq!(stats.words, 4 + 11 + 2 + 3);
        assert_eq!(stats.paragraphs, 1);
        assert_eq!(stats.link_chars, 5);
    }

    #[test]
    fn the_visible_text_leaves_out_scripts_and_hidden_elements_but_reads_noscript() {
        let dom = crate::parse::parse(
            r#"<html><head><title>Just a moment...</title><script>var verify = "are you a robot";</script></head>
            <body><div style="display: none">Hidden words</div><p>Shown&nbsp;text</p>
            <noscript><div><span>Enable JavaScript and cookies to continue</span></div></noscript>
            <input type="password" name="p"></body></html>"#
                .to_owned(),
        );
        let v = visible(&dom);
        assert_eq!(v.title, "just a moment...");
        assert_eq!(v.text, "shown text enable javascript and cookies to continue");
        assert!(v.password);
        assert_eq!(v.words, 8);
    }

    #[test]
    fn the_outcome_follows_from_what_the_page_shows() {
        let page =
            |text: &str, words: usize| Visible { text: text.into(), title: String::new(), words, password: false };
        assert_eq!(decide(&page("", 0), 0), Outcome::Empty);
        assert_eq!(decide(&page("checking your browser before accessing example.com", 6), 0), Outcome::ChallengePage);
        assert_eq!(decide(&page("access denied. please complete the captcha below", 7), 0), Outcome::ChallengePage);
        assert_eq!(decide(&page("a long page that says checking your browser once", 5000), 60), Outcome::Ok);
        assert_eq!(decide(&page("subscribe to continue reading", 120), 100), Outcome::AuthWall);
        assert_eq!(decide(&page("subscribe to continue reading", 500), 200), Outcome::Ok);
        assert_eq!(decide(&page("some short note", 3), 3), Outcome::LowContent);
        let login = Visible { password: true, ..page("welcome back email password", 4) };
        assert_eq!(decide(&login, 2), Outcome::AuthWall);
    }

    #[test]
    fn prompts_ask_for_the_content_not_for_comments() {
        assert!(prompts("please log in to continue reading this story"));
        assert!(prompts("you must be logged in to view this page"));
        assert!(prompts("subscribe to keep reading"));
        assert!(prompts("sign in to read the full article"));
        assert!(!prompts("you must log in to post a comment"));
        assert!(!prompts("sign up to our newsletter"));
        assert!(!prompts("register to vote by friday"));
    }

    #[test]
    fn outcomes_cap_the_confidence() {
        assert_eq!(Outcome::NotHtml.confidence_cap(), 0.0);
        assert!(Outcome::ChallengePage.confidence_cap() < Outcome::LowContent.confidence_cap());
        assert_eq!(serde_json::to_string(&Outcome::ChallengePage).unwrap(), "\"challenge_page\"");
        assert_eq!(Outcome::AuthWall.as_str(), "auth_wall");
    }
}
