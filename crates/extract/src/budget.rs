//! Cutting the content to fit an output budget: at most so many blocks, or at
//! most so many o200k_base tokens of Markdown. The cut always falls between
//! blocks, keeping the longest prefix that fits, so what is returned reads
//! from the start and never ends mid-sentence.

use crate::model::Block;
use crate::render::{self, RenderOptions};
use crate::tokens;

/// How much content to return at most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Tokens of the Markdown rendering (o200k_base).
    pub max_tokens: Option<usize>,
    /// Blocks.
    pub max_nodes: Option<usize>,
}

/// What cutting did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    /// Blocks were dropped.
    pub truncated: bool,
    /// The Markdown of the blocks kept, when it was rendered to check the token
    /// budget (so it need not be rendered again).
    pub markdown: Option<String>,
}

/// Keeps the longest prefix of `blocks` within `limits`.
pub fn cut(blocks: &mut Vec<Block>, limits: Limits, options: &RenderOptions) -> Cut {
    let before = blocks.len();
    if let Some(max) = limits.max_nodes {
        blocks.truncate(max);
    }
    let markdown = limits.max_tokens.map(|max| fit(blocks, max, options));
    Cut { truncated: blocks.len() < before, markdown }
}

/// Cuts `blocks` so that their Markdown holds at most `budget` tokens, and
/// returns that Markdown.
///
/// Each block is rendered and counted once, on its own (its trailing newline
/// standing for the blank line that separates it from the next); the prefix
/// whose sum fits is kept. Tokens can merge across a block boundary, and a
/// list item renders a little differently inside its list, so the sum is an
/// estimate: the kept blocks are rendered together and counted, and while they
/// exceed the budget, blocks whose estimates cover the excess are dropped from
/// the end. The result never exceeds the budget.
fn fit(blocks: &mut Vec<Block>, budget: usize, options: &RenderOptions) -> String {
    let mut costs = Vec::with_capacity(blocks.len());
    let mut total = 0usize;
    for block in blocks.iter() {
        let cost = tokens::count(&render::markdown(std::slice::from_ref(block), options));
        if total + cost > budget {
            break;
        }
        total += cost;
        costs.push(cost);
    }
    blocks.truncate(costs.len());
    loop {
        let markdown = render::markdown(blocks, options);
        let actual = tokens::count(&markdown);
        if actual <= budget {
            return markdown;
        }
        // Drop at least one block, and as many as the excess calls for.
        let mut excess = actual - budget;
        while let Some(cost) = costs.pop() {
            blocks.pop();
            if cost >= excess {
                break;
            }
            excess -= cost;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Span;

    fn paragraph(n: usize) -> Block {
        let text = (0..40).map(|i| format!("word{}", i * 7 + n)).collect::<Vec<_>>().join(" ");
        Block::Paragraph { spans: vec![Span::plain(format!("Paragraph {n}: {text}."))] }
    }

    fn article() -> Vec<Block> {
        let mut blocks = vec![Block::Heading { level: 2, spans: vec![Span::plain("Findings")] }];
        for n in 0..12 {
            blocks.push(paragraph(n));
            blocks.push(Block::ListItem {
                depth: 0,
                ordered: true,
                number: Some(n as u32 + 1),
                spans: vec![Span::plain("an item")],
            });
        }
        blocks
    }

    #[test]
    fn the_token_budget_cuts_at_a_block_and_is_never_exceeded() {
        let options = RenderOptions::default();
        let full = article();
        let all = tokens::count(&render::markdown(&full, &options));
        for budget in [0, 1, 5, 30, 77, 150, 333, all - 1] {
            let mut blocks = full.clone();
            let cut = cut(&mut blocks, Limits { max_tokens: Some(budget), max_nodes: None }, &options);
            let markdown = cut.markdown.unwrap();
            assert_eq!(markdown, render::markdown(&blocks, &options));
            assert!(tokens::count(&markdown) <= budget, "{budget}: {}", tokens::count(&markdown));
            assert!(cut.truncated && blocks.len() < full.len());
            assert_eq!(blocks[..], full[..blocks.len()], "a prefix, cut between blocks");
            // Nearly as much as fits: one more block would not.
            let one_more = &full[..blocks.len() + 1];
            assert!(tokens::count(&render::markdown(one_more, &options)) > budget.saturating_sub(2));
        }
        let mut blocks = full.clone();
        let cut = cut(&mut blocks, Limits { max_tokens: Some(all), max_nodes: None }, &options);
        assert!(!cut.truncated);
        assert_eq!(blocks, full);
    }

    #[test]
    fn max_nodes_keeps_that_many_blocks() {
        let options = RenderOptions::default();
        let mut blocks = article();
        let cut = cut(&mut blocks, Limits { max_tokens: None, max_nodes: Some(3) }, &options);
        assert_eq!((blocks.len(), cut.truncated, cut.markdown), (3, true, None));
        let mut blocks = article();
        let n = blocks.len();
        assert!(!super::cut(&mut blocks, Limits { max_tokens: None, max_nodes: Some(n) }, &options).truncated);
        assert!(!super::cut(&mut blocks, Limits::default(), &options).truncated);
        assert_eq!(blocks.len(), n);
    }
}
