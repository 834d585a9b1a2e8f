//! The document tree extraction works on: nodes in one vector, text and
//! attributes as spans into the decoded source, so building it allocates a few
//! vectors, not a string per node.

use std::borrow::Cow;

pub type NodeId = u32;
/// "No node": the parent of the root, the sibling after the last.
pub const NONE: NodeId = u32::MAX;
pub const ROOT: NodeId = 0;

macro_rules! tags {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// The elements extraction tells apart; everything else is `Other`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Tag { $($variant,)* Other }

        impl Tag {
            /// The tag of a lower-case element name.
            pub fn from_lower(name: &[u8]) -> Tag {
                match name { $($name => Tag::$variant,)* _ => Tag::Other }
            }

            pub fn name(self) -> &'static str {
                match self { $(Tag::$variant => std::str::from_utf8($name).unwrap_or(""),)* Tag::Other => "" }
            }
        }
    };
}

tags! {
    A = b"a", Abbr = b"abbr", Address = b"address", Area = b"area", Article = b"article", Aside = b"aside",
    Audio = b"audio", B = b"b", Base = b"base", Blockquote = b"blockquote", Body = b"body", Br = b"br",
    Button = b"button", Canvas = b"canvas", Caption = b"caption", Center = b"center", Cite = b"cite",
    Code = b"code", Col = b"col", Colgroup = b"colgroup", Dd = b"dd", Del = b"del", Details = b"details",
    Dfn = b"dfn", Dialog = b"dialog", Dir = b"dir", Div = b"div", Dl = b"dl", Dt = b"dt", Em = b"em",
    Embed = b"embed", Fieldset = b"fieldset", Figcaption = b"figcaption", Figure = b"figure", Font = b"font",
    Footer = b"footer", Form = b"form", Frame = b"frame", Frameset = b"frameset", H1 = b"h1", H2 = b"h2",
    H3 = b"h3", H4 = b"h4", H5 = b"h5", H6 = b"h6", Head = b"head", Header = b"header", Hgroup = b"hgroup",
    Hr = b"hr", Html = b"html", I = b"i", Iframe = b"iframe", Img = b"img", Input = b"input", Ins = b"ins",
    Kbd = b"kbd", Keygen = b"keygen", Label = b"label", Legend = b"legend", Li = b"li", Link = b"link",
    Listing = b"listing", Main = b"main", Map = b"map", Mark = b"mark", Math = b"math", Menu = b"menu",
    Meta = b"meta", Nav = b"nav", Nobr = b"nobr", Noembed = b"noembed", Noframes = b"noframes",
    Noscript = b"noscript", Object = b"object", Ol = b"ol", Optgroup = b"optgroup", Option = b"option",
    P = b"p", Param = b"param", Picture = b"picture", Plaintext = b"plaintext", Pre = b"pre", Q = b"q",
    S = b"s", Samp = b"samp", Script = b"script", Section = b"section", Select = b"select", Small = b"small",
    Source = b"source", Span = b"span", Strike = b"strike", Strong = b"strong", Style = b"style", Sub = b"sub",
    Summary = b"summary", Sup = b"sup", Svg = b"svg", Table = b"table", Tbody = b"tbody", Td = b"td",
    Template = b"template", Textarea = b"textarea", Tfoot = b"tfoot", Th = b"th", Thead = b"thead",
    Time = b"time", Title = b"title", Tr = b"tr", Track = b"track", Tt = b"tt", U = b"u", Ul = b"ul",
    Var = b"var", Video = b"video", Wbr = b"wbr", Xmp = b"xmp",
}

impl Tag {
    /// Elements that never have content.
    pub fn is_void(self) -> bool {
        matches!(
            self,
            Tag::Area
                | Tag::Base
                | Tag::Br
                | Tag::Col
                | Tag::Embed
                | Tag::Hr
                | Tag::Img
                | Tag::Input
                | Tag::Keygen
                | Tag::Link
                | Tag::Meta
                | Tag::Param
                | Tag::Source
                | Tag::Track
                | Tag::Wbr
        )
    }

    pub fn heading_level(self) -> Option<u8> {
        match self {
            Tag::H1 => Some(1),
            Tag::H2 => Some(2),
            Tag::H3 => Some(3),
            Tag::H4 => Some(4),
            Tag::H5 => Some(5),
            Tag::H6 => Some(6),
            _ => None,
        }
    }
}

/// A byte range of the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    pub start: u32,
    pub end: u32,
}

impl Range {
    pub fn new(start: usize, end: usize) -> Range {
        Range { start: start as u32, end: end as u32 }
    }

    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeData {
    Document,
    Element {
        tag: Tag,
        /// The element's name as written (compare case-insensitively).
        name: Range,
        /// Its attributes: `attrs[first..first + count]`.
        first_attr: u32,
        attr_count: u16,
    },
    /// Text, character references not yet decoded (raw for script and style).
    Text(Range),
}

#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub parent: NodeId,
    pub first_child: NodeId,
    pub last_child: NodeId,
    pub next: NodeId,
    pub data: NodeData,
}

#[derive(Clone, Copy, Debug)]
pub struct Attr {
    pub name: Range,
    pub value: Range,
}

/// A parsed document.
pub struct Dom {
    pub(crate) src: String,
    pub(crate) nodes: Vec<Node>,
    pub(crate) attrs: Vec<Attr>,
}

impl Dom {
    pub fn source(&self) -> &str {
        &self.src
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn slice(&self, range: Range) -> &str {
        self.src.get(range.start as usize..range.end as usize).unwrap_or("")
    }

    pub fn tag(&self, id: NodeId) -> Option<Tag> {
        match self.nodes[id as usize].data {
            NodeData::Element { tag, .. } => Some(tag),
            _ => None,
        }
    }

    pub fn is_element(&self, id: NodeId) -> bool {
        matches!(self.nodes[id as usize].data, NodeData::Element { .. })
    }

    /// The lower-case name of an element (allocates only for unusual case).
    pub fn name(&self, id: NodeId) -> Cow<'_, str> {
        match self.nodes[id as usize].data {
            NodeData::Element { tag: Tag::Other, name, .. } => {
                let raw = self.slice(name);
                if raw.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(raw.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(raw)
                }
            }
            NodeData::Element { tag, .. } => Cow::Borrowed(tag.name()),
            _ => Cow::Borrowed(""),
        }
    }

    /// The raw (undecoded) text of a text node.
    pub fn raw_text(&self, id: NodeId) -> &str {
        match self.nodes[id as usize].data {
            NodeData::Text(range) => self.slice(range),
            _ => "",
        }
    }

    /// The decoded text of a text node.
    pub fn text(&self, id: NodeId) -> Cow<'_, str> {
        crate::entities::decode(self.raw_text(id))
    }

    pub fn attrs(&self, id: NodeId) -> &[Attr] {
        match self.nodes[id as usize].data {
            NodeData::Element { first_attr, attr_count, .. } => {
                let start = first_attr as usize;
                &self.attrs[start..start + attr_count as usize]
            }
            _ => &[],
        }
    }

    /// The raw value of an attribute (`name` lower-case).
    pub fn attr_raw(&self, id: NodeId, name: &str) -> Option<&str> {
        self.attrs(id).iter().find(|a| self.slice(a.name).eq_ignore_ascii_case(name)).map(|a| self.slice(a.value))
    }

    /// The decoded value of an attribute (`name` lower-case).
    pub fn attr(&self, id: NodeId, name: &str) -> Option<Cow<'_, str>> {
        self.attr_raw(id, name).map(crate::entities::decode_attribute)
    }

    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        let p = self.nodes[id as usize].parent;
        (p != NONE).then_some(p)
    }

    pub fn children(&self, id: NodeId) -> Children<'_> {
        Children { dom: self, next: self.nodes[id as usize].first_child }
    }

    /// Every node below `id`, in document order (not `id` itself). No recursion.
    pub fn descendants(&self, id: NodeId) -> Descendants<'_> {
        Descendants { dom: self, root: id, next: self.nodes[id as usize].first_child }
    }

    /// The first element below `id` (or `id`) with this tag.
    pub fn find(&self, id: NodeId, tag: Tag) -> Option<NodeId> {
        if self.tag(id) == Some(tag) {
            return Some(id);
        }
        self.descendants(id).find(|n| self.tag(*n) == Some(tag))
    }

    /// The node after `id`'s subtree in document order, staying below `root`.
    pub fn next_after_subtree(&self, root: NodeId, mut id: NodeId) -> NodeId {
        loop {
            if id == root {
                return NONE;
            }
            let node = &self.nodes[id as usize];
            if node.next != NONE {
                return node.next;
            }
            id = node.parent;
            if id == NONE {
                return NONE;
            }
        }
    }

    /// Every text below `id`, decoded and concatenated; scripts, styles and
    /// templates are not text.
    pub fn text_content(&self, id: NodeId) -> String {
        self.text_content_except(id, |n| {
            matches!(
                self.nodes[n as usize].data,
                NodeData::Element { tag: Tag::Script | Tag::Style | Tag::Template | Tag::Noscript, .. }
            )
        })
    }

    /// The text below `id`, leaving out the subtrees of the elements `skip`
    /// names.
    pub fn text_content_except(&self, id: NodeId, skip: impl Fn(NodeId) -> bool) -> String {
        let mut out = String::new();
        let mut walk = self.descendants(id);
        while let Some(n) = walk.next() {
            match self.nodes[n as usize].data {
                NodeData::Text(_) => out.push_str(&self.text(n)),
                NodeData::Element { .. } if skip(n) => walk.skip_subtree(n),
                _ => {}
            }
        }
        out
    }
}

pub struct Children<'a> {
    dom: &'a Dom,
    next: NodeId,
}

impl Iterator for Children<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        let id = self.next;
        if id == NONE {
            return None;
        }
        self.next = self.dom.nodes[id as usize].next;
        Some(id)
    }
}

pub struct Descendants<'a> {
    dom: &'a Dom,
    root: NodeId,
    next: NodeId,
}

impl Descendants<'_> {
    /// Does not descend into the node returned last.
    pub fn skip_subtree(&mut self, of: NodeId) {
        self.next = self.dom.next_after_subtree(self.root, of);
    }
}

impl Iterator for Descendants<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        let id = self.next;
        if id == NONE {
            return None;
        }
        let node = &self.dom.nodes[id as usize];
        self.next =
            if node.first_child != NONE { node.first_child } else { self.dom.next_after_subtree(self.root, id) };
        Some(id)
    }
}
