//! A fast, forgiving HTML parser for extraction.
//!
//! It tokenizes with `memchr` jumps (text runs, comments, and raw-text elements
//! such as `<script>` are skipped over, not walked byte by byte) and builds the
//! tree with the HTML standard's rules that decide structure on real pages:
//! void elements, implied end tags (`<p>`, `<li>`, `<dd>`, table parts,
//! `<option>`), headings closing headings, nested links, end tags that match no
//! open element ignored, and end tags that never leave a table cell. It does not
//! re-parent misnested formatting elements or foster-parent text out of tables:
//! what that changes is never which block holds an article's text.
//!
//! Linear in the input and never recursive: depth is capped, so a page of a
//! hundred thousand nested elements is as cheap as a flat one.

use crate::dom::{Attr, Dom, NONE, Node, NodeData, NodeId, Range, Tag};
use memchr::{memchr, memchr2, memmem};

/// Deeper elements are still parsed, as children of the deepest allowed one.
pub const MAX_DEPTH: usize = 512;

pub fn parse(src: String) -> Dom {
    let mut builder = Builder::new(src.len());
    tokenize(src.as_bytes(), &mut builder);
    Dom { src, nodes: builder.nodes, attrs: builder.attrs }
}

struct Builder {
    nodes: Vec<Node>,
    attrs: Vec<Attr>,
    /// Open elements: node and tag.
    stack: Vec<(NodeId, Tag)>,
    /// Elements past the depth cap that are open but not on the stack.
    overflow: usize,
    /// Open `svg`/`math` elements: self-closing tags count inside them.
    foreign: usize,
    has_body: bool,
    has_head: bool,
    has_html: bool,
    /// Open `<p>` and `<head>` elements, so most start tags need no stack search.
    open_p: usize,
    open_head: usize,
}

fn new_node(parent: NodeId, data: NodeData) -> Node {
    Node { parent, first_child: NONE, last_child: NONE, next: NONE, data }
}

impl Builder {
    fn new(len: usize) -> Builder {
        let mut nodes = Vec::with_capacity(len / 40 + 16);
        nodes.push(new_node(NONE, NodeData::Document));
        Builder {
            nodes,
            attrs: Vec::with_capacity(len / 60 + 16),
            stack: Vec::with_capacity(64),
            overflow: 0,
            foreign: 0,
            has_body: false,
            has_head: false,
            has_html: false,
            open_p: 0,
            open_head: 0,
        }
    }

    fn current(&self) -> NodeId {
        self.stack.last().map_or(0, |(id, _)| *id)
    }

    fn append(&mut self, data: NodeData) -> NodeId {
        let parent = self.current();
        let id = self.nodes.len() as NodeId;
        self.nodes.push(new_node(parent, data));
        let p = &mut self.nodes[parent as usize];
        let last = p.last_child;
        p.last_child = id;
        if last == NONE {
            p.first_child = id;
        } else {
            self.nodes[last as usize].next = id;
        }
        id
    }

    fn text(&mut self, start: usize, end: usize) {
        if end <= start {
            return;
        }
        // Text split only by a stray `<` continues the same node.
        let parent = self.current();
        let last = self.nodes[parent as usize].last_child;
        if last != NONE {
            if let NodeData::Text(range) = &mut self.nodes[last as usize].data {
                if range.end as usize == start {
                    range.end = end as u32;
                    return;
                }
            }
        }
        self.append(NodeData::Text(Range::new(start, end)));
    }

    fn pop_through(&mut self, index: usize) {
        for (_, tag) in self.stack.drain(index..) {
            match tag {
                Tag::Svg | Tag::Math => self.foreign = self.foreign.saturating_sub(1),
                Tag::P => self.open_p = self.open_p.saturating_sub(1),
                Tag::Head => self.open_head = self.open_head.saturating_sub(1),
                _ => {}
            }
        }
        self.overflow = 0;
    }

    fn pop(&mut self) {
        if let Some(index) = self.stack.len().checked_sub(1) {
            self.pop_through(index);
        }
    }

    /// The topmost open element matching `want`, searching down to a boundary.
    fn find_open(&self, want: impl Fn(Tag) -> bool, boundary: impl Fn(Tag) -> bool) -> Option<usize> {
        for (i, (_, tag)) in self.stack.iter().enumerate().rev() {
            if want(*tag) {
                return Some(i);
            }
            if boundary(*tag) {
                return None;
            }
        }
        None
    }

    fn close_p(&mut self) {
        if self.open_p == 0 {
            return;
        }
        if let Some(i) = self.find_open(|t| t == Tag::P, is_scope_boundary_button) {
            self.pop_through(i);
        }
    }

    fn start_tag(&mut self, tag: Tag, name: Range, first_attr: usize, self_closing: bool) {
        match tag {
            Tag::Html if self.has_html => return self.drop_attrs(first_attr),
            Tag::Body if self.has_body => return self.drop_attrs(first_attr),
            Tag::Head if self.has_head => return self.drop_attrs(first_attr),
            Tag::Html => self.has_html = true,
            Tag::Body => self.has_body = true,
            Tag::Head => self.has_head = true,
            _ => {}
        }
        // Anything that is not head content ends an unclosed `<head>`.
        let head_content = matches!(
            tag,
            Tag::Meta
                | Tag::Link
                | Tag::Title
                | Tag::Style
                | Tag::Script
                | Tag::Noscript
                | Tag::Base
                | Tag::Template
                | Tag::Head
        );
        if !head_content && self.open_head > 0 {
            if let Some(i) = self.stack.iter().rposition(|(_, t)| *t == Tag::Head) {
                self.pop_through(i);
            }
        }
        if closes_p(tag) {
            self.close_p();
        }
        match tag {
            Tag::H1 | Tag::H2 | Tag::H3 | Tag::H4 | Tag::H5 | Tag::H6
                if self.stack.last().is_some_and(|(_, t)| t.heading_level().is_some()) =>
            {
                self.pop();
            }
            Tag::Li => {
                if let Some(i) = self
                    .find_open(|t| t == Tag::Li, |t| matches!(t, Tag::Ul | Tag::Ol | Tag::Menu) || is_scope_boundary(t))
                {
                    self.pop_through(i);
                }
            }
            Tag::Dd | Tag::Dt => {
                if let Some(i) =
                    self.find_open(|t| matches!(t, Tag::Dd | Tag::Dt), |t| t == Tag::Dl || is_scope_boundary(t))
                {
                    self.pop_through(i);
                }
            }
            Tag::Tr => {
                // Close the open row (and its cell), not the section.
                if let Some(i) = self.find_open(|t| t == Tag::Tr, is_table_section_boundary) {
                    self.pop_through(i);
                } else if let Some(i) = self.find_open(|t| matches!(t, Tag::Td | Tag::Th), is_table_section_boundary) {
                    self.pop_through(i);
                }
            }
            Tag::Td | Tag::Th => {
                if let Some(i) =
                    self.find_open(|t| matches!(t, Tag::Td | Tag::Th), |t| t == Tag::Tr || is_table_section_boundary(t))
                {
                    self.pop_through(i);
                }
            }
            Tag::Tbody | Tag::Thead | Tag::Tfoot | Tag::Caption | Tag::Colgroup => {
                // Back to the innermost open table, closing its open section.
                if let Some(table) = self.stack.iter().rposition(|(_, t)| *t == Tag::Table) {
                    let section = self.stack[table + 1..].iter().position(|(_, t)| {
                        matches!(
                            t,
                            Tag::Tbody
                                | Tag::Thead
                                | Tag::Tfoot
                                | Tag::Tr
                                | Tag::Td
                                | Tag::Th
                                | Tag::Caption
                                | Tag::Colgroup
                        )
                    });
                    if let Some(i) = section {
                        self.pop_through(table + 1 + i);
                    }
                }
            }
            Tag::Option if self.stack.last().is_some_and(|(_, t)| *t == Tag::Option) => {
                self.pop();
            }
            Tag::Optgroup => {
                if let Some(i) = self.find_open(|t| matches!(t, Tag::Option | Tag::Optgroup), |t| t == Tag::Select) {
                    self.pop_through(i);
                }
            }
            Tag::A => {
                if let Some(i) = self.find_open(|t| t == Tag::A, is_scope_boundary) {
                    self.pop_through(i);
                }
            }
            Tag::Button => {
                if let Some(i) = self.find_open(|t| t == Tag::Button, is_scope_boundary) {
                    self.pop_through(i);
                }
            }
            _ => {}
        }
        let attr_count = (self.attrs.len() - first_attr).min(u16::MAX as usize) as u16;
        let id = self.append(NodeData::Element { tag, name, first_attr: first_attr as u32, attr_count });
        let childless = tag.is_void() || (self_closing && (self.foreign > 0 || matches!(tag, Tag::Svg | Tag::Math)));
        if childless {
            return;
        }
        if self.stack.len() >= MAX_DEPTH {
            self.overflow += 1;
            return;
        }
        match tag {
            Tag::Svg | Tag::Math => self.foreign += 1,
            Tag::P => self.open_p += 1,
            Tag::Head => self.open_head += 1,
            _ => {}
        }
        self.stack.push((id, tag));
    }

    fn drop_attrs(&mut self, first_attr: usize) {
        self.attrs.truncate(first_attr);
    }

    fn end_tag(&mut self, tag: Tag, name: &[u8], src: &[u8]) {
        match tag {
            Tag::Body | Tag::Html => {}
            Tag::Br => {
                let at = self.attrs.len();
                self.start_tag(Tag::Br, Range::default(), at, false);
            }
            Tag::P => self.close_p(),
            Tag::H1 | Tag::H2 | Tag::H3 | Tag::H4 | Tag::H5 | Tag::H6 => {
                if let Some(i) = self.find_open(|t| t.heading_level().is_some(), is_scope_boundary) {
                    self.pop_through(i);
                }
            }
            Tag::Other => {
                let found = self.stack.iter().enumerate().rev().find_map(|(i, (id, t))| {
                    if *t != Tag::Other {
                        return if is_scope_boundary(*t) { Some(None) } else { None };
                    }
                    let NodeData::Element { name: open, .. } = self.nodes[*id as usize].data else { return None };
                    let open = &src[open.start as usize..open.end as usize];
                    open.eq_ignore_ascii_case(name).then_some(Some(i))
                });
                if let Some(Some(i)) = found {
                    self.pop_through(i);
                }
            }
            _ => {
                // End tags do not reach out of a table cell or across a table,
                // except the table's own parts.
                let boundary = |t: Tag| match tag {
                    Tag::Table => false,
                    Tag::Tr | Tag::Td | Tag::Th | Tag::Tbody | Tag::Thead | Tag::Tfoot | Tag::Caption => {
                        t == Tag::Table
                    }
                    _ => is_scope_boundary(t),
                };
                if let Some(i) = self.find_open(|t| t == tag, boundary) {
                    self.pop_through(i);
                } else if self.overflow > 0 {
                    self.overflow -= 1;
                }
            }
        }
    }
}

/// Elements whose start closes an open `<p>`.
fn closes_p(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::Address
            | Tag::Article
            | Tag::Aside
            | Tag::Blockquote
            | Tag::Center
            | Tag::Details
            | Tag::Dialog
            | Tag::Dir
            | Tag::Div
            | Tag::Dl
            | Tag::Fieldset
            | Tag::Figcaption
            | Tag::Figure
            | Tag::Footer
            | Tag::Form
            | Tag::H1
            | Tag::H2
            | Tag::H3
            | Tag::H4
            | Tag::H5
            | Tag::H6
            | Tag::Header
            | Tag::Hgroup
            | Tag::Hr
            | Tag::Li
            | Tag::Dd
            | Tag::Dt
            | Tag::Listing
            | Tag::Main
            | Tag::Menu
            | Tag::Nav
            | Tag::Ol
            | Tag::P
            | Tag::Plaintext
            | Tag::Pre
            | Tag::Section
            | Tag::Summary
            | Tag::Table
            | Tag::Ul
            | Tag::Xmp
    )
}

/// Elements that bound the search for an open element, as the standard's
/// "scope" does.
fn is_scope_boundary(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::Html
            | Tag::Table
            | Tag::Td
            | Tag::Th
            | Tag::Caption
            | Tag::Template
            | Tag::Object
            | Tag::Svg
            | Tag::Math
            | Tag::Select
    )
}

fn is_scope_boundary_button(tag: Tag) -> bool {
    is_scope_boundary(tag) || tag == Tag::Button
}

fn is_table_section_boundary(tag: Tag) -> bool {
    matches!(tag, Tag::Table | Tag::Tbody | Tag::Thead | Tag::Tfoot | Tag::Html | Tag::Template)
}

/// Elements whose content is text up to their end tag.
fn raw_text(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::Script
            | Tag::Style
            | Tag::Textarea
            | Tag::Title
            | Tag::Xmp
            | Tag::Iframe
            | Tag::Noembed
            | Tag::Noframes
            | Tag::Noscript
    )
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

fn tokenize(s: &[u8], b: &mut Builder) {
    let len = s.len();
    let mut i = 0;
    let mut text_start = 0;
    while i < len {
        let Some(off) = memchr(b'<', &s[i..]) else { break };
        let lt = i + off;
        let next = s.get(lt + 1).copied().unwrap_or(0);
        if next.is_ascii_alphabetic() {
            b.text(text_start, lt);
            let (end, tag, self_closing, name) = start_tag(s, lt + 1, b);
            i = end;
            text_start = end;
            if raw_text(tag) && !self_closing {
                // Content up to `</name`, as one text node.
                let close = find_end_tag(s, end, &s[name.start as usize..name.end as usize]);
                b.text(end, close);
                let after = match memchr(b'>', &s[close.min(len)..]) {
                    Some(gt) => close + gt + 1,
                    None => len,
                };
                if close < len {
                    b.end_tag(tag, &s[name.start as usize..name.end as usize], s);
                }
                i = after;
                text_start = after;
            } else if tag == Tag::Plaintext {
                b.text(end, len);
                return;
            }
        } else if next == b'/' {
            let after = lt + 2;
            if s.get(after).is_some_and(u8::is_ascii_alphabetic) {
                b.text(text_start, lt);
                let name_end = after
                    + s[after..].iter().position(|c| is_space(*c) || *c == b'/' || *c == b'>').unwrap_or(len - after);
                let gt = memchr(b'>', &s[name_end..]).map_or(len, |p| name_end + p + 1);
                let name = &s[after..name_end];
                b.end_tag(tag_of(name), name, s);
                i = gt;
                text_start = gt;
            } else {
                // `</>` is dropped; `</3` and the like are bogus comments.
                b.text(text_start, lt);
                i = memchr(b'>', &s[after..]).map_or(len, |p| after + p + 1);
                text_start = i;
            }
        } else if next == b'!' {
            b.text(text_start, lt);
            i = if s[lt..].starts_with(b"<!--") {
                let body = lt + 4;
                if s[body..].starts_with(b">") {
                    body + 1
                } else if s[body..].starts_with(b"->") {
                    body + 2
                } else {
                    memmem::find(&s[body..], b"-->").map_or(len, |p| body + p + 3)
                }
            } else {
                memchr(b'>', &s[lt..]).map_or(len, |p| lt + p + 1)
            };
            text_start = i;
        } else if next == b'?' {
            b.text(text_start, lt);
            i = memchr(b'>', &s[lt..]).map_or(len, |p| lt + p + 1);
            text_start = i;
        } else {
            // A literal `<` in text.
            i = lt + 1;
        }
    }
    b.text(text_start, len);
}

fn tag_of(name: &[u8]) -> Tag {
    if name.len() > 10 {
        return Tag::Other;
    }
    let mut lower = [0u8; 10];
    for (l, c) in lower.iter_mut().zip(name) {
        *l = c.to_ascii_lowercase();
    }
    Tag::from_lower(&lower[..name.len()])
}

/// Parses a start tag from just after `<`; returns where it ends, its tag,
/// whether it was self-closing, and its name.
fn start_tag(s: &[u8], from: usize, b: &mut Builder) -> (usize, Tag, bool, Range) {
    let len = s.len();
    let mut i = from;
    while i < len && !is_space(s[i]) && s[i] != b'/' && s[i] != b'>' {
        i += 1;
    }
    let name = Range::new(from, i);
    let tag = tag_of(&s[from..i]);
    let first_attr = b.attrs.len();
    let mut self_closing = false;
    loop {
        while i < len && (is_space(s[i]) || s[i] == b'/') {
            self_closing = s[i] == b'/';
            i += 1;
        }
        if i >= len {
            break;
        }
        if s[i] == b'>' {
            i += 1;
            break;
        }
        self_closing = false;
        let name_start = i;
        i += 1; // the first character may be anything, even `=`
        while i < len && !is_space(s[i]) && !matches!(s[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        let attr_name = Range::new(name_start, i);
        while i < len && is_space(s[i]) {
            i += 1;
        }
        let mut value = Range::new(i, i);
        if i < len && s[i] == b'=' {
            i += 1;
            while i < len && is_space(s[i]) {
                i += 1;
            }
            if i < len && (s[i] == b'"' || s[i] == b'\'') {
                let quote = s[i];
                let start = i + 1;
                let end = memchr(quote, &s[start..]).map_or(len, |p| start + p);
                value = Range::new(start, end);
                i = (end + 1).min(len);
            } else {
                let start = i;
                while i < len && !is_space(s[i]) && s[i] != b'>' {
                    i += 1;
                }
                value = Range::new(start, i);
            }
        }
        // Duplicates are dropped as the standard says; past a few dozen
        // attributes the check would make hostile markup quadratic, so it stops.
        let duplicate = b.attrs.len() - first_attr <= 64
            && b.attrs[first_attr..].iter().any(|a| {
                s[a.name.start as usize..a.name.end as usize]
                    .eq_ignore_ascii_case(&s[name_start..attr_name.end as usize])
            });
        if !duplicate {
            b.attrs.push(Attr { name: attr_name, value });
        }
    }
    b.start_tag(tag, name, first_attr, self_closing);
    (i, tag, self_closing, name)
}

/// Where `</name` (any case, then a space, `/` or `>`) starts, or the end.
fn find_end_tag(s: &[u8], from: usize, name: &[u8]) -> usize {
    let mut i = from;
    while let Some(p) = memchr2(b'<', b'<', &s[i..]) {
        let lt = i + p;
        let after = lt + 2 + name.len();
        if s.get(lt + 1) == Some(&b'/')
            && s.len() >= after
            && s[lt + 2..after].eq_ignore_ascii_case(name)
            && s.get(after).is_none_or(|c| is_space(*c) || *c == b'/' || *c == b'>')
        {
            return lt;
        }
        i = lt + 1;
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dom::ROOT;

    /// The tree as `tag(child child)` with text in quotes, for assertions.
    fn outline(dom: &Dom) -> String {
        fn walk(dom: &Dom, id: NodeId, out: &mut String) {
            match dom.node(id).data {
                NodeData::Text(_) => {
                    let t = dom.text(id);
                    if !t.trim().is_empty() {
                        out.push_str(&format!("{:?} ", t.trim()));
                    }
                }
                NodeData::Element { .. } => {
                    out.push_str(&dom.name(id));
                    if dom.node(id).first_child != NONE {
                        out.push('(');
                        for c in dom.children(id) {
                            walk(dom, c, out);
                        }
                        if out.ends_with(' ') {
                            out.pop();
                        }
                        out.push(')');
                    }
                    out.push(' ');
                }
                NodeData::Document => {
                    for c in dom.children(id) {
                        walk(dom, c, out);
                    }
                }
            }
        }
        let mut out = String::new();
        walk(dom, ROOT, &mut out);
        out.trim_end().to_owned()
    }

    fn tree(html: &str) -> String {
        outline(&parse(html.to_owned()))
    }

    #[test]
    fn implied_end_tags_make_siblings() {
        assert_eq!(tree("<p>one<p>two"), r#"p("one") p("two")"#);
        assert_eq!(tree("<ul><li>a<li>b</ul>"), r#"ul(li("a") li("b"))"#);
        assert_eq!(tree("<dl><dt>t<dd>d<dt>u</dl>"), r#"dl(dt("t") dd("d") dt("u"))"#);
        assert_eq!(tree("<p>text<div>block</div>"), r#"p("text") div("block")"#);
        assert_eq!(tree("<h1>a<h2>b</h1>c"), r#"h1("a") h2("b") "c""#);
        assert_eq!(tree("<a href=1>x<a href=2>y</a>"), r#"a("x") a("y")"#);
        assert_eq!(tree("<ul><li>a<ul><li>b</ul><li>c</ul>"), r#"ul(li("a" ul(li("b"))) li("c"))"#);
    }

    #[test]
    fn tables_keep_their_shape() {
        assert_eq!(
            tree("<table><tr><td>a<td>b<tr><td>c</table><p>after"),
            r#"table(tr(td("a") td("b")) tr(td("c"))) p("after")"#
        );
        assert_eq!(
            tree("<table><thead><tr><th>h<tbody><tr><td>x</table>"),
            r#"table(thead(tr(th("h"))) tbody(tr(td("x"))))"#
        );
        // A stray end tag inside a cell does not close the table around it.
        assert_eq!(tree("<div><table><tr><td>a</div>b</td></tr></table>c</div>"), r#"div(table(tr(td("a" "b"))) "c")"#);
    }

    #[test]
    fn raw_text_is_not_markup() {
        let dom = parse(r#"<script>if (a<b) document.write("</div><p>x</p>")</script><p>real</p>"#.to_owned());
        assert_eq!(outline(&dom).matches("p(").count(), 1);
        assert_eq!(tree("<style>p{}</style><title>A &amp; B</title>"), r#"style("p{}") title("A & B")"#);
        assert_eq!(tree("<SCRIPT>x</Script ><p>y"), r#"script("x") p("y")"#);
        assert_eq!(tree("<script>never closed <p>"), r#"script("never closed <p>")"#);
    }

    #[test]
    fn comments_doctypes_and_stray_brackets() {
        assert_eq!(tree("<!DOCTYPE html><!-- c <p>no --><p>a < b</p><?php x ?><!--->"), r#"p("a < b")"#);
        assert_eq!(tree("<p>1 <3 2</p></>"), r#"p("1 <3 2")"#);
    }

    #[test]
    fn attributes_are_read_like_browsers() {
        let dom =
            parse(r#"<a HREF="/x?a=1&amp;b=2" title='q "t"' data-x=unquoted checked href="dup">t</a>"#.to_owned());
        let a = dom.find(ROOT, Tag::A).unwrap();
        assert_eq!(dom.attr(a, "href").as_deref(), Some("/x?a=1&b=2"));
        assert_eq!(dom.attr(a, "title").as_deref(), Some("q \"t\""));
        assert_eq!(dom.attr(a, "data-x").as_deref(), Some("unquoted"));
        assert_eq!(dom.attr(a, "checked").as_deref(), Some(""));
        assert_eq!(dom.attrs(a).len(), 4, "the duplicate href is dropped");
        let dom = parse(r#"<img src=a.png alt="unterminated"#.to_owned());
        assert!(dom.find(ROOT, Tag::Img).is_some());
    }

    #[test]
    fn void_and_self_closing_elements() {
        assert_eq!(tree("<p>a<br>b<img src=x>c</p>"), r#"p("a" br "b" img "c")"#);
        assert_eq!(tree("<div/>inside</div>"), r#"div("inside")"#);
        assert_eq!(tree("<svg><path/><text>t</text></svg>"), r#"svg(path text("t"))"#);
        assert_eq!(tree("<p>a</br>b"), r#"p("a" br "b")"#);
    }

    #[test]
    fn one_body_and_end_tags_that_match_nothing_are_ignored() {
        assert_eq!(tree("<html><body><p>a</p></body></html><p>b"), r#"html(body(p("a") p("b")))"#);
        assert_eq!(tree("<body a=1><body b=2><p>x</span></p>"), r#"body(p("x"))"#);
        assert_eq!(tree("<custom-el>x</CUSTOM-EL>y"), r#"custom-el("x") "y""#);
    }

    #[test]
    fn an_unclosed_head_ends_where_the_body_begins() {
        assert_eq!(
            tree("<html><head><title>t</title><meta x><body><p>a"),
            r#"html(head(title("t") meta) body(p("a")))"#
        );
        assert_eq!(tree("<head><link><div>b</div>"), r#"head(link) div("b")"#);
    }

    #[test]
    fn depth_is_capped_without_recursion() {
        let html = "<div>".repeat(100_000) + "deep" + &"</div>".repeat(100_000) + "<p>after</p>";
        let dom = parse(html);
        assert_eq!(dom.len(), 1 + 100_000 + 3, "the document, every element and both texts are kept");
        let p = dom.find(ROOT, Tag::P).unwrap();
        assert_eq!(dom.text_content(p), "after");
        let mut depth = 0;
        let mut at = dom.find(ROOT, Tag::Div).unwrap();
        while let Some(child) = dom.children(at).find(|c| dom.is_element(*c)) {
            depth += 1;
            at = child;
        }
        assert!(depth <= MAX_DEPTH, "depth {depth}");
    }

    #[test]
    fn hostile_bytes_never_panic() {
        for input in
            ["<", "</", "<!", "<!-", "<a", "<a b", "<a b=", "<a b='", "&", "<p>&#x110000;&#0;&", "\u{0}<\u{0}>"]
        {
            let _ = tree(input);
        }
        let mut seed = 7u64;
        for _ in 0..300 {
            let mut s = String::new();
            for _ in 0..200 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let pick = (seed >> 33) as usize;
                s.push_str(
                    [
                        "<", ">", "/", "p", "div", "a", "=", "\"", "'", " ", "!--", "&amp;", "x", "script", "<table>",
                        "<td>", "\u{e9}",
                    ][pick % 17],
                );
            }
            let dom = parse(s.clone());
            // The tree is well-formed: parents precede children, links agree.
            for id in 1..dom.len() as NodeId {
                let parent = dom.node(id).parent;
                assert!(parent < id, "node {id} has parent {parent}");
                assert!(dom.children(parent).any(|c| c == id));
            }
        }
    }
}
