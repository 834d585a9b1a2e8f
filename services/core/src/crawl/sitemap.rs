//! Sitemaps (sitemaps.org): `<urlset>` lists pages, `<sitemapindex>` lists more
//! sitemaps. Read from what robots.txt names and from `/sitemap.xml`, within
//! bounds on size, count and nesting, since they come from the internet.

use crate::crawl::links;
use anno_fetch::{Accept, FetchRequest, Fetcher};
use std::collections::{HashSet, VecDeque};
use std::io::Read;
use url::Url;

/// Largest sitemap read, after decompression (the protocol's own limit is 50 MB).
pub const MAX_SITEMAP_BYTES: usize = 10 * 1024 * 1024;
/// Page URLs taken from all of one job's sitemaps.
pub const MAX_ENTRIES: usize = 10_000;
/// Sitemap files fetched for one job.
pub const MAX_FILES: usize = 20;
/// A sitemap index may name sitemaps; an index named by an index is not followed.
pub const MAX_NESTING: usize = 2;

#[derive(Debug, PartialEq, Eq)]
pub enum Sitemap {
    /// `<urlset>`: page URLs.
    Pages(Vec<String>),
    /// `<sitemapindex>`: more sitemaps.
    Index(Vec<String>),
    /// Anything else, or nothing readable.
    Other,
}

/// The page URLs of a site's sitemaps: those robots.txt names, and `/sitemap.xml`.
/// A sitemap that cannot be fetched or read is skipped.
pub async fn discover(fetcher: &Fetcher, start: &Url) -> Vec<Url> {
    let robots = fetcher.robots(start).await;
    let mut pending: VecDeque<(Url, usize)> =
        robots.sitemaps().iter().filter_map(|s| links::resolve(start, s)).map(|url| (url, 0)).collect();
    if let Some(default) = links::resolve(start, "/sitemap.xml") {
        pending.push_back((default, 0));
    }
    let mut fetched = HashSet::new();
    let mut pages = Vec::new();
    while let Some((url, level)) = pending.pop_front() {
        if fetched.len() >= MAX_FILES || pages.len() >= MAX_ENTRIES {
            break;
        }
        if !fetched.insert(url.clone()) {
            continue;
        }
        let request = FetchRequest { url: url.into(), accept: Accept::Any, ..FetchRequest::default() };
        let Ok(page) = fetcher.fetch(&request).await else { continue };
        match parse(&page.body, MAX_ENTRIES - pages.len()) {
            Sitemap::Pages(locations) => {
                pages.extend(locations.iter().filter_map(|loc| links::resolve(&page.final_url, loc)));
            }
            Sitemap::Index(locations) if level + 1 < MAX_NESTING => {
                let next = locations.iter().filter_map(|loc| links::resolve(&page.final_url, loc));
                pending.extend(next.map(|url| (url, level + 1)));
            }
            Sitemap::Index(_) | Sitemap::Other => {}
        }
    }
    pages
}

/// Parses a sitemap, gzipped or not, keeping at most `max_entries` locations.
pub fn parse(body: &[u8], max_entries: usize) -> Sitemap {
    let inflated;
    let body = if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let reader = flate2::read::GzDecoder::new(body).take(MAX_SITEMAP_BYTES as u64);
        if std::io::BufReader::new(reader).read_to_end(&mut out).is_err() {
            return Sitemap::Other;
        }
        inflated = out;
        &inflated[..]
    } else {
        &body[..body.len().min(MAX_SITEMAP_BYTES)]
    };
    let text = String::from_utf8_lossy(body);
    let Some(root) = root_element(&text) else { return Sitemap::Other };
    match root {
        "urlset" => Sitemap::Pages(locations(&text, max_entries)),
        "sitemapindex" => Sitemap::Index(locations(&text, max_entries)),
        _ => Sitemap::Other,
    }
}

/// The local name of the first element, past the XML declaration, comments and doctype.
fn root_element(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        let start = rest.find('<')?;
        rest = &rest[start + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = &comment[comment.find("-->")? + 3..];
            continue;
        }
        if rest.starts_with('?') || rest.starts_with('!') {
            continue;
        }
        let end = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
        let name = &rest[..end];
        return Some(name.rsplit(':').next().unwrap_or(name));
    }
}

/// The text of every `<loc>` element (a namespace prefix allowed), in order.
fn locations(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while out.len() < max {
        let Some(open) = find_loc_open(rest) else { break };
        rest = &rest[open..];
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[..gt];
        rest = &rest[gt + 1..];
        if tag.ends_with('/') {
            continue;
        }
        let Some(close) = rest.find("</") else { break };
        let value = decode(rest[..close].trim());
        rest = &rest[close..];
        if !value.is_empty() {
            out.push(value);
        }
    }
    out
}

/// Where the next `<loc>` (or `<prefix:loc>`) tag starts. The image, video,
/// news and xhtml extensions' locations are not pages.
fn find_loc_open(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find('<') {
        let start = from + at;
        let after = &text[start + 1..];
        let name_end = after.find(|c: char| c.is_whitespace() || c == '>' || c == '/').unwrap_or(after.len());
        let name = &after[..name_end];
        let (prefix, local) = name.rsplit_once(':').unwrap_or(("", name));
        if local == "loc" && !matches!(prefix, "image" | "video" | "news" | "xhtml") {
            return Some(start);
        }
        from = start + 1;
    }
    None
}

/// Character data: CDATA sections kept as they are, entities decoded.
fn decode(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix("<![CDATA[").and_then(|r| r.strip_suffix("]]>")) {
        return inner.trim().to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let entity = rest.find(';').filter(|&end| end <= 10).map(|end| (&rest[1..end], end));
        let decoded = entity.and_then(|(name, end)| {
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const URLSET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- generated -->
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://site.test/a?x=1&amp;y=2</loc><lastmod>2024-01-01</lastmod>
    <image:image><image:loc>https://site.test/pic.png</image:loc></image:image></url>
  <url><loc>
     <![CDATA[https://site.test/b]]>
  </loc></url>
  <url><loc></loc></url>
</urlset>"#;

    #[test]
    fn a_urlset_lists_pages() {
        assert_eq!(
            parse(URLSET.as_bytes(), 100),
            Sitemap::Pages(vec!["https://site.test/a?x=1&y=2".into(), "https://site.test/b".into()])
        );
        assert_eq!(parse(URLSET.as_bytes(), 1), Sitemap::Pages(vec!["https://site.test/a?x=1&y=2".into()]));
    }

    #[test]
    fn an_index_lists_sitemaps_and_gzip_is_read() {
        let index = r#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <sitemap><loc>https://site.test/s1.xml</loc></sitemap><sitemap><loc>https://site.test/s2.xml.gz</loc></sitemap>
        </sitemapindex>"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(index.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let expected = Sitemap::Index(vec!["https://site.test/s1.xml".into(), "https://site.test/s2.xml.gz".into()]);
        assert_eq!(parse(index.as_bytes(), 10), expected);
        assert_eq!(parse(&gz, 10), expected);
    }

    #[test]
    fn anything_else_is_no_sitemap() {
        let bodies: [&[u8]; 5] =
            [b"", b"<html><body><loc>x</loc></body></html>", b"not xml at all", b"<urlset", b"\x1f\x8bbroken"];
        for body in bodies {
            let parsed = parse(body, 10);
            assert!(matches!(parsed, Sitemap::Other | Sitemap::Pages(_)), "{body:?}");
            if let Sitemap::Pages(pages) = parsed {
                assert!(pages.is_empty(), "{body:?}");
            }
        }
        assert_eq!(decode("a &bogus; &#x41;&#66; &"), "a &bogus; AB &");
    }
}
