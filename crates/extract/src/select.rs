//! CSS selectors over the [`Dom`], for the `includeSelectors` and
//! `excludeSelectors` options: a string such as `"article .content, #main"` in,
//! the elements it names out.
//!
//! Supported: type selectors (any case) and `*`; `#id` and `.class`
//! (case-sensitive, as in standards mode); attribute selectors `[a]`, `[a=v]`,
//! `[a="v"]`, `[a~=v]`, `[a^=v]`, `[a$=v]`, `[a*=v]` and `[a|=v]` with an
//! optional `i` (or `s`) flag — names in any case, values case-sensitive unless
//! `i`, compared with character references decoded; compound selectors; the
//! combinators ` `, `>`, `+` and `~`; lists with `,`; and the pseudo-classes
//! `:not()`, `:is()`, `:where()`, `:first-child`, `:last-child` and
//! `:nth-child(An+B | odd | even)`. CSS escapes work in names and strings
//! (`.md\:flex`, `#\31 23`). Anything else — other pseudo-classes,
//! pseudo-elements, namespaces — is a [`SelectorError`] saying what and where.
//!
//! Departures from the standard: `#`, `.` and unquoted attribute values take
//! any run of name characters, a leading digit included (`#123`,
//! `[width=100]`), since they can only mean one thing. And the arguments of
//! `:not()`, `:is()` and `:where()` are compound selectors (`:not(.a.b, p)`),
//! not complex ones (`:not(nav a)`): a combinator inside would multiply the
//! walks described below by each other at every level of nesting.
//!
//! Limits keep hostile input bounded: [`MAX_INPUT`] bytes, [`MAX_SELECTORS`]
//! selectors per list, [`MAX_COMPOUNDS`] compound selectors per selector and
//! [`MAX_NESTING`] levels of `:not()`/`:is()`/`:where()`. Parsing recurses only
//! into those, so at most [`MAX_NESTING`] deep.
//!
//! # Matching and its cost
//!
//! A selector matches right to left: its last compound against the element,
//! then parent, ancestor and sibling walks for each combinator, one level of
//! recursion per compound (so the stack follows the selector's at most
//! [`MAX_COMPOUNDS`] compounds, never the page's depth). Backtracking is the
//! bounded kind browsers use, without memory: a failure says how much of the
//! match it rules out — retry from the next earlier sibling, from the next
//! ancestor, or give up — and a walk stops as soon as retrying cannot help. In
//! particular a failed walk for a descendant combinator ends the whole match,
//! because every ancestor further up has fewer ancestors still. So `a b c d`
//! against a 512-deep page is one walk up the ancestors, not one per way of
//! choosing them.
//!
//! Worst case, matching a selector of `k` compounds against one element tests
//! each compound at most once per ancestor of the element and per earlier
//! sibling of the element or of an ancestor: O(k·(d + s)) compound tests, with
//! `d` the depth (at most 513) and `s` those siblings. A compound test is
//! linear in its simple selectors (`:not()`/`:is()` arguments included) and,
//! for attribute selectors, in the attribute's length. [`SelectorList::select`]
//! does this for every element below its root and every selector in the list.
//! The `s` term is the expensive one: `.x ~ p` on a page of `n` sibling
//! paragraphs and no `.x` walks back over every earlier sibling for each
//! paragraph, O(n²), as any matcher without memory does.
//!
//! The DOM has no previous-sibling link. [`SelectorList::matches`] finds an
//! element's previous element sibling, and its position for `:nth-child`, by
//! walking from the parent's first child: O(siblings) per step, fine for one
//! element. [`SelectorList::select`] instead indexes every element's previous
//! and next element sibling and its position once per call (O(n) time, 12
//! bytes a node), and only when the selector uses `+`, `~`, `:first-child`,
//! `:last-child` or `:nth-child`.

use crate::dom::{Dom, NONE, NodeData, NodeId, Tag};
use std::fmt;

/// The longest selector string accepted, in bytes.
pub const MAX_INPUT: usize = 4096;
/// The most selectors in one comma-separated list (the top-level one, or one
/// inside `:not()`, `:is()` or `:where()`).
pub const MAX_SELECTORS: usize = 64;
/// The most compound selectors in one selector: `a > b c` has three.
pub const MAX_COMPOUNDS: usize = 32;
/// How deep `:not()`, `:is()` and `:where()` may nest.
pub const MAX_NESTING: usize = 4;

/// Names quoted in error messages are cut to this many characters.
const SHOWN: usize = 40;

/// A parsed selector list, such as `article .content, #main`.
#[derive(Clone, Debug)]
pub struct SelectorList {
    selectors: Vec<Complex>,
    /// Whether any part looks at siblings: `select` then indexes them first.
    siblings: bool,
}

/// Why a selector string was refused: what, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    /// Where the problem is: a 1-based character position in the input.
    pub position: usize,
    /// What the problem is, for people.
    pub message: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at character {}", self.message, self.position)
    }
}

impl std::error::Error for SelectorError {}

/// One selector of a list, stored right to left.
#[derive(Clone, Debug)]
struct Complex {
    /// `compounds[0]` is the one the element itself must match.
    compounds: Vec<Compound>,
    /// `combinators[i]` joins `compounds[i]` to `compounds[i + 1]`, its left.
    combinators: Vec<Combinator>,
}

/// Simple selectors that must all match; none is `*`.
type Compound = Vec<Simple>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Combinator {
    /// ` `
    Descendant,
    /// `>`
    Child,
    /// `+`
    Next,
    /// `~`
    Later,
}

#[derive(Clone, Debug)]
enum Simple {
    /// A lower-case element name, and its tag when extraction knows it.
    Type {
        tag: Tag,
        name: Box<str>,
    },
    Id(Box<str>),
    Class(Box<str>),
    /// `name` is lower-case; with `ci`, so is `value`.
    Attr {
        name: Box<str>,
        op: AttrOp,
        value: Box<str>,
        ci: bool,
    },
    FirstChild,
    LastChild,
    /// `:nth-child(An+B)`.
    NthChild {
        a: i64,
        b: i64,
    },
    /// `:not(...)`: none of these.
    Not(Vec<Compound>),
    /// `:is(...)` and `:where(...)`: any of these.
    Is(Vec<Compound>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AttrOp {
    /// `[a]`
    Exists,
    /// `[a=v]`
    Equals,
    /// `[a~=v]`: one of its whitespace-separated words.
    Includes,
    /// `[a^=v]`
    Prefix,
    /// `[a$=v]`
    Suffix,
    /// `[a*=v]`
    Substring,
    /// `[a|=v]`: `v`, or `v-` followed by anything.
    Dash,
}

/// Parses a selector list such as `"article .content, #main"`.
pub fn parse(input: &str) -> Result<SelectorList, SelectorError> {
    if input.len() > MAX_INPUT {
        let position = input.char_indices().take_while(|(i, _)| *i < MAX_INPUT).count() + 1;
        return Err(SelectorError {
            position,
            message: format!("the selector is {} bytes long, over the limit of {MAX_INPUT}", input.len()),
        });
    }
    let mut parser = Parser { src: input, pos: 0, siblings: false };
    let selectors = parser.list(0, None)?;
    Ok(SelectorList { selectors, siblings: parser.siblings })
}

impl std::str::FromStr for SelectorList {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<SelectorList, SelectorError> {
        parse(s)
    }
}

impl SelectorList {
    /// Whether the element `id` matches any selector of the list. Other nodes
    /// (text, the document) never match. Combinators look at the whole
    /// document, not only some subtree.
    pub fn matches(&self, dom: &Dom, id: NodeId) -> bool {
        (id as usize) < dom.len() && dom.is_element(id) && self.matches_with(&Nav::walking(dom), id)
    }

    /// The elements at or below `root` that match, in document order, without
    /// the descendants of an element already returned (the outermost matches
    /// only: callers take whole subtrees). Combinators look at the whole
    /// document, as `querySelectorAll` does: `article p` finds the paragraphs
    /// below `root` that are inside an `article`, even one above `root`.
    pub fn select(&self, dom: &Dom, root: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        if root as usize >= dom.len() {
            return out;
        }
        let nav = if self.siblings { Nav::indexed(dom) } else { Nav::walking(dom) };
        if dom.is_element(root) && self.matches_with(&nav, root) {
            out.push(root);
            return out;
        }
        let mut below = dom.descendants(root);
        while let Some(id) = below.next() {
            if dom.is_element(id) && self.matches_with(&nav, id) {
                out.push(id);
                below.skip_subtree(id);
            }
        }
        out
    }

    fn matches_with(&self, nav: &Nav<'_>, id: NodeId) -> bool {
        self.selectors.iter().any(|s| nav.complex(s, 0, id) == Outcome::Matched)
    }
}

// ---------------------------------------------------------------------------
// Matching

/// How a match attempt ended; the failures say how far back to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Matched,
    /// Failed here: a `~` walk may try the next earlier sibling, a descendant
    /// walk the next ancestor.
    RetrySibling,
    /// No sibling of this element can do better (what failed depends only on
    /// their shared parent): only a descendant walk may go on, to the next
    /// ancestor.
    RetryAncestor,
    /// Nothing further up or back can match either.
    Fail,
}

/// Sibling links the DOM lacks, per node: made once by `select`.
struct Siblings {
    prev: Vec<NodeId>,
    next: Vec<NodeId>,
    /// 1-based position among the parent's element children.
    index: Vec<u32>,
}

/// The DOM seen as elements: parents, element siblings, positions.
struct Nav<'a> {
    dom: &'a Dom,
    siblings: Option<Siblings>,
}

/// Earlier element siblings, nearest first.
enum Earlier<'a> {
    Linked(&'a [NodeId], NodeId),
    /// In document order; taken from the end.
    Listed(Vec<NodeId>),
}

impl Iterator for Earlier<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        match self {
            Earlier::Linked(prev, at) => {
                let p = prev[*at as usize];
                *at = p;
                (p != NONE).then_some(p)
            }
            Earlier::Listed(list) => list.pop(),
        }
    }
}

impl<'a> Nav<'a> {
    fn walking(dom: &'a Dom) -> Nav<'a> {
        Nav { dom, siblings: None }
    }

    fn indexed(dom: &'a Dom) -> Nav<'a> {
        let n = dom.len();
        let mut s = Siblings { prev: vec![NONE; n], next: vec![NONE; n], index: vec![0; n] };
        for parent in 0..n as NodeId {
            let mut last = NONE;
            let mut count = 0u32;
            for child in dom.children(parent) {
                if dom.is_element(child) {
                    count += 1;
                    s.index[child as usize] = count;
                    s.prev[child as usize] = last;
                    if last != NONE {
                        s.next[last as usize] = child;
                    }
                    last = child;
                }
            }
        }
        Nav { dom, siblings: Some(s) }
    }

    fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.dom.parent(id).filter(|p| self.dom.is_element(*p))
    }

    /// Element children of `id`'s parent, in order, up to (not with) `id`.
    fn before(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let parent = self.dom.node(id).parent;
        let first = if parent == NONE { NONE } else { self.dom.node(parent).first_child };
        let mut at = first;
        std::iter::from_fn(move || {
            while at != NONE && at != id {
                let c = at;
                at = self.dom.node(c).next;
                if self.dom.is_element(c) {
                    return Some(c);
                }
            }
            None
        })
    }

    fn prev(&self, id: NodeId) -> Option<NodeId> {
        match &self.siblings {
            Some(s) => Some(s.prev[id as usize]).filter(|p| *p != NONE),
            None => self.before(id).last(),
        }
    }

    fn next(&self, id: NodeId) -> Option<NodeId> {
        match &self.siblings {
            Some(s) => Some(s.next[id as usize]).filter(|n| *n != NONE),
            None => {
                let mut at = self.dom.node(id).next;
                while at != NONE && !self.dom.is_element(at) {
                    at = self.dom.node(at).next;
                }
                (at != NONE).then_some(at)
            }
        }
    }

    fn index(&self, id: NodeId) -> u32 {
        match &self.siblings {
            Some(s) => s.index[id as usize],
            None => self.before(id).count() as u32 + 1,
        }
    }

    fn earlier(&self, id: NodeId) -> Earlier<'_> {
        match &self.siblings {
            Some(s) => Earlier::Linked(&s.prev, id),
            None => Earlier::Listed(self.before(id).collect()),
        }
    }

    /// Matches `sel.compounds[i..]` with `compounds[i]` at element `id`.
    /// Recursion is one level per compound.
    fn complex(&self, sel: &Complex, i: usize, id: NodeId) -> Outcome {
        if !self.compound(&sel.compounds[i], id) {
            return Outcome::RetrySibling;
        }
        let Some(&combinator) = sel.combinators.get(i) else { return Outcome::Matched };
        match combinator {
            Combinator::Child => match self.parent(id) {
                None => Outcome::Fail,
                Some(p) => match self.complex(sel, i + 1, p) {
                    r @ (Outcome::Matched | Outcome::Fail) => r,
                    _ => Outcome::RetryAncestor,
                },
            },
            Combinator::Descendant => {
                let mut at = id;
                while let Some(p) = self.parent(at) {
                    match self.complex(sel, i + 1, p) {
                        r @ (Outcome::Matched | Outcome::Fail) => return r,
                        Outcome::RetrySibling | Outcome::RetryAncestor => at = p,
                    }
                }
                Outcome::Fail
            }
            Combinator::Next => match self.prev(id) {
                None => Outcome::RetryAncestor,
                Some(s) => self.complex(sel, i + 1, s),
            },
            Combinator::Later => {
                for s in self.earlier(id) {
                    match self.complex(sel, i + 1, s) {
                        Outcome::RetrySibling => {}
                        r => return r,
                    }
                }
                Outcome::RetryAncestor
            }
        }
    }

    fn compound(&self, compound: &[Simple], id: NodeId) -> bool {
        compound.iter().all(|s| self.simple(s, id))
    }

    fn simple(&self, simple: &Simple, id: NodeId) -> bool {
        let dom = self.dom;
        match simple {
            Simple::Type { tag, name } => match dom.node(id).data {
                NodeData::Element { tag: Tag::Other, name: raw, .. } => {
                    *tag == Tag::Other && dom.slice(raw).eq_ignore_ascii_case(name)
                }
                NodeData::Element { tag: own, .. } => own == *tag,
                _ => false,
            },
            Simple::Id(want) => dom.attr(id, "id").is_some_and(|v| *v == **want),
            Simple::Class(want) => {
                dom.attr(id, "class").is_some_and(|v| v.split_ascii_whitespace().any(|c| c == &**want))
            }
            Simple::Attr { name, op, value, ci } => {
                dom.attr(id, name).is_some_and(|v| attr_matches(&v, *op, value, *ci))
            }
            Simple::FirstChild => self.prev(id).is_none(),
            Simple::LastChild => self.next(id).is_none(),
            Simple::NthChild { a, b } => nth(*a, *b, i64::from(self.index(id))),
            Simple::Not(list) => !list.iter().any(|c| self.compound(c, id)),
            Simple::Is(list) => list.iter().any(|c| self.compound(c, id)),
        }
    }
}

/// Whether position `i` (1-based) is `a·n + b` for some `n ≥ 0`.
fn nth(a: i64, b: i64, i: i64) -> bool {
    if a == 0 {
        return i == b;
    }
    let d = i - b;
    d % a == 0 && d / a >= 0
}

/// An attribute's (decoded) value against `[name op want]`; with `ci`, `want`
/// is already lower-case.
fn attr_matches(value: &str, op: AttrOp, want: &str, ci: bool) -> bool {
    let eq = |a: &[u8], b: &[u8]| if ci { a.eq_ignore_ascii_case(b) } else { a == b };
    let (v, w) = (value.as_bytes(), want.as_bytes());
    match op {
        AttrOp::Exists => true,
        AttrOp::Equals => eq(v, w),
        AttrOp::Includes => {
            !w.is_empty()
                && !w.iter().any(u8::is_ascii_whitespace)
                && value.split_ascii_whitespace().any(|word| eq(word.as_bytes(), w))
        }
        AttrOp::Prefix => !w.is_empty() && v.len() >= w.len() && eq(&v[..w.len()], w),
        AttrOp::Suffix => !w.is_empty() && v.len() >= w.len() && eq(&v[v.len() - w.len()..], w),
        AttrOp::Substring if w.is_empty() => false,
        AttrOp::Substring if ci => memchr::memmem::find(&v.to_ascii_lowercase(), w).is_some(),
        AttrOp::Substring => memchr::memmem::find(v, w).is_some(),
        AttrOp::Dash => eq(v, w) || (v.len() > w.len() && v[w.len()] == b'-' && eq(&v[..w.len()], w)),
    }
}

// ---------------------------------------------------------------------------
// Parsing

/// An open `:not(`, `:is(`, `:where(` or `:nth-child(`: where, and its name.
#[derive(Clone, Copy)]
struct Open<'n> {
    at: usize,
    name: &'n str,
}

struct Parser<'a> {
    src: &'a str,
    /// A byte offset into `src`, always at a character boundary.
    pos: usize,
    siblings: bool,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii()
}

/// A name for an error message, cut short.
fn shown(name: &str) -> String {
    let mut out: String = name.chars().take(SHOWN).collect();
    if name.chars().nth(SHOWN).is_some() {
        out.push('…');
    }
    out
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(c);
        if yes {
            self.pos += c.len_utf8();
        }
        yes
    }

    fn skip_space(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn error<T>(&self, at: usize, message: impl Into<String>) -> Result<T, SelectorError> {
        Err(SelectorError { position: self.src[..at].chars().count() + 1, message: message.into() })
    }

    /// The error for an unexpected character, or the end, at the current spot.
    fn unexpected<T>(&self, context: &str) -> Result<T, SelectorError> {
        match self.peek() {
            Some(c) => self.error(self.pos, format!("unexpected {c:?}{context}")),
            None => self.error(self.pos, format!("unexpected end of the selector{context}")),
        }
    }

    /// Whether a backslash at `n` characters ahead starts a valid escape.
    fn escape_at(&self, n: usize) -> bool {
        self.peek_at(n) == Some('\\') && self.peek_at(n + 1).is_some_and(|c| !matches!(c, '\n' | '\r' | '\x0c'))
    }

    fn starts_ident(&self) -> bool {
        match self.peek() {
            Some('\\') => self.escape_at(0),
            Some('-') => match self.peek_at(1) {
                Some('\\') => self.escape_at(1),
                Some(c) => is_name_start(c) || c == '-',
                None => false,
            },
            Some(c) => is_name_start(c),
            None => false,
        }
    }

    fn starts_compound(&self) -> bool {
        matches!(self.peek(), Some('*' | '#' | '.' | '[' | ':' | '|')) || self.starts_ident()
    }

    /// After a backslash that starts a valid escape: the character it means.
    fn escape(&mut self) -> char {
        let mut code = 0u32;
        let mut digits = 0;
        while digits < 6 {
            let Some(d) = self.peek().and_then(|c| c.to_digit(16)) else { break };
            code = code * 16 + d;
            self.pos += 1;
            digits += 1;
        }
        if digits == 0 {
            return self.bump().unwrap_or(char::REPLACEMENT_CHARACTER);
        }
        // One whitespace character ends a hex escape and belongs to it.
        if self.eat('\r') {
            self.eat('\n');
        } else if self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
        char::from_u32(code).filter(|c| *c != '\0').unwrap_or(char::REPLACEMENT_CHARACTER)
    }

    /// Name characters and escapes, as many as there are (maybe none).
    fn name_chars(&mut self) -> String {
        let mut out = String::new();
        loop {
            match self.peek() {
                Some('\\') if self.escape_at(0) => {
                    self.pos += 1;
                    out.push(self.escape());
                }
                Some(c) if is_name_char(c) => {
                    self.pos += c.len_utf8();
                    out.push(c);
                }
                _ => return out,
            }
        }
    }

    /// The name after `#` or `.`.
    fn name_after(&mut self, sigil: char) -> Result<String, SelectorError> {
        let name = self.name_chars();
        if name.is_empty() {
            return self.unexpected(&format!(" after '{sigil}' (expected a name)"));
        }
        Ok(name)
    }

    /// A comma-separated list: the whole input, or inside `open`, up to (not
    /// past) its `)`.
    fn list(&mut self, nesting: usize, open: Option<Open<'_>>) -> Result<Vec<Complex>, SelectorError> {
        let mut out = Vec::new();
        loop {
            self.skip_space();
            if out.len() == MAX_SELECTORS {
                return self.error(self.pos, format!("more than {MAX_SELECTORS} selectors in one list"));
            }
            out.push(self.complex(nesting, open.is_some())?);
            if self.eat(',') {
                continue;
            }
            return match open {
                Some(open) if self.peek().is_none() => {
                    self.error(open.at, format!("':{}(' is never closed (expected ')')", open.name))
                }
                _ => Ok(out),
            };
        }
    }

    /// One selector, up to the end, a `,` or (when `inner`) a `)`.
    fn complex(&mut self, nesting: usize, inner: bool) -> Result<Complex, SelectorError> {
        let mut compounds = Vec::new();
        let mut combinators = Vec::new();
        let mut after: Option<char> = None;
        loop {
            let at = self.pos;
            let Some(compound) = self.compound(nesting)? else { return self.missing(after, inner) };
            if compounds.len() == MAX_COMPOUNDS {
                return self.error(at, format!("more than {MAX_COMPOUNDS} compound selectors in one selector"));
            }
            compounds.push(compound);
            let space = self.skip_space();
            let at = self.pos;
            let (combinator, symbol) = match self.peek() {
                None | Some(',') => break,
                Some(')') if inner => break,
                Some('>') => (Combinator::Child, '>'),
                Some('+') => (Combinator::Next, '+'),
                Some('~') => (Combinator::Later, '~'),
                Some(_) if space && self.starts_compound() => (Combinator::Descendant, ' '),
                Some(_) => return self.unexpected(""),
            };
            if inner {
                return self.error(
                    at,
                    "combinators are not supported inside :not(), :is() or :where(); \
                     use a compound selector such as :not(.a.b) or a list such as :not(.a, .b)",
                );
            }
            if combinator != Combinator::Descendant {
                self.pos += 1;
                self.skip_space();
            }
            if matches!(combinator, Combinator::Next | Combinator::Later) {
                self.siblings = true;
            }
            combinators.push(combinator);
            after = Some(symbol);
        }
        compounds.reverse();
        combinators.reverse();
        Ok(Complex { compounds, combinators })
    }

    /// The error where a compound selector should be and is not.
    fn missing<T>(&self, after: Option<char>, inner: bool) -> Result<T, SelectorError> {
        let next = self.peek();
        match (after, next) {
            (Some(symbol), None | Some(',' | ')')) => {
                self.error(self.pos, format!("expected a selector after the combinator '{symbol}'"))
            }
            (Some(symbol), _) => self.unexpected(&format!(" after the combinator '{symbol}'")),
            (None, None) => self.error(self.pos, "empty selector"),
            (None, Some(',')) => self.error(self.pos, "empty selector before ','"),
            (None, Some(')')) if inner => self.error(self.pos, "empty selector before ')'"),
            (None, Some(c @ ('>' | '+' | '~'))) => {
                self.error(self.pos, format!("a selector cannot start with the combinator '{c}'"))
            }
            (None, Some(_)) => self.unexpected(""),
        }
    }

    /// A compound selector, or `None` when none starts here.
    fn compound(&mut self, nesting: usize) -> Result<Option<Compound>, SelectorError> {
        let mut simples = Vec::new();
        let mut any = false;
        if self.eat('*') {
            any = true;
        } else if self.starts_ident() {
            let name = self.name_chars().to_ascii_lowercase();
            simples.push(Simple::Type { tag: Tag::from_lower(name.as_bytes()), name: name.into() });
            any = true;
        }
        if self.peek() == Some('|') {
            return self.error(self.pos, "namespaces ('|') are not supported");
        }
        loop {
            let at = self.pos;
            let simple = match self.peek() {
                Some('#') => {
                    self.pos += 1;
                    Simple::Id(self.name_after('#')?.into())
                }
                Some('.') => {
                    self.pos += 1;
                    Simple::Class(self.name_after('.')?.into())
                }
                Some('[') => {
                    self.pos += 1;
                    self.attribute(at)?
                }
                Some(':') => {
                    self.pos += 1;
                    self.pseudo(at, nesting)?
                }
                _ => break,
            };
            simples.push(simple);
            any = true;
        }
        Ok(any.then_some(simples))
    }

    /// After `[` (at `open`): the rest of an attribute selector.
    fn attribute(&mut self, open: usize) -> Result<Simple, SelectorError> {
        let unclosed = |p: &Self| p.error::<Simple>(open, "'[' is never closed (expected ']')");
        self.skip_space();
        if self.peek() == Some('|') || (self.peek() == Some('*') && self.peek_at(1) == Some('|')) {
            return self.error(self.pos, "namespaces ('|') are not supported");
        }
        if self.peek().is_none() {
            return unclosed(self);
        }
        if !self.starts_ident() {
            return self.unexpected(" after '[' (expected an attribute name)");
        }
        let name = self.name_chars().to_ascii_lowercase();
        if self.peek() == Some('|') && self.peek_at(1) != Some('=') {
            return self.error(self.pos, "namespaces ('|') are not supported");
        }
        self.skip_space();
        let op = match self.peek() {
            None => return unclosed(self),
            Some(']') => {
                self.pos += 1;
                return Ok(Simple::Attr { name: name.into(), op: AttrOp::Exists, value: "".into(), ci: false });
            }
            Some('=') => AttrOp::Equals,
            Some(c @ ('~' | '|' | '^' | '$' | '*')) if self.peek_at(1) == Some('=') => {
                self.pos += 1;
                match c {
                    '~' => AttrOp::Includes,
                    '|' => AttrOp::Dash,
                    '^' => AttrOp::Prefix,
                    '$' => AttrOp::Suffix,
                    _ => AttrOp::Substring,
                }
            }
            Some(_) => return self.unexpected(" in an attribute selector (expected ']' or an operator such as '=')"),
        };
        self.pos += 1; // the `=`
        self.skip_space();
        let (mut value, quoted) = match self.peek() {
            None => return unclosed(self),
            Some(q @ ('"' | '\'')) => (self.string(q)?, true),
            Some(_) => (self.name_chars(), false),
        };
        if !quoted && value.is_empty() {
            return self.unexpected(" in an attribute selector (expected a value after the operator)");
        }
        let space = self.skip_space();
        let mut ci = false;
        if (space || quoted) && self.starts_ident() {
            let at = self.pos;
            let flag = self.name_chars();
            match flag.as_str() {
                "i" | "I" => ci = true,
                "s" | "S" => {}
                _ => {
                    return self.error(
                        at,
                        format!("unknown attribute selector flag '{}' (expected 'i' or 's')", shown(&flag)),
                    );
                }
            }
            self.skip_space();
        }
        match self.peek() {
            None => return unclosed(self),
            Some(']') => self.pos += 1,
            Some(_) => return self.unexpected(" in an attribute selector (expected ']')"),
        }
        if ci {
            value.make_ascii_lowercase();
        }
        Ok(Simple::Attr { name: name.into(), op, value: value.into(), ci })
    }

    /// A quoted string, the current character being its opening `quote`.
    fn string(&mut self, quote: char) -> Result<String, SelectorError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return self.error(open, "the string is never closed"),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\n' | '\r' | '\x0c') => return self.error(self.pos, "a string cannot contain a line break"),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        None => return self.error(open, "the string is never closed"),
                        // An escaped line break continues the string.
                        Some('\r') => {
                            self.pos += 1;
                            self.eat('\n');
                        }
                        Some('\n' | '\x0c') => self.pos += 1,
                        Some(_) => out.push(self.escape()),
                    }
                }
                Some(c) => {
                    self.pos += c.len_utf8();
                    out.push(c);
                }
            }
        }
    }

    /// After `:` (at `at`): a pseudo-class.
    fn pseudo(&mut self, at: usize, nesting: usize) -> Result<Simple, SelectorError> {
        if self.eat(':') {
            let name = self.name_chars();
            return self.error(at, format!("pseudo-elements such as '::{}' are not supported", shown(&name)));
        }
        if !self.starts_ident() {
            return self.unexpected(" after ':' (expected a pseudo-class name)");
        }
        let name = self.name_chars();
        let lower = name.to_ascii_lowercase();
        if !self.eat('(') {
            return match lower.as_str() {
                "first-child" => {
                    self.siblings = true;
                    Ok(Simple::FirstChild)
                }
                "last-child" => {
                    self.siblings = true;
                    Ok(Simple::LastChild)
                }
                "not" | "is" | "where" | "nth-child" => {
                    self.error(at, format!("':{lower}' needs an argument in parentheses, as in ':{lower}(...)'"))
                }
                _ => self.error(at, format!("unsupported pseudo-class ':{}'", shown(&name))),
            };
        }
        let open = Open { at, name: &lower };
        match lower.as_str() {
            "nth-child" => {
                let (a, b) = self.nth(open)?;
                self.siblings = true;
                Ok(Simple::NthChild { a, b })
            }
            "not" | "is" | "where" => {
                if nesting >= MAX_NESTING {
                    return self
                        .error(at, format!(":not(), :is() and :where() nest more than {MAX_NESTING} deep here"));
                }
                let list = self.list(nesting + 1, Some(open))?;
                self.pos += 1; // the `)`, which `list` stopped at
                let compounds = list.into_iter().filter_map(|c| c.compounds.into_iter().next()).collect();
                Ok(if lower == "not" { Simple::Not(compounds) } else { Simple::Is(compounds) })
            }
            _ => self.error(at, format!("unsupported pseudo-class ':{}()'", shown(&name))),
        }
    }

    /// Consumes `word` (any case) when it is the whole name here.
    fn eat_word(&mut self, word: &str) -> bool {
        let rest = &self.src.as_bytes()[self.pos..];
        let yes = rest.len() >= word.len()
            && rest[..word.len()].eq_ignore_ascii_case(word.as_bytes())
            && !self.src[self.pos + word.len()..].chars().next().is_some_and(is_name_char);
        if yes {
            self.pos += word.len();
        }
        yes
    }

    /// Decimal digits, if any, as a number no larger than a billion.
    fn number(&mut self) -> Result<Option<i64>, SelectorError> {
        let start = self.pos;
        let mut n: i64 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            n = n * 10 + i64::from(d);
            if n > 1_000_000_000 {
                return self.error(start, "number too large in :nth-child()");
            }
            self.pos += 1;
        }
        Ok((self.pos > start).then_some(n))
    }

    /// After `:nth-child(`: `An+B`, `odd` or `even`, and the `)`.
    fn nth(&mut self, open: Open<'_>) -> Result<(i64, i64), SelectorError> {
        const EXPECTED: &str = " in :nth-child() (expected An+B, 'odd' or 'even')";
        self.skip_space();
        let ab = if self.eat_word("odd") {
            (2, 1)
        } else if self.eat_word("even") {
            (2, 0)
        } else {
            let sign = if self.eat('-') {
                -1
            } else {
                self.eat('+');
                1
            };
            let digits = self.number()?;
            if matches!(self.peek(), Some('n' | 'N')) {
                self.pos += 1;
                let a = sign * digits.unwrap_or(1);
                self.skip_space();
                let b = match self.peek() {
                    Some(c @ ('+' | '-')) => {
                        self.pos += 1;
                        self.skip_space();
                        let Some(b) = self.number()? else { return self.unexpected(EXPECTED) };
                        if c == '-' { -b } else { b }
                    }
                    _ => 0,
                };
                (a, b)
            } else {
                let Some(b) = digits else { return self.unexpected(EXPECTED) };
                (0, sign * b)
            }
        };
        self.skip_space();
        match self.peek() {
            Some(')') => {
                self.pos += 1;
                Ok(ab)
            }
            None => self.error(open.at, "':nth-child(' is never closed (expected ')')"),
            Some(_) => self.unexpected(EXPECTED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dom::ROOT;

    const PAGE: &str = r#"<!DOCTYPE html><html><head><title>t</title></head><body>
<header id="top" class="site-header"><nav class="menu"><a href="/">Home</a> <a href="/about" class="active">About</a></nav></header>
<main id="main">
  <article class="post featured" data-kind="news story" lang="en-US" id="Post">
    <h1 class="Title">Hello</h1>
    <div class="content">
      <p class="lead">one</p>
      <p>two</p>
      <p>three</p>
      <p>four</p>
      <p>five</p>
      <div class="ad">ad</div>
      <aside class="newsletter">news</aside>
    </div>
    <button data-testid="share" data-x='a&amp;b' class="md:flex">Share</button>
  </article>
</main>
<footer><ul> <li>a</li> <!-- c --> <li>b</li><li>c</li>text<li>d</li><li>e</li><li>f</li> </ul>
<my-Widget data-n="1">w</my-Widget><span id="123">digits</span></footer>
</body></html>"#;

    /// An element for assertions: its name, `#id`, and its text when it has no
    /// element children.
    fn label(dom: &Dom, id: NodeId) -> String {
        let mut out = dom.name(id).into_owned();
        if let Some(v) = dom.attr(id, "id") {
            out.push('#');
            out.push_str(&v);
        }
        if !dom.children(id).any(|c| dom.is_element(c)) {
            out.push_str(&format!("({})", dom.text_content(id).trim()));
        }
        out
    }

    fn page() -> Dom {
        crate::parse::parse(PAGE.to_owned())
    }

    /// What `selector` selects on the page, as labels.
    fn pick(selector: &str) -> Vec<String> {
        let dom = page();
        let list = parse(selector).unwrap_or_else(|e| panic!("{selector:?}: {e}"));
        let found = list.select(&dom, ROOT);
        // `matches` (sibling walks) agrees with `select` (sibling index).
        let mut walked = Vec::new();
        let mut below = dom.descendants(ROOT);
        while let Some(id) = below.next() {
            if list.matches(&dom, id) {
                walked.push(id);
                below.skip_subtree(id);
            }
        }
        assert_eq!(found, walked, "{selector:?}");
        found.iter().map(|id| label(&dom, *id)).collect()
    }

    fn err(selector: &str) -> SelectorError {
        match parse(selector) {
            Ok(list) => panic!("{selector:?} parsed: {list:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn type_selectors_and_universal() {
        assert_eq!(pick("h1"), ["h1(Hello)"]);
        assert_eq!(pick("H1"), ["h1(Hello)"]);
        assert_eq!(pick("ARTICLE h1"), ["h1(Hello)"]);
        assert_eq!(pick("my-widget"), ["my-widget(w)"]);
        assert_eq!(pick("MY-WIDGET"), ["my-widget(w)"]);
        assert_eq!(pick("nav > *"), ["a(Home)", "a(About)"]);
        assert_eq!(pick("*"), ["html"], "outermost only");
        assert!(pick("blink").is_empty());
        assert!(pick("my").is_empty());
    }

    #[test]
    fn ids_and_classes_are_case_sensitive() {
        assert_eq!(pick("#main"), ["main#main"]);
        assert!(pick("#MAIN").is_empty());
        assert_eq!(pick("#Post h1"), ["h1(Hello)"]);
        assert!(pick("#post").is_empty());
        assert_eq!(pick(".lead"), ["p(one)"]);
        assert_eq!(pick(".Title"), ["h1(Hello)"]);
        assert!(pick(".title").is_empty());
        assert_eq!(pick(".post.featured > h1"), ["h1(Hello)"]);
        assert!(pick(".post.missing").is_empty());
        assert_eq!(pick("article.featured.post#Post h1.Title"), ["h1(Hello)"]);
        assert!(pick("div#main").is_empty());
        // Escapes, and the lenient leading digit.
        assert_eq!(pick(r".md\:flex"), ["button(Share)"]);
        assert_eq!(pick(r"#\31 23"), ["span#123(digits)"]);
        assert_eq!(pick("#123"), ["span#123(digits)"]);
    }

    #[test]
    fn attribute_selectors() {
        assert_eq!(pick("[data-testid]"), ["button(Share)"]);
        assert_eq!(pick("[DATA-TESTID]"), ["button(Share)"], "names in any case");
        assert_eq!(pick("[data-testid=share]"), ["button(Share)"]);
        assert_eq!(pick("[ data-testid = \"share\" ]"), ["button(Share)"]);
        assert_eq!(pick("[data-testid='share']"), ["button(Share)"]);
        assert!(pick("[data-testid=Share]").is_empty(), "values are case-sensitive");
        assert_eq!(pick("[data-testid=Share i]"), ["button(Share)"]);
        assert_eq!(pick("[data-testid=\"SHARE\"i]"), ["button(Share)"]);
        assert!(pick("[data-testid=Share s]").is_empty());
        assert_eq!(pick("[data-x=\"a&b\"]"), ["button(Share)"], "compared decoded");
        assert_eq!(pick(r#"[data-x="a\26 b"]"#), ["button(Share)"], "escapes in strings");
        assert_eq!(pick("[data-kind~=story]"), ["article#Post"]);
        assert_eq!(pick("[data-kind~=news]"), ["article#Post"]);
        assert!(pick("[data-kind~=sto]").is_empty());
        assert!(pick("[data-kind~=\"news story\"]").is_empty());
        assert_eq!(pick("[lang^=en]"), ["article#Post"]);
        assert!(pick("[lang^=EN]").is_empty());
        assert_eq!(pick("[lang^=EN i]"), ["article#Post"]);
        assert_eq!(pick("[lang$=US]"), ["article#Post"]);
        assert_eq!(pick("[lang$=us i]"), ["article#Post"]);
        assert!(pick("[lang$=us]").is_empty());
        assert_eq!(pick("[href*=bou]"), ["a(About)"]);
        assert_eq!(pick("[href*=BOU i]"), ["a(About)"]);
        assert!(pick("[href*=BOU]").is_empty());
        assert_eq!(pick("[lang|=en]"), ["article#Post"]);
        assert_eq!(pick("[lang|=en-US]"), ["article#Post"]);
        assert_eq!(pick("[lang|=EN i]"), ["article#Post"]);
        assert!(pick("[lang|=e]").is_empty());
        assert_eq!(pick("[data-n=1]"), ["my-widget(w)"], "an unquoted number");
        for empty in ["[lang^='']", "[lang$='']", "[lang*='']", "[lang~='']"] {
            assert!(pick(empty).is_empty(), "{empty}");
        }
        assert_eq!(pick("[href='/']"), ["a(Home)"]);
        assert!(pick("[href='']").is_empty());
    }

    #[test]
    fn combinators_across_nesting() {
        assert_eq!(pick("article p"), ["p(one)", "p(two)", "p(three)", "p(four)", "p(five)"]);
        assert!(pick("article > p").is_empty());
        assert_eq!(pick(".content > p").len(), 5);
        assert_eq!(pick("body > main article .content p.lead"), ["p(one)"]);
        assert_eq!(pick("html body main > article > div > .ad"), ["div(ad)"]);
        assert_eq!(pick("h1 + div > p + p"), ["p(two)", "p(three)", "p(four)", "p(five)"]);
        assert_eq!(pick("h1 ~ button"), ["button(Share)"]);
        assert!(pick("h1 + button").is_empty());
        assert_eq!(pick(".lead ~ p"), ["p(two)", "p(three)", "p(four)", "p(five)"]);
        assert_eq!(pick(".lead + p"), ["p(two)"]);
        assert_eq!(pick("p + .ad + aside"), ["aside(news)"]);
        assert_eq!(pick("p ~ aside"), ["aside(news)"]);
        assert_eq!(pick("header a"), ["a(Home)", "a(About)"]);
        assert_eq!(pick("header > a").len(), 0);
        assert_eq!(pick("a+a"), ["a(About)"], "text between elements does not count");
        assert_eq!(pick("li + li").len(), 5, "nor do comments");
        // Backtracking: the nearest `div` ancestor fails `.x > div`, a farther one passes.
        let dom = crate::parse::parse("<div class=x><div><div><p>t</p></div></div></div>".to_owned());
        let list = parse(".x > div p").unwrap();
        assert_eq!(list.select(&dom, ROOT).len(), 1);
        let list = parse(".x > div > p").unwrap();
        assert!(list.select(&dom, ROOT).is_empty());
        let dom = crate::parse::parse("<i class=a></i><b></b><i></i><b></b><u></u>".to_owned());
        assert_eq!(parse(".a + b ~ u").unwrap().select(&dom, ROOT).len(), 1);
        assert_eq!(parse(".a ~ b + u").unwrap().select(&dom, ROOT).len(), 1);
        assert!(parse(".a + i ~ u").unwrap().select(&dom, ROOT).is_empty());
    }

    #[test]
    fn selector_lists_select_in_document_order() {
        assert_eq!(pick(".ad, .newsletter, [data-testid=share]"), ["div(ad)", "aside(news)", "button(Share)"]);
        assert_eq!(pick("[data-testid=share], .newsletter, .ad"), ["div(ad)", "aside(news)", "button(Share)"]);
        assert_eq!(pick("p, .lead"), ["p(one)", "p(two)", "p(three)", "p(four)", "p(five)"]);
        assert_eq!(pick("article .content, #main"), ["main#main"], "outermost matches only");
        assert_eq!(pick("div"), ["div"], "the .ad div is inside .content");
        assert_eq!(pick("p, div"), ["div"]);
        assert_eq!(pick("  h1  ,\n\tbutton  "), ["h1(Hello)", "button(Share)"]);
    }

    #[test]
    fn select_below_a_root() {
        let dom = page();
        let article = parse("article").unwrap().select(&dom, ROOT)[0];
        assert_eq!(parse("article").unwrap().select(&dom, article), [article], "the root itself");
        let content = parse(".content").unwrap().select(&dom, ROOT)[0];
        let found = parse("article p").unwrap().select(&dom, content);
        assert_eq!(found.len(), 5, "ancestors above the root still count");
        assert!(parse("h1").unwrap().select(&dom, content).is_empty());
        assert!(parse("p").unwrap().select(&dom, NodeId::MAX - 1).is_empty());
        // Text and the document never match.
        let list = parse("*, :not(p)").unwrap();
        assert!(!list.matches(&dom, ROOT));
        let text = dom.descendants(ROOT).find(|n| !dom.is_element(*n)).unwrap();
        assert!(!list.matches(&dom, text));
        assert!(!list.matches(&dom, NodeId::MAX - 1));
        assert!(list.matches(&dom, content));
    }

    #[test]
    fn not_is_and_where() {
        assert_eq!(pick(".content > p:not(.lead)"), ["p(two)", "p(three)", "p(four)", "p(five)"]);
        assert_eq!(pick(".content > :not(p)"), ["div(ad)", "aside(news)"]);
        assert_eq!(pick(".content > :not(p, .ad)"), ["aside(news)"]);
        assert_eq!(pick(".content > :not(p):not(.ad)"), ["aside(news)"]);
        assert_eq!(pick("li:not(:first-child):not(:last-child)"), ["li(b)", "li(c)", "li(d)", "li(e)"]);
        assert_eq!(pick("p:not(:not(.lead))"), ["p(one)"]);
        assert_eq!(pick(":not(:not(:not(:not(h1))))"), ["h1(Hello)"]);
        assert_eq!(pick(":is(h1, button)"), ["h1(Hello)", "button(Share)"]);
        assert_eq!(pick("article :where(.lead, .ad)"), ["p(one)", "div(ad)"]);
        assert_eq!(pick(":is(header, footer) :is(a, li):first-child"), ["a(Home)", "li(a)"]);
        assert_eq!(pick("p:IS(.lead)"), ["p(one)"], "pseudo-class names in any case");
        assert_eq!(pick("li:not(*)").len(), 0);
    }

    #[test]
    fn child_position_pseudo_classes() {
        assert_eq!(pick("li:first-child"), ["li(a)"]);
        assert_eq!(pick("li:last-child"), ["li(f)"]);
        assert_eq!(pick(".content > :first-child"), ["p(one)"]);
        assert_eq!(pick(".content > :last-child"), ["aside(news)"]);
        assert!(pick("p:last-child").is_empty());
        assert_eq!(pick("title:first-child:last-child"), ["title(t)"]);
        let nth = |formula: &str| -> Vec<String> {
            pick(&format!("li:nth-child({formula})")).into_iter().map(|l| l[3..4].to_owned()).collect()
        };
        assert_eq!(nth("odd"), ["a", "c", "e"]);
        assert_eq!(nth("ODD"), ["a", "c", "e"]);
        assert_eq!(nth("even"), ["b", "d", "f"]);
        assert_eq!(nth("2n+1"), ["a", "c", "e"]);
        assert_eq!(nth(" 2n + 1 "), ["a", "c", "e"]);
        assert_eq!(nth("2n"), ["b", "d", "f"]);
        assert_eq!(nth("2N-1"), ["a", "c", "e"]);
        assert_eq!(nth("-n+3"), ["a", "b", "c"]);
        assert_eq!(nth("-2n+5"), ["a", "c", "e"]);
        assert_eq!(nth("3"), ["c"]);
        assert_eq!(nth("+3"), ["c"]);
        assert_eq!(nth("n"), ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(nth("+n"), ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(nth("n+4"), ["d", "e", "f"]);
        assert_eq!(nth("3n"), ["c", "f"]);
        assert_eq!(nth("4n - 2"), ["b", "f"]);
        assert_eq!(nth("0n+2"), ["b"]);
        assert!(nth("0").is_empty());
        assert!(nth("-1").is_empty());
        assert!(nth("-n").is_empty());
        assert!(nth("7").is_empty());
        assert!(nth("1000000000n+1000000000").is_empty());
        for (a, b, hits) in [(2, 1, "1 3 5"), (-1, 3, "1 2 3"), (0, 3, "3"), (3, -1, "2 5"), (-2, -1, "")] {
            let got: Vec<String> = (1..=6).filter(|i| super::nth(a, b, *i)).map(|i| i.to_string()).collect();
            assert_eq!(got.join(" "), hits, "{a}n+{b}");
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = err(":hover");
        assert_eq!(e.to_string(), "unsupported pseudo-class ':hover' at character 1");
        let e = err("a:HOVER");
        assert_eq!((e.position, e.message.as_str()), (2, "unsupported pseudo-class ':HOVER'"));
        assert_eq!(err("p::before").message, "pseudo-elements such as '::before' are not supported");
        assert_eq!(err("p:before").message, "unsupported pseudo-class ':before'");
        assert_eq!(err("div:has(p)").message, "unsupported pseudo-class ':has()'");
        assert_eq!(err("li:nth-last-child(2)").message, "unsupported pseudo-class ':nth-last-child()'");
        assert_eq!(err(":first-child(1)").message, "unsupported pseudo-class ':first-child()'");
        assert!(err(":not").message.contains("needs an argument"));
        assert!(err(":nth-child").message.contains("needs an argument"));
        assert!(err("a:").message.contains("expected a pseudo-class name"));
        assert_eq!(err("").message, "empty selector");
        assert_eq!(err("  \n ").message, "empty selector");
        assert_eq!(err("a,").message, "empty selector");
        assert_eq!(err(", a").message, "empty selector before ','");
        assert_eq!(err("a,,b").position, 3);
        assert_eq!(err("a >").message, "expected a selector after the combinator '>'");
        assert_eq!(err("a ~ ,b").message, "expected a selector after the combinator '~'");
        assert_eq!(err("a +").position, 4);
        assert_eq!(err("> a").message, "a selector cannot start with the combinator '>'");
        assert_eq!(err("a > > b").message, "unexpected '>' after the combinator '>'");
        assert_eq!(err("a > > b").position, 5);
        assert_eq!(err("[a").message, "'[' is never closed (expected ']')");
        assert_eq!(err("p[a=b").position, 2);
        assert!(err("[a=\"b]").message.contains("string is never closed"));
        assert!(err("[a='b\nc']").message.contains("line break"));
        assert_eq!(err("a]").message, "unexpected ']'");
        assert_eq!(err("a)").message, "unexpected ')'");
        assert_eq!(err("a (").message, "unexpected '('");
        assert_eq!(err(":not(a").message, "':not(' is never closed (expected ')')");
        assert_eq!(err("p:is(a, b").position, 2);
        assert_eq!(err(":not()").message, "empty selector before ')'");
        assert_eq!(err(":is(a,)").message, "empty selector before ')'");
        assert!(err(":not(a b)").message.starts_with("combinators are not supported inside :not()"));
        assert!(err(":is(a>b)").message.starts_with("combinators are not supported"));
        assert!(err(":nth-child(2n+)").message.contains("expected An+B"));
        assert!(err(":nth-child(of p)").message.contains("expected An+B"));
        assert!(err(":nth-child(2n of p)").message.contains("expected An+B"));
        assert!(err(":nth-child(- n)").message.contains("expected An+B"));
        assert!(err(":nth-child(2 n)").message.contains("expected An+B"));
        assert!(err(":nth-child()").message.contains("expected An+B"));
        assert!(err(":nth-child(oddly)").message.contains("expected An+B"));
        assert_eq!(err(":nth-child(2n+1").message, "':nth-child(' is never closed (expected ')')");
        assert_eq!(err(":nth-child(99999999999)").message, "number too large in :nth-child()");
        assert!(err("#").message.contains("after '#'"));
        assert!(err(".").message.contains("after '.'"));
        assert!(err("a.").message.contains("after '.'"));
        assert!(err("a|b").message.contains("namespaces"));
        assert!(err("*|a").message.contains("namespaces"));
        assert!(err("|a").message.contains("namespaces"));
        assert!(err("[ns|a]").message.contains("namespaces"));
        assert!(err("[|a]").message.contains("namespaces"));
        assert!(err("[a=b x]").message.contains("unknown attribute selector flag 'x'"));
        assert!(err("[a=]").message.contains("expected a value"));
        assert!(err("[a==b]").message.contains("expected a value"));
        assert!(err("[a!=b]").message.contains("expected ']' or an operator"));
        assert!(err("[1a]").message.contains("expected an attribute name"));
        assert!(err("[a=b c]").message.contains("unknown attribute selector flag"));
        assert!(err("[a='b' c d]").message.contains("unknown attribute selector flag"));
        assert_eq!(err("a\\").message, "unexpected '\\\\'");
        assert_eq!(err("a{color:red}").message, "unexpected '{'");
        assert_eq!(err("@media").message, "unexpected '@'");
        assert_eq!(err("1a").message, "unexpected '1'");
        assert_eq!(err("a*").message, "unexpected '*'");
        assert_eq!(err("é ~ :où").position, 5, "positions count characters, not bytes");
        // Long names are cut short in messages.
        let e = err(&format!(":{}", "x".repeat(200)));
        assert!(e.message.len() < 100 && e.message.contains('…'), "{}", e.message);
    }

    #[test]
    fn limits() {
        let long = format!("p{}", " ".repeat(MAX_INPUT - 1));
        assert!(parse(&long).is_ok());
        let e = err(&format!("p{}", " ".repeat(MAX_INPUT)));
        assert_eq!(e.position, MAX_INPUT + 1);
        assert!(e.message.contains("over the limit of 4096"));
        assert!(parse(&vec!["p"; MAX_SELECTORS].join(",")).is_ok());
        assert!(err(&vec!["p"; MAX_SELECTORS + 1].join(",")).message.contains("more than 64 selectors"));
        assert!(parse(&format!(":is({})", vec!["p"; MAX_SELECTORS].join(","))).is_ok());
        assert!(err(&format!(":is({})", vec!["p"; MAX_SELECTORS + 1].join(","))).message.contains("more than 64"));
        assert!(parse(&vec!["p"; MAX_COMPOUNDS].join(" > ")).is_ok());
        let e = err(&vec!["p"; MAX_COMPOUNDS + 1].join(" "));
        assert!(e.message.contains("more than 32 compound selectors"));
        assert_eq!(e.position, 2 * MAX_COMPOUNDS + 1);
        assert!(parse(":not(:is(:where(:not(p))))").is_ok());
        let e = err(":not(:is(:where(:not(:is(p)))))");
        assert!(e.message.contains("nest more than 4 deep"), "{}", e.message);
        assert_eq!(e.position, 22);
        // Deep nesting within the length limit is refused, not a stack overflow.
        assert!(parse(&":not(".repeat(800)).is_err());
        assert!(parse(&"[".repeat(4000)).is_err());
        assert!(parse(&"(".repeat(4000)).is_err());
    }

    /// A reference matcher: plain backtracking over every way to choose the
    /// elements, exponential but obviously right.
    fn naive(nav: &Nav<'_>, sel: &Complex, i: usize, id: NodeId) -> bool {
        if !nav.compound(&sel.compounds[i], id) {
            return false;
        }
        let Some(combinator) = sel.combinators.get(i) else { return true };
        match combinator {
            Combinator::Child => nav.parent(id).is_some_and(|p| naive(nav, sel, i + 1, p)),
            Combinator::Descendant => {
                let mut at = id;
                while let Some(p) = nav.parent(at) {
                    if naive(nav, sel, i + 1, p) {
                        return true;
                    }
                    at = p;
                }
                false
            }
            Combinator::Next => nav.prev(id).is_some_and(|p| naive(nav, sel, i + 1, p)),
            Combinator::Later => nav.earlier(id).any(|p| naive(nav, sel, i + 1, p)),
        }
    }

    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as usize % n
        }
    }

    fn random_page(rng: &mut Lcg) -> String {
        let mut html = String::new();
        let mut open = Vec::new();
        for _ in 0..60 {
            match rng.next(5) {
                0 | 1 if open.len() < 7 => {
                    let tag = ["div", "span", "em", "section"][rng.next(4)];
                    let class = ["", " class=a", " class=b", " class='a b'"][rng.next(4)];
                    html.push_str(&format!("<{tag}{class}>"));
                    open.push(tag);
                }
                2 => html.push_str(["t", "<b></b>", "<!--c-->", "<i class=a></i>"][rng.next(4)]),
                _ => {
                    if let Some(tag) = open.pop() {
                        html.push_str(&format!("</{tag}>"));
                    }
                }
            }
        }
        html
    }

    fn random_selector(rng: &mut Lcg) -> String {
        const COMPOUNDS: &[&str] = &[
            "div",
            "span",
            "em",
            "b",
            "i",
            "section",
            "*",
            ".a",
            ".b",
            ".a.b",
            ":first-child",
            ":last-child",
            ":nth-child(2n+1)",
            ":nth-child(-n+2)",
            "div.a",
            ":not(.a)",
            ":is(em, b)",
            "span:not(:first-child)",
        ];
        const COMBINATORS: &[&str] = &[" ", " > ", " + ", " ~ "];
        let mut s = COMPOUNDS[rng.next(COMPOUNDS.len())].to_owned();
        for _ in 0..rng.next(5) {
            s.push_str(COMBINATORS[rng.next(COMBINATORS.len())]);
            s.push_str(COMPOUNDS[rng.next(COMPOUNDS.len())]);
        }
        s
    }

    #[test]
    fn bounded_backtracking_agrees_with_plain_backtracking() {
        let mut rng = Lcg(42);
        let mut matched = 0;
        for _ in 0..150 {
            let dom = crate::parse::parse(random_page(&mut rng));
            let walking = Nav::walking(&dom);
            let indexed = Nav::indexed(&dom);
            for _ in 0..20 {
                let text = random_selector(&mut rng);
                let list = parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
                let sel = &list.selectors[0];
                let mut expected = Vec::new();
                let mut below = dom.descendants(ROOT);
                while let Some(id) = below.next() {
                    if !dom.is_element(id) {
                        continue;
                    }
                    let want = naive(&walking, sel, 0, id);
                    assert_eq!(walking.complex(sel, 0, id) == Outcome::Matched, want, "{text:?} at {id}");
                    assert_eq!(indexed.complex(sel, 0, id) == Outcome::Matched, want, "{text:?} at {id}");
                    if want {
                        matched += 1;
                        expected.push(id);
                        below.skip_subtree(id);
                    }
                }
                assert_eq!(list.select(&dom, ROOT), expected, "{text:?}");
            }
        }
        assert!(matched > 1000, "the random cases match something: {matched}");
    }

    #[test]
    fn deep_pages_do_not_make_matching_exponential() {
        // 600 nested divs (the parser keeps 512), then a span.
        let html = "<div>".repeat(600) + "<span>x</span>";
        let dom = crate::parse::parse(html);
        // Plain backtracking would try every way of choosing 31 of 512 ancestors.
        let never = format!("p {}", vec!["div"; MAX_COMPOUNDS - 1].join(" "));
        assert!(parse(&never).unwrap().select(&dom, ROOT).is_empty());
        let child_never = format!("p > {}", vec!["div"; MAX_COMPOUNDS - 1].join(" "));
        assert!(parse(&child_never).unwrap().select(&dom, ROOT).is_empty());
        let mixed = format!("p ~ div {}", vec!["div"; MAX_COMPOUNDS - 2].join(" > "));
        assert!(parse(&mixed).unwrap().select(&dom, ROOT).is_empty());
        let deep = vec!["div"; MAX_COMPOUNDS].join(" ");
        let found = parse(&deep).unwrap().select(&dom, ROOT);
        assert_eq!(found.len(), 1, "the 32nd div, outermost");
        let to_span = format!("{} > span", vec!["div"; MAX_COMPOUNDS - 1].join(" "));
        let found = parse(&to_span).unwrap().select(&dom, ROOT);
        // Past the parser's depth cap the span is a leaf and "x" its sibling.
        assert_eq!(found.iter().map(|id| dom.name(*id)).collect::<Vec<_>>(), ["span"]);
        // Wide pages: siblings are indexed once, not walked per step.
        let html = "<p>x</p>".repeat(3000) + "<b>y</b>";
        let dom = crate::parse::parse(html);
        assert_eq!(parse("p:nth-child(odd)").unwrap().select(&dom, ROOT).len(), 1500);
        assert_eq!(parse("p:last-child, b:last-child").unwrap().select(&dom, ROOT).len(), 1);
        assert_eq!(parse("p + p + p").unwrap().select(&dom, ROOT).len(), 2998);
        assert_eq!(parse("p ~ b").unwrap().select(&dom, ROOT).len(), 1);
    }

    #[test]
    fn random_input_never_panics() {
        const SOUP: &[&str] = &[
            "a",
            "div",
            "p",
            "*",
            "#",
            ".",
            "x",
            "-",
            "_",
            "1",
            "[",
            "]",
            "(",
            ")",
            "=",
            "~=",
            "^=",
            "$=",
            "*=",
            "|=",
            "|",
            "\"",
            "'",
            "\\",
            "\\31 ",
            " ",
            "  ",
            "\n",
            ",",
            ">",
            "+",
            "~",
            ":",
            "::",
            ":not(",
            ":is(",
            ":where(",
            ":nth-child(",
            "odd",
            "even",
            "2n+1",
            "-n",
            "n",
            "3",
            " i",
            ":first-child",
            ":last-child",
            ":hover",
            ":has(",
            "é",
            "\u{0}",
            "\u{10FFFF}",
            "\r\n",
            "@",
            "{",
            "}",
            ";",
            "!",
            "/*",
            "*/",
            "\\\n",
            "\\0",
            "99999",
            "[data-testid=share]",
            ".lead",
            "article",
            "li",
            "h1",
            " > ",
            " + ",
            " ~ ",
        ];
        let dom = page();
        let mut rng = Lcg(2024);
        let mut parsed = 0;
        for round in 0..4000 {
            let len = 1 + rng.next(if round % 10 == 0 { 60 } else { 12 });
            let s: String = (0..len).map(|_| SOUP[rng.next(SOUP.len())]).collect();
            match parse(&s) {
                Ok(list) => {
                    parsed += 1;
                    let found = list.select(&dom, ROOT);
                    for id in found {
                        assert!(list.matches(&dom, id), "{s:?}");
                    }
                }
                Err(e) => {
                    assert!(e.position >= 1 && e.position <= s.chars().count() + 1, "{s:?}: {e}");
                    assert!(!e.message.is_empty());
                }
            }
        }
        assert!(parsed > 100, "some random strings are selectors: {parsed}");
    }
}
