//! Finding the main content: prune what is never content, measure text and link
//! density for every element in two linear passes (no recursion), score
//! paragraph-like elements into their ancestors, and take the best container
//! with the siblings that continue it.

use crate::dom::{Dom, NONE, NodeData, NodeId, Tag};
use aho_corasick::AhoCorasick;
use std::sync::OnceLock;

/// Per-node measurements, indexed by node id.
pub struct Analysis {
    /// Never content: scripts, navigation, hidden, boilerplate by name.
    pub removed: Vec<bool>,
    /// Visible text bytes (excluding whitespace) below the node.
    pub text: Vec<u32>,
    /// Of which inside links.
    pub link_text: Vec<u32>,
    /// Commas below the node (a sign of prose).
    pub commas: Vec<u32>,
    /// Whether the element has block-level element children.
    pub has_block_child: Vec<bool>,
    pub score: Vec<f32>,
}

impl Analysis {
    pub fn link_density(&self, id: NodeId) -> f32 {
        let text = self.text[id as usize];
        if text == 0 { 0.0 } else { self.link_text[id as usize] as f32 / text as f32 }
    }
}

/// Tags that are never content.
fn never_content(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::Script
            | Tag::Style
            | Tag::Noscript
            | Tag::Template
            | Tag::Head
            | Tag::Title
            | Tag::Meta
            | Tag::Link
            | Tag::Svg
            | Tag::Math
            | Tag::Iframe
            | Tag::Object
            | Tag::Embed
            | Tag::Canvas
            | Tag::Input
            | Tag::Select
            | Tag::Textarea
            | Tag::Button
            | Tag::Option
            | Tag::Optgroup
            | Tag::Nav
            | Tag::Aside
            | Tag::Footer
            | Tag::Header
            | Tag::Dialog
            | Tag::Audio
            | Tag::Video
            | Tag::Map
            | Tag::Frame
            | Tag::Frameset
            | Tag::Noembed
            | Tag::Noframes
            | Tag::Label
            | Tag::Legend
    )
}

/// Never text, even where a caller asks for it.
fn is_code_or_head(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::Script | Tag::Style | Tag::Noscript | Tag::Template | Tag::Head | Tag::Title | Tag::Meta | Tag::Link
    )
}

pub fn is_block(tag: Tag) -> bool {
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
            | Tag::Dd
            | Tag::Dt
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
            | Tag::Main
            | Tag::Menu
            | Tag::Nav
            | Tag::Ol
            | Tag::P
            | Tag::Pre
            | Tag::Section
            | Tag::Summary
            | Tag::Table
            | Tag::Tbody
            | Tag::Thead
            | Tag::Tfoot
            | Tag::Tr
            | Tag::Td
            | Tag::Th
            | Tag::Ul
    )
}

static UNLIKELY: Needles = Needles::new(&[
    "-ad-",
    "ad-break",
    "adbox",
    "advert",
    "agegate",
    "ai2html",
    "banner",
    "breadcrumb",
    "combx",
    "comment",
    "community",
    "consent",
    "cookie",
    "cover-wrap",
    "disqus",
    "extra",
    "footer",
    "gdpr",
    "header",
    "legends",
    "menu",
    "modal",
    "newsletter",
    "outbrain",
    "pagination",
    "pager",
    "paywall",
    "popup",
    "promo",
    "related",
    "remark",
    "replies",
    "rss",
    "share",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "social",
    "sponsor",
    "subscribe",
    "supplemental",
    "taboola",
    "toolbar",
    "widget",
    "yom-remote",
]);

static MAYBE: Needles =
    Needles::new(&["and", "article", "body", "column", "content", "main", "shadow", "story", "entry", "post-"]);

static POSITIVE: Needles = Needles::new(&[
    "article",
    "body",
    "content",
    "entry",
    "hentry",
    "h-entry",
    "main",
    "page",
    "pagination",
    "post",
    "text",
    "blog",
    "story",
]);

static NEGATIVE: Needles = Needles::new(&[
    "-ad-",
    "hidden",
    "hid",
    "banner",
    "combx",
    "comment",
    "com-",
    "contact",
    "foot",
    "footer",
    "footnote",
    "gdpr",
    "masthead",
    "media",
    "meta",
    "outbrain",
    "promo",
    "related",
    "scroll",
    "share",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "sponsor",
    "shopping",
    "tags",
    "tool",
    "widget",
    "byline",
    "author",
    "caption",
    "credit",
    "newsletter",
]);

const HIDDEN_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "menu",
    "menubar",
    "search",
    "dialog",
    "alertdialog",
    "tooltip",
    "alert",
];

/// Words looked for inside class and id names, all at once: one pass of an
/// Aho-Corasick automaton rather than a substring search per word (class
/// names are read for every element of every page).
struct Needles {
    words: &'static [&'static str],
    automaton: OnceLock<Option<AhoCorasick>>,
}

impl Needles {
    const fn new(words: &'static [&'static str]) -> Needles {
        Needles { words, automaton: OnceLock::new() }
    }
}

fn contains_any(haystack: &str, needles: &Needles) -> bool {
    match needles.automaton.get_or_init(|| AhoCorasick::new(needles.words).ok()) {
        Some(automaton) => automaton.is_match(haystack),
        None => needles.words.iter().any(|n| haystack.contains(n)),
    }
}

/// `class` and `id`, lower-cased, into `buf`.
fn names(dom: &Dom, id: NodeId, buf: &mut String) {
    buf.clear();
    for name in ["class", "id"] {
        if let Some(v) = dom.attr_raw(id, name) {
            buf.push_str(v);
            buf.push(' ');
        }
    }
    buf.make_ascii_lowercase();
}

fn hidden(dom: &Dom, id: NodeId) -> bool {
    if dom.attr_raw(id, "hidden").is_some() {
        return true;
    }
    if dom.attr_raw(id, "aria-hidden").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return true;
    }
    if let Some(role) = dom.attr_raw(id, "role") {
        let role = role.trim().to_ascii_lowercase();
        if HIDDEN_ROLES.contains(&role.as_str()) {
            return true;
        }
    }
    if let Some(style) = dom.attr_raw(id, "style") {
        let style: String = style.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        if style.contains("display:none") || style.contains("visibility:hidden") {
            return true;
        }
    }
    false
}

/// Visible characters (not whitespace) and commas of a text.
fn measure(text: &str) -> (u32, u32) {
    let mut chars = 0u32;
    let mut commas = 0u32;
    for b in text.bytes() {
        if !b.is_ascii_whitespace() {
            chars += 1;
        }
        if b == b',' {
            commas += 1;
        }
    }
    // Full-width and ideographic commas are three bytes each.
    commas += (text.matches('，').count() + text.matches('、').count()) as u32;
    (chars, commas)
}

/// Which parts of the page a caller wants considered: subtrees to leave out,
/// and, when given, the only subtrees to look in.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub exclude: Vec<NodeId>,
    pub include: Option<Vec<NodeId>>,
}

pub fn analyse(dom: &Dom) -> Analysis {
    analyse_in(dom, &Scope::default())
}

/// Analyses the page within a caller's scope: excluded subtrees are removed;
/// with includes, everything outside the included subtrees is removed too
/// (their ancestors stay, as the way down to them).
pub fn analyse_in(dom: &Dom, scope: &Scope) -> Analysis {
    let n = dom.len();
    let mut excluded = vec![false; n];
    for id in &scope.exclude {
        if let Some(slot) = excluded.get_mut(*id as usize) {
            *slot = true;
        }
    }
    // With includes: inside an included subtree, or on the way down to one.
    let wanted = scope.include.as_ref().map(|include| {
        let mut inside = vec![false; n];
        let mut on_path = vec![false; n];
        for id in include {
            if let Some(slot) = inside.get_mut(*id as usize) {
                *slot = true;
            }
        }
        for id in 1..n {
            let parent = dom.node(id as NodeId).parent as usize;
            inside[id] |= inside[parent];
        }
        for id in (1..n).rev() {
            if inside[id] || on_path[id] {
                let parent = dom.node(id as NodeId).parent as usize;
                on_path[parent] = true;
            }
        }
        (inside, on_path)
    });
    let mut a = Analysis {
        removed: vec![false; n],
        text: vec![0; n],
        link_text: vec![0; n],
        commas: vec![0; n],
        has_block_child: vec![false; n],
        score: vec![0.0; n],
    };
    let mut in_link = vec![false; n];
    // Top-down (parents come before children in node order): what is never
    // content by its tag or because it is hidden.
    for id in 1..n as NodeId {
        let node = dom.node(id);
        let parent = node.parent as usize;
        if a.removed[parent] {
            a.removed[id as usize] = true;
            continue;
        }
        in_link[id as usize] = in_link[parent];
        if let NodeData::Element { tag, .. } = node.data {
            if is_block(tag) {
                a.has_block_child[parent] = true;
            }
            // A link that leads away; in-page anchors are not navigation.
            in_link[id as usize] |= tag == Tag::A
                && dom.attr_raw(id, "href").is_some_and(|h| {
                    let h = h.trim();
                    !h.is_empty()
                        && !h.starts_with('#')
                        && !h.get(..11).is_some_and(|p| p.eq_ignore_ascii_case("javascript:"))
                });
            // What the caller explicitly included is content, whatever its tag.
            let included = wanted.as_ref().is_some_and(|(inside, _)| inside[id as usize]);
            let never = if included { is_code_or_head(tag) } else { never_content(tag) };
            a.removed[id as usize] = never || hidden(dom, id);
        }
        a.removed[id as usize] |= excluded[id as usize]
            || wanted.as_ref().is_some_and(|(inside, on_path)| !inside[id as usize] && !on_path[id as usize]);
    }
    sum_text(dom, &mut a, &in_link);
    // Boilerplate by class or id: comments, sharing, sidebars… but never a
    // container holding much of the page's text, whatever its name says
    // (`widget Blog`, `wrapper header-style-2`, `page-ad-margins`).
    let total = a.text[0].max(1) as f32;
    let mut buf = String::new();
    let mut pruned = false;
    for id in 1..n as NodeId {
        let i = id as usize;
        let parent = dom.node(id).parent as usize;
        if a.removed[parent] {
            a.removed[i] = true;
            continue;
        }
        let Some(tag) = dom.tag(id) else { continue };
        if a.removed[i] || matches!(tag, Tag::Body | Tag::Html | Tag::Article | Tag::Main | Tag::A | Tag::P) {
            continue;
        }
        if a.text[i] as f32 > total * 0.3 || wanted.as_ref().is_some_and(|(inside, _)| inside[i]) {
            continue;
        }
        names(dom, id, &mut buf);
        if !buf.is_empty() && contains_any(&buf, &UNLIKELY) && !contains_any(&buf, &MAYBE) {
            a.removed[i] = true;
            pruned = true;
        }
    }
    if pruned {
        sum_text(dom, &mut a, &in_link);
    }
    score(dom, &mut a, &mut buf);
    a
}

/// Bottom-up sums of text, link text and commas over what is not removed;
/// children come after parents, so one reverse pass covers every subtree.
fn sum_text(dom: &Dom, a: &mut Analysis, in_link: &[bool]) {
    a.text.iter_mut().for_each(|t| *t = 0);
    a.link_text.iter_mut().for_each(|t| *t = 0);
    a.commas.iter_mut().for_each(|t| *t = 0);
    for id in (1..dom.len()).rev() {
        if a.removed[id] {
            continue;
        }
        if let NodeData::Text(range) = dom.node(id as NodeId).data {
            let (chars, commas) = measure(dom.slice(range));
            a.text[id] += chars;
            a.commas[id] += commas;
            if in_link[id] {
                a.link_text[id] += chars;
            }
        }
        let parent = dom.node(id as NodeId).parent;
        if parent != NONE {
            let p = parent as usize;
            a.text[p] += a.text[id];
            a.link_text[p] += a.link_text[id];
            a.commas[p] += a.commas[id];
        }
    }
}

fn class_weight(dom: &Dom, id: NodeId, buf: &mut String) -> f32 {
    names(dom, id, buf);
    let mut weight = 0.0;
    if contains_any(buf, &NEGATIVE) {
        weight -= 25.0;
    }
    if contains_any(buf, &POSITIVE) {
        weight += 25.0;
    }
    weight
}

fn initial_score(dom: &Dom, id: NodeId, buf: &mut String) -> f32 {
    let base = match dom.tag(id) {
        Some(Tag::Div | Tag::Article | Tag::Main | Tag::Section) => 5.0,
        Some(Tag::Pre | Tag::Td | Tag::Blockquote) => 3.0,
        Some(Tag::Address | Tag::Ol | Tag::Ul | Tag::Dl | Tag::Dd | Tag::Dt | Tag::Li | Tag::Form) => -3.0,
        Some(Tag::H1 | Tag::H2 | Tag::H3 | Tag::H4 | Tag::H5 | Tag::H6 | Tag::Th) => -5.0,
        _ => 0.0,
    };
    base + class_weight(dom, id, buf)
}

/// Readability's scoring: each paragraph-like element with enough text adds to
/// its ancestors, less the farther up they are.
fn score(dom: &Dom, a: &mut Analysis, buf: &mut String) {
    let n = dom.len();
    let mut initialised = vec![false; n];
    for id in 1..n as NodeId {
        if a.removed[id as usize] {
            continue;
        }
        let paragraph_like = match dom.tag(id) {
            Some(Tag::P | Tag::Pre | Tag::Td) => true,
            Some(Tag::Div | Tag::Section | Tag::Blockquote) => !a.has_block_child[id as usize],
            _ => false,
        };
        let text = a.text[id as usize];
        if !paragraph_like || text < 25 {
            continue;
        }
        let points = 1.0 + a.commas[id as usize] as f32 + (text as f32 / 100.0).min(3.0);
        let mut ancestor = dom.node(id).parent;
        for level in 0..5 {
            if ancestor == NONE || ancestor == 0 {
                break;
            }
            let i = ancestor as usize;
            if !initialised[i] {
                initialised[i] = true;
                a.score[i] = initial_score(dom, ancestor, buf);
            }
            let divider = match level {
                0 => 1.0,
                1 => 2.0,
                l => l as f32 * 3.0,
            };
            a.score[i] += points / divider;
            ancestor = dom.node(ancestor).parent;
        }
    }
    for (i, done) in initialised.iter().enumerate() {
        if *done {
            let density = a.link_density(i as NodeId);
            a.score[i] *= 1.0 - density;
        }
    }
}

/// The main content: the best container and the siblings that continue it, in
/// document order. Empty when nothing scored.
pub fn main_content(dom: &Dom, a: &Analysis) -> Vec<NodeId> {
    let mut best = NONE;
    let mut best_score = 0.0f32;
    for (i, s) in a.score.iter().enumerate() {
        if *s > best_score && !a.removed[i] {
            best_score = *s;
            best = i as NodeId;
        }
    }
    if best == NONE {
        return Vec::new();
    }
    // A container holding little more than the best candidate's text, and
    // scoring nearly as well, is the same content with its wrapper.
    let mut top = best;
    while let Some(parent) = dom.parent(top) {
        if parent == 0 || matches!(dom.tag(parent), Some(Tag::Body | Tag::Html)) {
            break;
        }
        let p = parent as usize;
        if a.score[p] >= best_score * 0.75 && a.text[p] as f32 <= a.text[top as usize] as f32 * 1.6 {
            top = parent;
        } else {
            break;
        }
    }
    let Some(parent) = dom.parent(top) else { return vec![top] };
    let threshold = (best_score * 0.2).max(10.0);
    let mut chosen = Vec::new();
    for sibling in dom.children(parent) {
        if sibling == top {
            chosen.push(sibling);
            continue;
        }
        let s = sibling as usize;
        if a.removed[s] || !dom.is_element(sibling) {
            continue;
        }
        let density = a.link_density(sibling);
        let keep = a.score[s] >= threshold
            || (dom.tag(sibling) == Some(Tag::P) && {
                let text = a.text[s];
                (text > 80 && density < 0.25)
                    || (text > 0 && density == 0.0 && dom.text_content(sibling).contains(". "))
            });
        if keep {
            chosen.push(sibling);
        }
    }
    chosen
}
