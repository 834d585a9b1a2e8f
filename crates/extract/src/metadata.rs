//! What a page says about itself: `<title>`, `<meta>`, OpenGraph, Twitter cards,
//! JSON-LD (arrays and `@graph` flattened) and the document itself.

use crate::dom::{Dom, NodeData, ROOT, Tag};
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub title: Option<String>,
    pub authors: Vec<String>,
    pub published: Option<String>,
    pub modified: Option<String>,
    pub lang: Option<String>,
    pub site_name: Option<String>,
    pub description: Option<String>,
    pub canonical: Option<String>,
    pub image: Option<String>,
    /// The raw structured data the above was read from.
    pub json_ld: Vec<Value>,
    pub open_graph: serde_json::Map<String, Value>,
    pub twitter_card: serde_json::Map<String, Value>,
}

fn clean(s: &str) -> Option<String> {
    let s = crate::blocks::collapse(s);
    (!s.is_empty()).then_some(s)
}

/// Every JSON-LD object, with arrays and `@graph` flattened.
fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.into_iter().for_each(|v| flatten(v, out)),
        Value::Object(mut map) => {
            if let Some(graph) = map.remove("@graph") {
                flatten(graph, out);
            }
            if !map.is_empty() {
                out.push(Value::Object(map));
            }
        }
        _ => {}
    }
}

fn names_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => clean(s).into_iter().collect(),
        Value::Array(items) => items.iter().flat_map(names_of).collect(),
        Value::Object(map) => map.get("name").map(names_of).unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn is_article(v: &Value) -> bool {
    let types = match v.get("@type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    types.iter().any(|t| {
        t.ends_with("Article") || matches!(*t, "BlogPosting" | "Report" | "WebPage" | "TechArticle" | "LiveBlogPosting")
    })
}

pub fn read(dom: &Dom, base: Option<&url::Url>) -> Metadata {
    let mut m = Metadata::default();
    let mut meta: Vec<(String, String)> = Vec::new();
    let mut title_tag = None;
    let mut first_h1 = None;
    for id in dom.descendants(ROOT) {
        let Some(tag) = dom.tag(id) else { continue };
        match tag {
            Tag::Html => m.lang = dom.attr(id, "lang").and_then(|l| clean(&l)),
            Tag::Title if title_tag.is_none() => title_tag = clean(&dom.text_content(id)),
            Tag::H1 if first_h1.is_none() => first_h1 = clean(&dom.text_content(id)),
            Tag::Meta => {
                let key =
                    dom.attr(id, "property").or_else(|| dom.attr(id, "name")).or_else(|| dom.attr(id, "itemprop"));
                if let (Some(key), Some(content)) = (key, dom.attr(id, "content")) {
                    meta.push((key.trim().to_ascii_lowercase(), content.into_owned()));
                }
            }
            Tag::Link => {
                let rel = dom.attr(id, "rel").unwrap_or_default().to_ascii_lowercase();
                if rel.split_whitespace().any(|r| r == "canonical") && m.canonical.is_none() {
                    m.canonical = dom.attr(id, "href").and_then(|h| absolute(base, &h));
                }
            }
            Tag::Script => {
                let ld = dom.attr(id, "type").is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ld+json"));
                if ld {
                    let raw: String = dom
                        .children(id)
                        .filter(|c| matches!(dom.node(*c).data, NodeData::Text(_)))
                        .map(|c| dom.raw_text(c))
                        .collect();
                    if let Ok(value) = serde_json::from_str::<Value>(raw.trim()) {
                        flatten(value, &mut m.json_ld);
                    }
                }
            }
            _ => {}
        }
    }
    let get = |keys: &[&str]| keys.iter().find_map(|k| meta.iter().find(|(n, _)| n == k).and_then(|(_, v)| clean(v)));
    for (k, v) in &meta {
        if let Some(rest) = k.strip_prefix("og:") {
            m.open_graph.entry(rest.to_owned()).or_insert_with(|| Value::String(v.clone()));
        } else if let Some(rest) = k.strip_prefix("twitter:") {
            m.twitter_card.entry(rest.to_owned()).or_insert_with(|| Value::String(v.clone()));
        }
    }
    let article = m.json_ld.iter().find(|v| is_article(v)).cloned();
    let ld = |key: &str| article.as_ref().and_then(|a| a.get(key)).and_then(Value::as_str).and_then(clean);
    m.title = ld("headline").or_else(|| get(&["og:title", "twitter:title"])).or(title_tag.clone()).or(first_h1);
    m.authors = article.as_ref().and_then(|a| a.get("author")).map(names_of).unwrap_or_default();
    if m.authors.is_empty() {
        m.authors = get(&["author", "article:author", "byl", "dc.creator", "parsely-author"]).into_iter().collect();
    }
    m.published = ld("datePublished")
        .or_else(|| get(&["article:published_time", "datepublished", "pubdate", "publishdate", "dc.date", "date"]));
    m.modified = ld("dateModified").or_else(|| get(&["article:modified_time", "datemodified", "og:updated_time"]));
    m.site_name = get(&["og:site_name", "application-name"])
        .or_else(|| m.json_ld.iter().find_map(|v| v.get("publisher").map(names_of)).and_then(|n| n.into_iter().next()));
    m.description = get(&["description", "og:description", "twitter:description"]).or_else(|| ld("description"));
    m.image = get(&["og:image", "twitter:image", "twitter:image:src"]).and_then(|i| absolute(base, &i));
    if m.canonical.is_none() {
        m.canonical = get(&["og:url"]).and_then(|u| absolute(base, &u));
    }
    if m.lang.is_none() {
        m.lang = get(&["og:locale", "language", "content-language"]);
    }
    m
}

fn absolute(base: Option<&url::Url>, href: &str) -> Option<String> {
    match base {
        Some(base) => base.join(href.trim()).ok().map(String::from),
        None => url::Url::parse(href.trim()).ok().map(String::from),
    }
}
