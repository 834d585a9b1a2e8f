//! Anno's extraction engine: a page's bytes and URL in; its main content as typed
//! blocks, Markdown and plain text, its metadata, and an outcome out. Pure: no
//! I/O, no async.

pub mod blocks;
pub mod content;
pub mod decode;
pub mod dom;
pub mod entities;
mod entities_table;
pub mod metadata;
pub mod model;
pub mod parse;
pub mod render;
pub mod tokens;

pub use metadata::Metadata;
pub use model::{Block, Span, Table};

use serde::Serialize;

/// How to extract.
#[derive(Clone, Debug)]
pub struct Options {
    /// Only the main content (true), or the whole page as clean text.
    pub main_content: bool,
    pub links: bool,
    pub images: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { main_content: true, links: true, images: true }
    }
}

/// A page, extracted.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub url: String,
    pub metadata: Metadata,
    pub blocks: Vec<Block>,
}

impl Document {
    /// The main content as plain text: blocks separated by a blank line, no URLs.
    pub fn text(&self) -> String {
        render::text(&self.blocks)
    }

    /// The main content as GitHub-flavoured Markdown.
    pub fn markdown(&self, options: &render::RenderOptions) -> String {
        render::markdown(&self.blocks, options)
    }
}

/// Extracts a page given its bytes, its URL and, when known, its `Content-Type`.
pub fn extract(bytes: &[u8], url: &str, content_type: Option<&str>, options: &Options) -> Document {
    let decoded = decode::decode(bytes, content_type);
    let dom = parse::parse(decoded.text);
    let base = url::Url::parse(url).ok();
    let metadata = metadata::read(&dom, base.as_ref());
    let analysis = content::analyse(&dom);
    let roots = if options.main_content { content::main_content(&dom, &analysis) } else { Vec::new() };
    let roots = if roots.is_empty() {
        dom.find(dom::ROOT, dom::Tag::Body).map(|b| vec![b]).unwrap_or_else(|| vec![dom::ROOT])
    } else {
        roots
    };
    let mut emitter = blocks::Emitter::new(&dom, &analysis, base);
    emitter.links = options.links;
    emitter.images = options.images;
    emitter.title = metadata.title.clone().unwrap_or_default();
    for root in roots {
        emitter.emit(root);
    }
    Document { url: url.to_owned(), metadata, blocks: emitter.finish() }
}
