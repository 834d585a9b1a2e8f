//! What extraction produces: the page's main content as typed blocks in reading
//! order, each with its text and inline links.

use serde::Serialize;

/// An inline link inside a block: the anchor text's place in the block's text
/// and where it points (absolute).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub text: String,
    pub href: String,
    /// Byte offset of the anchor text within the block's `text`.
    pub start: usize,
}

/// A run of inline text with its style, for renderings that keep emphasis and
/// links (Markdown). Plain text concatenates the runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strong: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub emphasis: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub code: bool,
}

impl Span {
    pub fn plain(text: impl Into<String>) -> Span {
        Span { text: text.into(), href: None, strong: false, emphasis: false, code: false }
    }
}

/// A table as data: colspan and rowspan already resolved, so every row has the
/// same number of cells.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One block of the main content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Block {
    Heading {
        level: u8,
        spans: Vec<Span>,
    },
    Paragraph {
        spans: Vec<Span>,
    },
    /// `depth` 0 is a top-level item; `ordered` items carry their number.
    ListItem {
        depth: u8,
        ordered: bool,
        number: Option<u32>,
        spans: Vec<Span>,
    },
    Code {
        language: Option<String>,
        text: String,
    },
    Quote {
        spans: Vec<Span>,
    },
    Table {
        table: Table,
    },
    Image {
        alt: String,
        src: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
}

impl Block {
    /// The block's plain text: no URLs, no markup.
    pub fn text(&self) -> String {
        match self {
            Block::Heading { spans, .. }
            | Block::Paragraph { spans }
            | Block::ListItem { spans, .. }
            | Block::Quote { spans } => spans.iter().map(|s| s.text.as_str()).collect(),
            Block::Code { text, .. } => text.clone(),
            Block::Table { table } => {
                let mut lines = Vec::new();
                if let Some(caption) = &table.caption {
                    lines.push(caption.clone());
                }
                if !table.headers.is_empty() {
                    lines.push(table.headers.join("\t"));
                }
                lines.extend(table.rows.iter().map(|r| r.join("\t")));
                lines.join("\n")
            }
            Block::Image { alt, .. } => alt.clone(),
        }
    }

    /// The block's links, with offsets into [`Block::text`].
    pub fn links(&self) -> Vec<Link> {
        let spans = match self {
            Block::Heading { spans, .. }
            | Block::Paragraph { spans }
            | Block::ListItem { spans, .. }
            | Block::Quote { spans } => spans,
            _ => return Vec::new(),
        };
        let mut at = 0;
        let mut links = Vec::new();
        for span in spans {
            if let Some(href) = &span.href {
                links.push(Link { text: span.text.clone(), href: href.clone(), start: at });
            }
            at += span.text.len();
        }
        links
    }
}
