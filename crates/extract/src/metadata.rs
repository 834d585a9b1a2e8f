//! What a page says about itself: `<title>`, `<meta>`, OpenGraph, Twitter cards,
//! JSON-LD (arrays and `@graph` flattened) and the document itself.

use crate::dom::{Dom, NodeData, NodeId, ROOT, Tag};
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
    /// Top-level microdata items: `{"type": [...], "properties": {name: [values]}}`,
    /// nested items as values.
    pub microdata: Vec<Value>,
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
    m.microdata = microdata(dom, base);
    if m.authors.is_empty() {
        m.authors = microdata_values(&m.microdata, "author");
    }
    if m.published.is_none() {
        m.published = microdata_values(&m.microdata, "datePublished").into_iter().next();
    }
    m
}

/// Microdata (`itemscope`, `itemtype`, `itemprop`) as JSON, in one pass in
/// document order and one in reverse: every element's owning item is its nearest
/// `itemscope` ancestor; nested items become values of their owner's property.
fn microdata(dom: &Dom, base: Option<&url::Url>) -> Vec<Value> {
    let n = dom.len();
    // The item each node's properties belong to (index into `items`).
    let mut owner: Vec<Option<usize>> = vec![None; n];
    // Per item: the item it is a property of, its types, its properties.
    type Item = (Option<usize>, Vec<String>, serde_json::Map<String, Value>);
    let mut items: Vec<Item> = Vec::new();
    let mut item_of: Vec<Option<usize>> = vec![None; n];
    let mut props: Vec<(usize, NodeId, Vec<String>)> = Vec::new();
    for id in 1..n as NodeId {
        let parent = dom.node(id).parent as usize;
        let inherited = owner[parent];
        owner[id as usize] = inherited;
        if !dom.is_element(id) {
            continue;
        }
        if let Some(names) = dom.attr(id, "itemprop") {
            if let Some(item) = inherited {
                props.push((item, id, names.split_whitespace().map(str::to_owned).collect()));
            }
        }
        if dom.attr_raw(id, "itemscope").is_some() && items.len() < 1000 {
            let types =
                dom.attr(id, "itemtype").map(|t| t.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
            let index = items.len();
            let nested_in = if dom.attr_raw(id, "itemprop").is_some() { inherited } else { None };
            items.push((nested_in, types, serde_json::Map::new()));
            item_of[id as usize] = Some(index);
            owner[id as usize] = Some(index);
        }
    }
    for (item, id, names) in &props {
        if item_of[*id as usize].is_some() {
            continue; // a nested item: attached below
        }
        let value = match dom.tag(*id) {
            Some(Tag::Meta) => dom.attr(*id, "content").map(|c| c.into_owned()),
            Some(Tag::A | Tag::Link | Tag::Area) => dom.attr(*id, "href").and_then(|h| absolute(base, &h)),
            Some(Tag::Img | Tag::Audio | Tag::Video | Tag::Source | Tag::Iframe | Tag::Embed) => {
                dom.attr(*id, "src").and_then(|h| absolute(base, &h))
            }
            Some(Tag::Time) => {
                dom.attr(*id, "datetime").map(|d| d.into_owned()).or_else(|| clean(&dom.text_content(*id)))
            }
            _ => dom.attr(*id, "content").map(|c| c.into_owned()).or_else(|| clean(&dom.text_content(*id))),
        };
        if let Some(value) = value {
            for name in names {
                push_property(&mut items[*item].2, name, Value::String(value.clone()));
            }
        }
    }
    // Children come after their owners: attach from the last item backwards.
    let mut top = Vec::new();
    for index in (0..items.len()).rev() {
        let (nested_in, types, properties) = std::mem::take(&mut items[index]);
        let value = serde_json::json!({ "type": types, "properties": properties });
        match nested_in {
            Some(parent) => {
                let name = props
                    .iter()
                    .find(|(_, id, _)| item_of[*id as usize] == Some(index))
                    .and_then(|(_, _, n)| n.first().cloned());
                push_property(&mut items[parent].2, &name.unwrap_or_default(), value);
            }
            None => top.push(value),
        }
    }
    top.reverse();
    top
}

/// String values of a property anywhere in the items (an author's `name` when
/// the value is an item).
fn microdata_values(items: &[Value], property: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = items.iter().collect();
    while let Some(item) = stack.pop() {
        let Some(props) = item.get("properties").and_then(Value::as_object) else { continue };
        for (name, values) in props {
            for value in values.as_array().into_iter().flatten() {
                if name == property {
                    match value {
                        Value::String(s) => out.extend(clean(s)),
                        nested => {
                            out.extend(nested.pointer("/properties/name/0").and_then(Value::as_str).and_then(clean))
                        }
                    }
                }
                if value.is_object() {
                    stack.push(value);
                }
            }
        }
    }
    out
}

fn push_property(properties: &mut serde_json::Map<String, Value>, name: &str, value: Value) {
    match properties.get_mut(name) {
        Some(Value::Array(values)) => values.push(value),
        _ => {
            properties.insert(name.to_owned(), Value::Array(vec![value]));
        }
    }
}

fn absolute(base: Option<&url::Url>, href: &str) -> Option<String> {
    match base {
        Some(base) => base.join(href.trim()).ok().map(String::from),
        None => url::Url::parse(href.trim()).ok().map(String::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(html: &str) -> Metadata {
        let dom = crate::parse::parse(html.to_owned());
        read(&dom, url::Url::parse("https://news.example/a/b").ok().as_ref())
    }

    #[test]
    fn json_ld_graphs_and_arrays_are_flattened_and_read() {
        let m = meta(
            r#"<html lang="en"><head><title>T | Site</title>
            <script type="application/ld+json">{"@graph": [{"@type": "WebSite", "name": "Site"},
              {"@type": "NewsArticle", "headline": "Headline", "datePublished": "2019-11-20T05:47:00Z",
               "author": [{"@type": "Person", "name": "Ann Writer"}, {"name": "Bo Second"}]}]}</script>
            <link rel="canonical" href="/a/b?x=1"><meta property="og:site_name" content="The Site">
            <meta name="twitter:card" content="summary"></head><body></body></html>"#,
        );
        assert_eq!(m.title.as_deref(), Some("Headline"));
        assert_eq!(m.authors, ["Ann Writer", "Bo Second"]);
        assert_eq!(m.published.as_deref(), Some("2019-11-20T05:47:00Z"));
        assert_eq!(m.canonical.as_deref(), Some("https://news.example/a/b?x=1"));
        assert_eq!(m.site_name.as_deref(), Some("The Site"));
        assert_eq!(m.lang.as_deref(), Some("en"));
        assert_eq!(m.json_ld.len(), 2);
        assert_eq!(m.twitter_card.get("card"), Some(&Value::String("summary".into())));
    }

    #[test]
    fn microdata_items_nest_and_fill_gaps() {
        let m = meta(
            r#"<div itemscope itemtype="https://schema.org/Article">
            <h1 itemprop="headline">Microdata headline</h1>
            <span itemprop="author" itemscope itemtype="https://schema.org/Person"><span itemprop="name">Cy Author</span></span>
            <time itemprop="datePublished" datetime="2020-01-02">Jan 2</time>
            <a itemprop="url" href="/a/b">link</a></div>"#,
        );
        assert_eq!(m.microdata.len(), 1);
        let item = &m.microdata[0];
        assert_eq!(item["type"][0], "https://schema.org/Article");
        assert_eq!(item["properties"]["headline"][0], "Microdata headline");
        assert_eq!(item["properties"]["author"][0]["properties"]["name"][0], "Cy Author");
        assert_eq!(item["properties"]["url"][0], "https://news.example/a/b");
        assert_eq!(m.authors, ["Cy Author"]);
        assert_eq!(m.published.as_deref(), Some("2020-01-02"));
    }
}
