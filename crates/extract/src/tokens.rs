//! Token counts with the o200k_base tokenizer, the one current OpenAI models use.

use regex::Regex;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::sync::OnceLock;
use tiktoken_rs::Rank;

pub const TOKENIZER: &str = "o200k_base";

/// The o200k_base vocabulary and its pre-splitting pattern, run on the
/// `regex` crate's automata.
///
/// The tokenizer's own pattern has one alternative the automata cannot run,
/// `\s+(?!\S)` (whitespace not followed by a non-space), which puts it on a
/// backtracking engine that reads some 7 MB/s. Without that alternative the
/// pattern is a plain regular expression, and what the lookahead did is done
/// by hand: a run of two or more whitespace characters that the plain `\s+`
/// alternative matched, and that a non-space follows, gives up its last
/// character to the next piece. The pieces, and so the counts, are the same
/// (`tests` compares them with the tokenizer's own on every kind of text).
struct Vocabulary {
    ranks: FxHashMap<Vec<u8>, Rank>,
    pattern: Regex,
}

fn vocabulary() -> Option<&'static Vocabulary> {
    static VOCABULARY: OnceLock<Option<Vocabulary>> = OnceLock::new();
    VOCABULARY
        .get_or_init(|| {
            let bpe = reference()?;
            let mut ranks = FxHashMap::default();
            for rank in 0..=MAX_RANK {
                if let Ok(bytes) = bpe.decode_bytes(&[rank]) {
                    ranks.insert(bytes, rank);
                }
            }
            let lookahead = r"\s+(?!\S)|";
            let source = tiktoken_rs::O200K_BASE_PAT_STR;
            if !source.contains(lookahead) {
                return None;
            }
            let pattern = Regex::new(&source.replacen(lookahead, "", 1)).ok()?;
            Some(Vocabulary { ranks, pattern })
        })
        .as_ref()
}

/// Ranks of ordinary tokens stop below the special tokens (199,999 and up).
const MAX_RANK: Rank = 199_998;

/// The tokenizer itself, for the vocabulary and as the reference in tests.
fn reference() -> Option<&'static tiktoken_rs::CoreBPE> {
    static BPE: OnceLock<Option<tiktoken_rs::CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

/// Pieces at least this long are merged with a heap: the tokenizer's simple
/// merge is quadratic in a piece's length, and a hostile page (megabytes of
/// letters or of blank lines) makes pieces that long.
const LONG_PIECE: usize = 128;

/// The number of o200k_base tokens in `text`.
pub fn count(text: &str) -> usize {
    let Some(vocabulary) = vocabulary() else {
        // The ranks ship inside the tokenizer crate; failing to load them is a
        // build defect, and a length estimate is better than no figure.
        return text.len().div_ceil(4);
    };
    let mut total = 0;
    let mut at = 0;
    while let Some(found) = vocabulary.pattern.find_at(text, at) {
        let mut end = found.end();
        let piece = found.as_str();
        // `\s+(?!\S)`: a whitespace run before a non-space keeps its last
        // character for the next piece (a run ending in a line break was
        // matched by `\s*[\r\n]+`, which comes first and keeps it all).
        if end < text.len() && piece.chars().all(char::is_whitespace) && !piece.ends_with(['\r', '\n']) {
            let last = piece.chars().next_back().map_or(0, char::len_utf8);
            if piece.len() > last {
                end -= last;
            }
        }
        total += count_piece(&text.as_bytes()[found.start()..end], &vocabulary.ranks);
        at = end;
    }
    total
}

fn count_piece(piece: &[u8], ranks: &FxHashMap<Vec<u8>, Rank>) -> usize {
    match piece.len() {
        0 => 0,
        _ if ranks.contains_key(piece) => 1,
        1 => 1,
        n if n >= LONG_PIECE => merged_parts(piece, ranks),
        _ => MERGED.with_borrow_mut(|seen| {
            if let Some(parts) = seen.get(piece) {
                return *parts as usize;
            }
            let parts = tiktoken_rs::byte_pair_split(piece, ranks).len();
            // Pages repeat their words, class names and URLs; a bounded memo
            // of merged pieces spares most merges.
            if seen.len() >= MEMO_ENTRIES {
                seen.clear();
            }
            seen.insert(piece.into(), parts as u32);
            parts
        }),
    }
}

const MEMO_ENTRIES: usize = 1 << 16;

thread_local! {
    static MERGED: std::cell::RefCell<FxHashMap<Box<[u8]>, u32>> = std::cell::RefCell::new(FxHashMap::default());
}

/// Byte-pair merging in O(n log n): the adjacent pair whose joined bytes have
/// the lowest rank is merged first, the leftmost among equals, until no pair
/// is in the vocabulary. Returns how many parts (tokens) remain.
fn merged_parts(piece: &[u8], ranks: &FxHashMap<Vec<u8>, Rank>) -> usize {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = piece.len();
    // Parts as a linked list over their start offsets: `next[i]` is where the
    // part starting at `i` ends; `prev[i]` where the one before it starts.
    let mut next: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
    let mut alive = vec![true; n];
    let rank_of = |start: usize, end: usize| ranks.get(&piece[start..end]).copied();
    let mut heap = BinaryHeap::new();
    for i in 0..n - 1 {
        if let Some(rank) = rank_of(i, i + 2) {
            heap.push(Reverse((rank, i, i + 2)));
        }
    }
    let mut parts = n;
    while let Some(Reverse((_, start, end))) = heap.pop() {
        // Stale: the left part was merged away, or its right neighbour changed.
        let mid = next[start];
        if !alive[start] || mid >= n || next[mid] != end {
            continue;
        }
        alive[mid] = false;
        next[start] = end;
        if end < n {
            prev[end] = start;
        }
        parts -= 1;
        if end < n {
            if let Some(rank) = rank_of(start, next[end]) {
                heap.push(Reverse((rank, start, next[end])));
            }
        }
        let before = prev[start];
        if before < n {
            if let Some(rank) = rank_of(before, end) {
                heap.push(Reverse((rank, before, end)));
            }
        }
    }
    parts
}

/// Raw HTML against what is returned.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenCounts {
    pub raw: usize,
    pub markdown: usize,
    pub text: usize,
    pub tokenizer: &'static str,
    /// 1 − markdown / raw: the share of tokens saved.
    pub reduction: f64,
}

impl TokenCounts {
    pub fn measure(raw_html: &str, markdown: &str, text: &str) -> TokenCounts {
        let raw = count(raw_html);
        let markdown_tokens = count(markdown);
        let reduction = if raw == 0 { 0.0 } else { 1.0 - markdown_tokens as f64 / raw as f64 };
        TokenCounts { raw, markdown: markdown_tokens, text: count(text), tokenizer: TOKENIZER, reduction }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokenizer's own count, through its backtracking pattern.
    fn expected(text: &str) -> usize {
        reference().unwrap().encode_ordinary(text).len()
    }

    #[test]
    fn counts_equal_the_tokenizers_on_every_kind_of_text() {
        let samples = [
            "",
            " ",
            "hello world",
            "  leading and trailing  ",
            "a  b   c    d",
            "line\nbreak\r\n\r\nand  \n  indented",
            "tabs\t\tand\u{a0}\u{a0}no-break spaces",
            "   \n",
            "x   ",
            "numbers 1234567 and 3.14159, 10,000",
            "It's they're we've I'm you'll he'd IT'S",
            "<div class=\"a b\" id='x'>\n    <p>Text &amp; more</p>\n  </div>",
            "  <!-- comment -->  <script>var a = [1, 2, 3];</script>",
            "日本語のテキストです。 中文文本。 한국어 텍스트입니다.",
            "Ünïcödé ÀÉÎÕÜ façade naïve — “quotes” … ‘single’",
            "emoji 🎉🎉 and  🙂",
            "CamelCaseWords andMixedCASE HTTPServer",
            "\u{2028}\u{2029}  \u{3000}\u{3000}x",
            "a\u{301}\u{301} combining  marks",
        ];
        for text in samples {
            assert_eq!(count(text), expected(text), "{text:?}");
        }
    }

    #[test]
    fn counts_equal_the_tokenizers_on_generated_text() {
        // A fixed pseudo-random mix of the characters the pattern treats apart.
        let alphabet = [
            " ", "  ", "\n", "\r\n", "\t", "a", "B", "é", "ß", "1", "23", "'s", "'", "<", ">", "/", "=", "\"", ".",
            ",", "日", "本", "ー", "한", "\u{a0}", "🙂", "\u{301}", "-", "_", "x", "Q",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let mut text = String::new();
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            assert_eq!(count(&text), expected(&text), "{text:?}");
        }
    }

    #[test]
    fn long_pieces_are_merged_exactly() {
        let blank_lines = "          \n        \n    ".repeat(200) + "x";
        let mut state = 7u32;
        let letters: String = (0..5_000)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from(b'a' + ((state >> 16) % 26) as u8)
            })
            .collect();
        for text in [blank_lines.as_str(), letters.as_str(), &"ab".repeat(3_000), &"日本".repeat(500)] {
            assert_eq!(count(text), expected(text), "{}…", &text[..40]);
        }
    }

    #[test]
    fn counts_are_real_tokens_not_characters() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello world"), 2);
        let c = TokenCounts::measure("<div class=\"x\"><p>hello world</p></div>", "hello world", "hello world");
        assert_eq!(c.markdown, 2);
        assert!(c.raw > c.markdown && c.reduction > 0.5 && c.reduction < 1.0);
    }
}
