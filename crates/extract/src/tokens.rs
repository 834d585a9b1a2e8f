//! Token counts with the o200k_base tokenizer, the one current OpenAI models use.

use serde::Serialize;
use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

pub const TOKENIZER: &str = "o200k_base";

fn bpe() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

/// The number of o200k_base tokens in `text`.
pub fn count(text: &str) -> usize {
    match bpe() {
        Some(bpe) => chunks(text).map(|chunk| bpe.encode_ordinary(chunk).len()).sum(),
        // The ranks ship inside the tokenizer crate; failing to load them is a
        // build defect, and a length estimate is better than no figure.
        None => text.len().div_ceil(4),
    }
}

/// The tokenizer's pre-splitting pattern backtracks on very long runs of
/// whitespace; counting in pieces of at most 4 KB, cut where whitespace meets
/// a non-space character (a place the pattern splits anyway), keeps it linear.
/// A run longer than a piece is cut inside the run, which can differ from
/// the whole-text count by a token per cut.
fn chunks(text: &str) -> impl Iterator<Item = &str> {
    const PIECE: usize = 4096;
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() <= PIECE {
            return Some(std::mem::take(&mut rest));
        }
        let mut cut = PIECE;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let window = &rest[..cut];
        let bytes = window.as_bytes();
        let boundary =
            (1..bytes.len()).rev().find(|&i| bytes[i - 1].is_ascii_whitespace() && !bytes[i].is_ascii_whitespace());
        let at = boundary.filter(|&i| i > PIECE / 4).unwrap_or(cut);
        let (head, tail) = rest.split_at(at);
        rest = tail;
        Some(head)
    })
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

    #[test]
    fn long_texts_count_in_pieces_without_losing_any() {
        let text = "word ".repeat(10_000) + &" ".repeat(100_000) + "end";
        let pieces: Vec<&str> = chunks(&text).collect();
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.len() <= 4096));
        let words = count(&"alpha beta ".repeat(5_000));
        assert!((9_900..=10_100).contains(&words), "within a token per piece of 10,000: {words}");
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
