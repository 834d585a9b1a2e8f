//! The whole extraction, on any bytes. The first byte chooses how: the
//! `Content-Type` the bytes are served with, whether they sit behind a
//! kilobyte of clean markup (the binary sniffer reads only the first
//! kilobyte, so behind it anything reaches the parser), and whether tokens are
//! counted and a token budget applied. Each input is extracted with and
//! without main-content detection.

#![no_main]

use anno_extract::render::{self, RenderOptions};
use anno_extract::{Block, Options, Outcome, extract};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some("text/html"),
    Some("text/html; charset=utf-8"),
    Some("text/html; charset=windows-1251"),
    Some("text/html; charset=shift_jis"),
    Some("text/html; charset=utf-16le"),
    Some("application/octet-stream"),
    Some("text/html; charset=iso-2022-jp"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&how, rest)) = data.split_first() else { return };
    let content_type = CONTENT_TYPES[usize::from(how & 0x07)];
    let input = if how & 0x08 != 0 {
        let mut padded = b"<!DOCTYPE html><html><body><p>".to_vec();
        padded.resize(1024, b' ');
        padded.extend_from_slice(rest);
        padded
    } else {
        rest.to_vec()
    };
    for main_content in [true, false] {
        let options = Options {
            main_content,
            count_tokens: how & 0x10 != 0,
            max_tokens: (how & 0x20 != 0).then_some(usize::from(how)),
            max_nodes: (how & 0x40 != 0).then_some(usize::from(how & 0x0f)),
            ..Options::default()
        };
        let doc = extract(&input, "https://fuzz.example/a/b.html?q=1", content_type, &options);
        assert!((0.0..=1.0).contains(&doc.confidence), "confidence {}", doc.confidence);
        assert_eq!(doc.text, render::text(&doc.blocks));
        let render_options = RenderOptions { links: options.links, images: options.images };
        assert_eq!(doc.markdown, render::markdown(&doc.blocks, &render_options));
        if doc.blocks.is_empty() {
            assert!(doc.text.is_empty() && doc.markdown.is_empty());
            // The outcome describes the page, not what a budget kept of it.
            assert!(doc.truncated || doc.outcome != Outcome::Ok, "no content, yet {:?}", doc.outcome);
        }
        if doc.outcome == Outcome::NotHtml {
            assert!(doc.blocks.is_empty() && doc.tokens.is_none());
        }
        if let Some(max) = options.max_nodes {
            assert!(doc.blocks.len() <= max);
        }
        if let (Some(max), Some(_)) = (options.max_tokens, &doc.tokens) {
            assert!(doc.tokens.as_ref().is_some_and(|t| t.markdown <= max), "over the token budget");
        }
        // Outside tables (whose spans repeat cells), the text is at most three
        // times the input: a byte decodes to at most three.
        let prose: usize =
            doc.blocks.iter().filter(|b| !matches!(b, Block::Table { .. })).map(|b| b.text().len()).sum();
        assert!(prose <= 3 * input.len() + 16, "{prose} bytes of text from {} bytes", input.len());
        for block in &doc.blocks {
            for link in block.links() {
                assert!(link.href.contains(':'), "a relative link: {}", link.href);
                assert!(block.text().get(link.start..link.start + link.text.len()) == Some(link.text.as_str()));
            }
        }
    }
});
