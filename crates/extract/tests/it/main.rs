//! Hostile input, proven bounded: the extraction engine given pages built to
//! break it — elements nested a hundred thousand deep, pages of fifty
//! megabytes, entity bombs, binary noise, broken encodings, tables and
//! attribute lists past any real page — finishes, keeps what it builds
//! proportional to its input, and still returns a sane document; and
//! properties that hold for every input, checked over inputs drawn from a
//! fixed-seed generator so that every run checks the same cases.
//!
//! Sizes are the full ones in optimised builds (`cargo test --release`) and
//! smaller in debug builds, where unoptimised code would take minutes on the
//! largest. Time is asserted only in optimised builds (see `timing`); memory
//! through what is kept: node counts and output sizes proportional to the input.

mod hostile;
mod languages;
mod properties;
mod regressions;
mod timing;

use anno_extract::{Document, Options, Outcome, extract};

/// The address pages are extracted as.
pub const URL: &str = "https://news.example.com/2024/05/17/story.html";

/// Whether this is an optimised build, where the full sizes run and time is
/// asserted.
pub const OPTIMISED: bool = !cfg!(debug_assertions);

/// `full` in an optimised build, `debug` in a debug one.
pub fn size(full: usize, debug: usize) -> usize {
    if OPTIMISED { full } else { debug }
}

/// A page extracted: the document, and its renderings taken out of it.
pub struct Extracted {
    pub doc: Document,
    pub text: String,
    pub markdown: String,
}

/// Extracts `bytes` as served with `content_type`, the main content only or
/// the whole page, with every other option at its default but token counting,
/// which costs more than extraction (see `properties` and `timing` for it).
/// A panic names the input.
pub fn extract_as(bytes: &[u8], content_type: Option<&str>, main_content: bool) -> Extracted {
    extract_with(bytes, content_type, &Options { main_content, count_tokens: false, ..Options::default() })
}

/// Extracts `bytes` with `options`. A panic names the input.
pub fn extract_with(bytes: &[u8], content_type: Option<&str>, options: &Options) -> Extracted {
    let run = std::panic::catch_unwind(|| {
        let mut doc = extract(bytes, URL, content_type, options);
        let text = std::mem::take(&mut doc.text);
        let markdown = std::mem::take(&mut doc.markdown);
        Extracted { doc, text, markdown }
    });
    match run {
        Ok(out) => out,
        Err(_) => panic!(
            "extraction panicked ({options:?}, content type {content_type:?}) on {} bytes: {}",
            bytes.len(),
            preview(bytes)
        ),
    }
}

/// The main content of `bytes`, served without a `Content-Type`.
pub fn run(bytes: &[u8]) -> Extracted {
    extract_as(bytes, None, true)
}

/// An input, escaped, for a failure message: whole up to 16 KB so that the
/// case can be replayed, its start otherwise.
pub fn preview(bytes: &[u8]) -> String {
    let shown = if bytes.len() <= 16 << 10 { bytes } else { &bytes[..300] };
    let more = if bytes.len() > shown.len() { "…" } else { "" };
    format!("{:?}{more}", String::from_utf8_lossy(shown))
}

/// What holds for any input: the output is proportional to the input and the
/// renderings are well formed.
///
/// Decoding at most triples a byte (an invalid or a legacy byte becomes a
/// three-byte character) and character references and whitespace only shrink,
/// so the text is at most three times the input. Markdown adds escapes,
/// markers and absolute URLs, a bounded factor more; the indentation of nested
/// list items is left out of that measure (see `regressions` for what it can
/// grow to).
pub fn assert_sane(input: &[u8], out: &Extracted) {
    let n = input.len();
    assert!(
        out.text.len() <= 3 * n + 16,
        "text of {} bytes from {n} bytes of input: {}",
        out.text.len(),
        preview(input)
    );
    let unindented: usize = out.markdown.lines().map(|line| line.trim_start_matches(' ').len() + 1).sum();
    assert!(
        unindented <= 8 * n + 1024,
        "markdown of {unindented} bytes (unindented) from {n} bytes of input: {}",
        preview(input)
    );
    assert_eq!(out.text.trim(), out.text, "text is trimmed: {}", preview(input));
    assert!(out.markdown.is_empty() || out.markdown.ends_with('\n'), "markdown ends with a newline");
    let doc = &out.doc;
    assert!((0.0..=1.0).contains(&doc.confidence), "confidence {}", doc.confidence);
    if doc.blocks.is_empty() {
        assert!(out.text.is_empty() && out.markdown.is_empty(), "no blocks, no output: {}", preview(input));
        assert_ne!(doc.outcome, Outcome::Ok, "nothing found is not an article: {}", preview(input));
    }
    if doc.outcome == Outcome::NotHtml {
        assert!(doc.blocks.is_empty() && doc.tokens.is_none() && doc.confidence == 0.0);
    }
    if matches!(doc.outcome, Outcome::Empty | Outcome::NotHtml) {
        // Punctuation alone (`=/>`) counts no words.
        assert!(!out.text.chars().any(char::is_alphanumeric), "text {:?} yet {:?}", out.text, doc.outcome);
    }
    let tables = doc.blocks.iter().filter(|b| matches!(b, anno_extract::Block::Table { .. })).count();
    assert_eq!(doc.tables.len(), tables, "every table block is in `tables`");
    for block in &doc.blocks {
        for link in block.links() {
            assert!(link.href.contains(':'), "links are absolute: {}", link.href);
        }
    }
}

/// Extracts with and without main-content detection, checks both and
/// returns them in that order.
pub fn sane_both(input: &[u8]) -> [Extracted; 2] {
    [true, false].map(|main_content| {
        let out = extract_as(input, None, main_content);
        assert_sane(input, &out);
        out
    })
}

/// Extracts with and without main-content detection, checks both and returns
/// the main content.
pub fn sane(input: &[u8]) -> Extracted {
    let [main, _] = sane_both(input);
    main
}

/// `bytes` behind a kilobyte of clean markup: the sniffer that turns binary
/// away looks at the first kilobyte only, so what follows reaches the parser
/// whatever it is.
pub fn past_the_sniffer(bytes: &[u8]) -> Vec<u8> {
    let mut out = b"<!DOCTYPE html><html><head><title>Noise</title></head><body><p>".to_vec();
    out.resize(1024, b' ');
    out.extend_from_slice(bytes);
    out
}

/// The parsed tree's size: never more than one node per byte of input.
pub fn assert_linear_tree(input: &str) {
    let dom = anno_extract::parse::parse(input.to_owned());
    assert!(dom.len() <= input.len() + 1, "{} nodes from {} bytes", dom.len(), input.len());
}

/// A fixed-seed linear congruential generator (Knuth's MMIX constants):
/// every run draws the same cases.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next_u64() >> 7) as u8).collect()
    }
}
