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
        Some(bpe) => bpe.encode_ordinary(text).len(),
        // The ranks ship inside the tokenizer crate; failing to load them is a
        // build defect, and a length estimate is better than no figure.
        None => text.len().div_ceil(4),
    }
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
    fn counts_are_real_tokens_not_characters() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello world"), 2);
        let c = TokenCounts::measure("<div class=\"x\"><p>hello world</p></div>", "hello world", "hello world");
        assert_eq!(c.markdown, 2);
        assert!(c.raw > c.markdown && c.reduction > 0.5 && c.reduction < 1.0);
    }
}
