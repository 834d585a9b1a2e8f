//! URLs as the crawler keeps them, and the links a page holds.

use anno_extract::dom::{self, Tag};
use url::Url;

/// Links read from one page, at most; a page with more is a link farm.
pub const MAX_LINKS_PER_PAGE: usize = 2_000;
const MAX_HREF_CHARS: usize = 4_096;

/// The form URLs are compared and stored in: parsed (which lower-cases the host,
/// drops a default port and resolves dot segments) and without its fragment.
/// Nothing else changes: query parameters keep their order.
pub fn normalise(mut url: Url) -> Url {
    url.set_fragment(None);
    url
}

/// The path and query of a URL, as robots.txt rules match them.
pub fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// An `href` resolved against `base`: http(s) only, normalised.
pub fn resolve(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() || href.len() > MAX_HREF_CHARS {
        return None;
    }
    let url = base.join(href).ok()?;
    let crawlable = matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty());
    crawlable.then(|| normalise(url))
}

/// Every link of a page (`<a href>` and `<area href>`, wherever they are, not
/// only in the main content), resolved against `<base href>` or the page's URL,
/// in document order without repeats.
pub fn page_links(body: &[u8], content_type: Option<&str>, page_url: &Url) -> Vec<Url> {
    let decoded = anno_extract::decode::decode(body, content_type);
    let dom = anno_extract::parse::parse(decoded.text);
    let base = dom
        .descendants(dom::ROOT)
        .find(|n| dom.tag(*n) == Some(Tag::Base) && dom.attr_raw(*n, "href").is_some())
        .and_then(|n| dom.attr(n, "href").and_then(|href| resolve(page_url, &href)))
        .unwrap_or_else(|| page_url.clone());
    let mut seen = std::collections::HashSet::new();
    let mut links = Vec::new();
    for node in dom.descendants(dom::ROOT) {
        if !matches!(dom.tag(node), Some(Tag::A | Tag::Area)) {
            continue;
        }
        let Some(url) = dom.attr(node, "href").and_then(|href| resolve(&base, &href)) else { continue };
        if seen.insert(url.as_str().to_owned()) {
            links.push(url);
            if links.len() == MAX_LINKS_PER_PAGE {
                break;
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_absolute_deduplicated_and_crawlable() {
        let html = br##"<html><head><title>t</title></head><body>
            <nav><a href="/a">A</a> <a href="b?x=2&amp;y=1#frag">B</a></nav>
            <main><p>Text <a href="/a#again">A again</a> <a href="mailto:x@y.z">mail</a>
            <a href="javascript:void(0)">js</a> <a href="#top">top</a> <a href="https://other.test/c">C</a>
            <a>no href</a></p></main>
            <map><area href="/d" alt="d"></map></body></html>"##;
        let base = Url::parse("https://site.test/dir/page").unwrap();
        let links: Vec<String> = page_links(html, Some("text/html"), &base).into_iter().map(String::from).collect();
        assert_eq!(
            links,
            [
                "https://site.test/a",
                "https://site.test/dir/b?x=2&y=1",
                "https://site.test/dir/page",
                "https://other.test/c",
                "https://site.test/d"
            ]
        );
    }

    #[test]
    fn a_base_element_changes_resolution() {
        let html = br#"<html><head><base href="https://site.test/root/"></head><body><a href="x">x</a></body></html>"#;
        let base = Url::parse("https://site.test/elsewhere/page").unwrap();
        let links = page_links(html, None, &base);
        assert_eq!(links.iter().map(Url::as_str).collect::<Vec<_>>(), ["https://site.test/root/x"]);
    }

    #[test]
    fn normalising_drops_only_the_fragment() {
        let url = Url::parse("HTTP://Site.Test:80/a/../b?z=1&a=2#f").unwrap();
        assert_eq!(normalise(url).as_str(), "http://site.test/b?z=1&a=2");
    }
}
