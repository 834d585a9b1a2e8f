//! Turning the chosen subtrees into typed blocks in reading order: headings,
//! paragraphs, list items, code, quotes, tables and images, with inline links
//! made absolute. Walks with an explicit stack.

use crate::content::Analysis;
use crate::dom::{Dom, NodeData, NodeId, Tag};
use crate::model::{Block, Span, Table};

/// Inside the content, what is still not part of the article.
const NOT_ARTICLE: &[&str] = &[
    "caption",
    "credit",
    "byline",
    "author",
    "dateline",
    "share",
    "sharing",
    "social",
    "related",
    "newsletter",
    "promo",
    "subscribe",
    "signup",
    "tags",
    "breadcrumb",
    "advert",
    "sponsor",
    "comment",
    "toolbar",
    "print",
];

pub struct Emitter<'a> {
    dom: &'a Dom,
    analysis: &'a Analysis,
    base: Option<url::Url>,
    pub links: bool,
    pub images: bool,
    /// Text of the page title, to leave the headline out of the body.
    pub title: String,
    /// Drop what leads and trails an article (main-content mode).
    pub trim_edges: bool,
    blocks: Vec<Block>,
    spans: Vec<Span>,
    href: Option<String>,
    strong: u32,
    emphasis: u32,
    code: u32,
    list_depth: u8,
    /// Open list items and lists: whether the list is ordered, and the next number.
    lists: Vec<(bool, u32)>,
    in_item: u32,
    in_quote: u32,
    buf: String,
}

enum Step {
    Enter(NodeId),
    Exit(NodeId),
}

impl<'a> Emitter<'a> {
    pub fn new(dom: &'a Dom, analysis: &'a Analysis, base: Option<url::Url>) -> Self {
        Emitter {
            dom,
            analysis,
            base,
            links: true,
            images: true,
            title: String::new(),
            trim_edges: true,
            blocks: Vec::new(),
            spans: Vec::new(),
            href: None,
            strong: 0,
            emphasis: 0,
            code: 0,
            list_depth: 0,
            lists: Vec::new(),
            in_item: 0,
            in_quote: 0,
            buf: String::new(),
        }
    }

    pub fn finish(mut self) -> Vec<Block> {
        self.flush();
        if self.trim_edges {
            crate::edges::trim(&mut self.blocks, &self.title);
        }
        self.blocks
    }

    fn absolute(&self, href: &str) -> Option<String> {
        let href = href.trim();
        if href.is_empty() || href.starts_with('#') || href.to_ascii_lowercase().starts_with("javascript:") {
            return None;
        }
        match &self.base {
            Some(base) => base.join(href).ok().map(String::from),
            None => url::Url::parse(href).ok().map(String::from),
        }
    }

    /// Not article text although inside the article container.
    fn skipped(&mut self, id: NodeId) -> bool {
        let i = id as usize;
        if self.analysis.removed[i] {
            return true;
        }
        let Some(tag) = self.dom.tag(id) else { return false };
        if matches!(tag, Tag::Figcaption | Tag::Hr) {
            return true;
        }
        if matches!(tag, Tag::A | Tag::B | Tag::Strong | Tag::Em | Tag::I | Tag::Span | Tag::Code | Tag::Br | Tag::Img)
        {
            return false;
        }
        self.buf.clear();
        for name in ["class", "id"] {
            if let Some(v) = self.dom.attr_raw(id, name) {
                self.buf.push_str(v);
                self.buf.push(' ');
            }
        }
        self.buf.make_ascii_lowercase();
        if !self.buf.is_empty() && NOT_ARTICLE.iter().any(|n| self.buf.contains(n)) && !matches!(tag, Tag::P) {
            return true;
        }
        // Link lists and link blocks: navigation and teasers, not prose.
        let text = self.analysis.text[i];
        let density = self.analysis.link_density(id);
        match tag {
            Tag::Pre | Tag::Td | Tag::Th | Tag::Tr | Tag::Table => false,
            t if t.heading_level().is_some() => false,
            Tag::P => text > 0 && density > 0.6 && text < 400,
            _ => text > 0 && density > 0.5 && text < 1000,
        }
    }

    pub fn emit(&mut self, root: NodeId) {
        let mut stack = vec![Step::Enter(root)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Exit(id) => self.exit(id),
                Step::Enter(id) => {
                    if let NodeData::Text(_) = self.dom.node(id).data {
                        self.text(id);
                        continue;
                    }
                    if self.skipped(id) {
                        continue;
                    }
                    if self.enter(id) {
                        stack.push(Step::Exit(id));
                        let children: Vec<NodeId> = self.dom.children(id).collect();
                        stack.extend(children.into_iter().rev().map(Step::Enter));
                    }
                }
            }
        }
    }

    fn style(&self) -> Span {
        Span {
            text: String::new(),
            href: if self.links { self.href.clone() } else { None },
            strong: self.strong > 0,
            emphasis: self.emphasis > 0,
            code: self.code > 0,
        }
    }

    fn push_text(&mut self, text: &str) {
        let mut collapsed = String::with_capacity(text.len());
        let mut space = self.spans.last().is_some_and(|s| s.text.ends_with(' ')) || self.spans.is_empty();
        for c in text.chars() {
            if c.is_whitespace() {
                if !space {
                    collapsed.push(' ');
                    space = true;
                }
            } else {
                collapsed.push(c);
                space = false;
            }
        }
        if collapsed.is_empty() {
            return;
        }
        let style = self.style();
        match self.spans.last_mut() {
            Some(last)
                if last.href == style.href
                    && last.strong == style.strong
                    && last.emphasis == style.emphasis
                    && last.code == style.code =>
            {
                last.text.push_str(&collapsed)
            }
            _ => self.spans.push(Span { text: collapsed, ..style }),
        }
    }

    fn text(&mut self, id: NodeId) {
        let text = self.dom.text(id);
        self.push_text(&text);
    }

    /// Ends the current run of inline content as a block.
    fn flush(&mut self) {
        let mut spans = std::mem::take(&mut self.spans);
        if let Some(first) = spans.first_mut() {
            first.text = first.text.trim_start().to_owned();
        }
        if let Some(last) = spans.last_mut() {
            last.text = last.text.trim_end().to_owned();
        }
        spans.retain(|s| !s.text.is_empty());
        if spans.is_empty() {
            return;
        }
        let block = if self.in_item > 0 {
            let (ordered, number) = self.lists.last().copied().unwrap_or((false, 0));
            if let Some(list) = self.lists.last_mut() {
                list.1 += 1;
            }
            Block::ListItem {
                depth: self.list_depth.saturating_sub(1),
                ordered,
                number: ordered.then_some(number),
                spans,
            }
        } else if self.in_quote > 0 {
            Block::Quote { spans }
        } else {
            Block::Paragraph { spans }
        };
        self.blocks.push(block);
    }

    /// Handles an element's start; true when its children are to be walked.
    fn enter(&mut self, id: NodeId) -> bool {
        let Some(tag) = self.dom.tag(id) else { return true };
        if let Some(level) = tag.heading_level() {
            self.flush();
            let text = collapse(&visible_text(self.dom, self.analysis, id));
            if text.is_empty() || (level == 1 && !self.title.is_empty() && similar(&text, &self.title)) {
                return false;
            }
            let saved = std::mem::take(&mut self.spans);
            self.push_text(&text);
            let spans = std::mem::replace(&mut self.spans, saved);
            self.blocks.push(Block::Heading { level, spans });
            return false;
        }
        match tag {
            Tag::Br => {
                self.push_text(" ");
                false
            }
            Tag::A => {
                self.href = self.dom.attr(id, "href").and_then(|h| self.absolute(&h));
                true
            }
            Tag::B | Tag::Strong => {
                self.strong += 1;
                true
            }
            Tag::I | Tag::Em => {
                self.emphasis += 1;
                true
            }
            Tag::Code | Tag::Kbd | Tag::Samp | Tag::Tt => {
                self.code += 1;
                true
            }
            Tag::Pre => {
                self.flush();
                let text = visible_text(self.dom, self.analysis, id);
                let text = text.trim_matches('\n').to_owned();
                if !text.trim().is_empty() {
                    self.blocks.push(Block::Code { language: language(self.dom, id), text });
                }
                false
            }
            Tag::Img => {
                if self.images {
                    if let Some(block) = self.image(id) {
                        self.flush();
                        self.blocks.push(block);
                    }
                }
                false
            }
            Tag::Ul | Tag::Ol | Tag::Menu => {
                self.flush();
                let start = self.dom.attr(id, "start").and_then(|s| s.trim().parse().ok()).unwrap_or(1);
                self.lists.push((tag == Tag::Ol, start));
                self.list_depth = self.list_depth.saturating_add(1);
                true
            }
            Tag::Li => {
                self.flush();
                self.in_item += 1;
                true
            }
            Tag::Blockquote => {
                self.flush();
                self.in_quote += 1;
                true
            }
            Tag::Table => {
                self.flush();
                match data_table(self.dom, self.analysis, id) {
                    Some(table) => {
                        self.blocks.push(Block::Table { table });
                        false
                    }
                    None => true,
                }
            }
            t if crate::content::is_block(t) => {
                self.flush();
                true
            }
            _ => true,
        }
    }

    fn exit(&mut self, id: NodeId) {
        let Some(tag) = self.dom.tag(id) else { return };
        match tag {
            Tag::A => self.href = None,
            Tag::B | Tag::Strong => self.strong = self.strong.saturating_sub(1),
            Tag::I | Tag::Em => self.emphasis = self.emphasis.saturating_sub(1),
            Tag::Code | Tag::Kbd | Tag::Samp | Tag::Tt => self.code = self.code.saturating_sub(1),
            Tag::Ul | Tag::Ol | Tag::Menu => {
                self.flush();
                self.lists.pop();
                self.list_depth = self.list_depth.saturating_sub(1);
            }
            Tag::Li => {
                self.flush();
                self.in_item = self.in_item.saturating_sub(1);
            }
            Tag::Blockquote => {
                self.flush();
                self.in_quote = self.in_quote.saturating_sub(1);
            }
            t if crate::content::is_block(t) => self.flush(),
            _ => {}
        }
    }

    fn image(&self, id: NodeId) -> Option<Block> {
        let tiny = ["width", "height"]
            .iter()
            .any(|a| self.dom.attr_raw(id, a).is_some_and(|v| v.trim() == "1" || v.trim() == "0"));
        if tiny {
            return None;
        }
        let src = ["src", "data-src", "data-original", "data-lazy-src"]
            .iter()
            .filter_map(|a| self.dom.attr(id, a))
            .find(|v| !v.trim().is_empty() && !v.trim_start().starts_with("data:"))
            .or_else(|| {
                self.dom.attr(id, "srcset").and_then(|s| {
                    s.split(',').next().and_then(|c| c.split_whitespace().next()).map(|c| c.to_owned().into())
                })
            })?;
        let src = self.absolute(&src)?;
        let alt = collapse(&self.dom.attr(id, "alt").unwrap_or_default());
        let title = self.dom.attr(id, "title").map(|t| collapse(&t)).filter(|t| !t.is_empty());
        Some(Block::Image { alt, src, title })
    }
}

/// The text below an element, without what the analysis removed (scripts,
/// styles, hidden elements, excluded subtrees).
fn visible_text(dom: &Dom, a: &Analysis, id: NodeId) -> String {
    dom.text_content_except(id, |n| a.removed[n as usize])
}

/// Whitespace runs to one space, trimmed.
pub fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a heading repeats the page title.
fn similar(heading: &str, title: &str) -> bool {
    let h = heading.to_lowercase();
    let t = title.to_lowercase();
    !h.is_empty() && (t.contains(&h) || h.contains(&t))
}

fn language(dom: &Dom, pre: NodeId) -> Option<String> {
    let code = dom.children(pre).find(|c| dom.tag(*c) == Some(Tag::Code));
    for id in [Some(pre), code].into_iter().flatten() {
        if let Some(class) = dom.attr(id, "class") {
            for c in class.split_whitespace() {
                if let Some(lang) = c.strip_prefix("language-").or_else(|| c.strip_prefix("lang-")) {
                    if !lang.is_empty() {
                        return Some(lang.to_ascii_lowercase());
                    }
                }
            }
        }
        if let Some(lang) = dom.attr(id, "data-lang").or_else(|| dom.attr(id, "data-language")) {
            if !lang.trim().is_empty() {
                return Some(lang.trim().to_ascii_lowercase());
            }
        }
    }
    None
}

/// A table of data (not one used for layout) as rows of cells, with colspan and
/// rowspan resolved. `None` for layout tables.
pub fn data_table(dom: &Dom, a: &Analysis, table: NodeId) -> Option<Table> {
    let mut rows: Vec<(NodeId, bool)> = Vec::new();
    let mut caption = None;
    let mut has_header = false;
    let mut stack: Vec<NodeId> = dom.children(table).collect();
    stack.reverse();
    while let Some(id) = stack.pop() {
        match dom.tag(id) {
            Some(Tag::Caption) => caption = Some(collapse(&visible_text(dom, a, id))).filter(|c| !c.is_empty()),
            Some(Tag::Thead | Tag::Tbody | Tag::Tfoot) => {
                let mut children: Vec<NodeId> = dom.children(id).collect();
                children.reverse();
                stack.extend(children);
            }
            Some(Tag::Tr) => {
                let header = dom.parent(id).and_then(|p| dom.tag(p)) == Some(Tag::Thead)
                    || dom.children(id).filter(|c| dom.is_element(*c)).all(|c| dom.tag(c) == Some(Tag::Th));
                has_header |= header;
                rows.push((id, header));
            }
            Some(Tag::Table) => return None,
            _ => {}
        }
    }
    // Layout tables hold blocks of prose or nested tables. The walk stops at
    // a nested table, so a page of tables nested in tables is read once, not
    // once for every table around it.
    let has_blocks = dom.descendants(table).any(|d| match dom.tag(d) {
        Some(Tag::Table) => true,
        Some(Tag::P | Tag::Div | Tag::Ul | Tag::Ol | Tag::H1 | Tag::H2 | Tag::H3 | Tag::Blockquote) => {
            a.text[d as usize] > 200
        }
        _ => false,
    });
    if rows.is_empty() || has_blocks {
        return None;
    }
    let columns_guess: usize = rows
        .iter()
        .map(|(r, _)| dom.children(*r).filter(|c| matches!(dom.tag(*c), Some(Tag::Td | Tag::Th))).count())
        .max()
        .unwrap_or(0);
    if columns_guess < 2 && !has_header {
        return None;
    }
    // The grid, with spans filled; bounded so a hostile colspan cannot explode it.
    const MAX_COLUMNS: usize = 1000;
    let mut grid: Vec<Vec<Option<String>>> = Vec::with_capacity(rows.len());
    let mut pending: Vec<(usize, usize, usize, String)> = Vec::new(); // (row, col, rows left, text)
    let copy_budget = 1_000_000 + 8 * a.text[table as usize] as usize;
    let mut copied = 0usize;
    for (r, (row, _)) in rows.iter().enumerate() {
        let mut cells: Vec<Option<String>> = Vec::new();
        for (pr, pc, _, text) in pending.iter().filter(|p| p.0 < r && p.2 > 0) {
            let _ = pr;
            if cells.len() <= *pc {
                cells.resize(*pc + 1, None);
            }
            cells[*pc] = Some(text.clone());
        }
        for p in pending.iter_mut() {
            if p.0 < r && p.2 > 0 {
                p.2 -= 1;
            }
        }
        // Spent spans go, so each row walks only the spans still open.
        pending.retain(|p| p.2 > 0);
        let mut col = 0;
        for cell in dom.children(*row).filter(|c| matches!(dom.tag(*c), Some(Tag::Td | Tag::Th))) {
            while col < cells.len() && cells[col].is_some() {
                col += 1;
            }
            let text = collapse(&visible_text(dom, a, cell));
            let span = |name| {
                dom.attr(cell, name).and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1).clamp(1, MAX_COLUMNS)
            };
            let (colspan, rowspan) = (span("colspan"), span("rowspan").min(rows.len()));
            for c in col..(col + colspan).min(MAX_COLUMNS) {
                if cells.len() <= c {
                    cells.resize(c + 1, None);
                }
                cells[c] = Some(text.clone());
                copied += text.len();
                if rowspan > 1 {
                    copied += text.len() * (rowspan - 1);
                    pending.push((r, c, rowspan - 1, text.clone()));
                }
            }
            col += colspan;
        }
        // Spans repeat a cell's text; past a bound that is a bomb, not data,
        // and the table is read as ordinary content instead.
        if copied > copy_budget {
            return None;
        }
        grid.push(cells);
    }
    let width = grid.iter().map(Vec::len).max().unwrap_or(0).min(MAX_COLUMNS);
    let mut all: Vec<Vec<String>> = grid
        .into_iter()
        .map(|mut r| {
            r.resize(width, None);
            r.into_iter().map(Option::unwrap_or_default).collect()
        })
        .collect();
    let headers = if rows.first().is_some_and(|(_, h)| *h) && !all.is_empty() { all.remove(0) } else { Vec::new() };
    Some(Table { caption, headers, rows: all })
}
