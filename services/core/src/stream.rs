//! Writing an extracted page in the formats clients ask for: Anno's event
//! stream (NDJSON), one JSON document, Markdown or plain text.

use crate::cache::ENGINE_VERSION;
use crate::options::Format;
use anno_extract::{Block, Document, Outcome, Table};
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// What is known about how the page was obtained.
#[derive(Clone, Debug)]
pub struct Source {
    pub url: String,
    pub final_url: String,
    /// The page's HTTP status.
    pub status: u16,
    pub content_type: Option<String>,
    /// When the page was fetched (ms since the epoch).
    pub fetched_at: i64,
    pub duration_ms: u64,
    pub from_cache: bool,
    /// Seconds since the cached copy was fetched or revalidated.
    pub age: Option<u64>,
    pub redirects: Vec<String>,
    /// SHA-256 of the raw body, hex.
    pub checksum: String,
    /// The request fetched nothing: the caller sent the HTML.
    pub supplied: bool,
}

/// One line of the stream.
fn event(kind: &str, payload: Value) -> Value {
    json!({ "type": kind, "payload": payload })
}

/// The first characters of the text, cut at a word.
fn excerpt(text: &str) -> String {
    const LIMIT: usize = 200;
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= LIMIT {
        return flat;
    }
    let cut: String = flat.chars().take(LIMIT).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}

fn byline(doc: &Document) -> Option<String> {
    (!doc.metadata.authors.is_empty()).then(|| doc.metadata.authors.join(", "))
}

fn kind(block: &Block) -> &'static str {
    match block {
        Block::Heading { .. } => "heading",
        Block::Paragraph { .. } => "paragraph",
        Block::ListItem { .. } => "listItem",
        Block::Code { .. } => "code",
        Block::Quote { .. } => "quote",
        Block::Table { .. } => "table",
        Block::Image { .. } => "image",
    }
}

/// Rows as `{header: value}` objects, as Anno's clients read them; columns
/// without a header are named by position.
fn table_payload(index: usize, table: &Table, confidence: f32) -> Value {
    let width = table.rows.iter().map(Vec::len).chain([table.headers.len()]).max().unwrap_or(0);
    let names: Vec<String> = (0..width)
        .map(|i| table.headers.get(i).filter(|h| !h.is_empty()).cloned().unwrap_or_else(|| format!("column{}", i + 1)))
        .collect();
    let rows: Vec<Value> = table
        .rows
        .iter()
        .map(|row| {
            let mut object = Map::new();
            for (name, cell) in names.iter().zip(row) {
                // A repeated header keeps its first column.
                object.entry(name.clone()).or_insert_with(|| Value::String(cell.clone()));
            }
            Value::Object(object)
        })
        .collect();
    json!({
        "id": format!("table-{index}"),
        "caption": table.caption,
        "headers": table.headers,
        "rows": rows,
        "cells": table.rows,
        "rowCount": table.rows.len(),
        "confidence": confidence,
    })
}

fn node_payload(source: &Source, order: usize, block: &Block, confidence: f32) -> Value {
    let text = block.text();
    let head: String = text.chars().take(64).collect();
    let hash = crate::cache::digest(format!("{}:{order}:{head}", source.final_url).as_bytes());
    let mut node = json!({
        "id": format!("node-{order}"),
        "hash": hash,
        "order": order,
        "kind": kind(block),
        "text": text,
        "confidence": confidence,
    });
    let extra = match block {
        Block::Heading { level, .. } => json!({ "level": level }),
        Block::ListItem { depth, ordered, number, .. } => {
            json!({ "depth": depth, "ordered": ordered, "number": number })
        }
        Block::Code { language, .. } => json!({ "language": language }),
        Block::Table { table } => json!({ "table": table }),
        Block::Image { alt, src, title } => json!({ "alt": alt, "src": src, "title": title }),
        Block::Paragraph { .. } | Block::Quote { .. } => json!({}),
    };
    if let (Some(node), Value::Object(extra)) = (node.as_object_mut(), extra) {
        node.extend(extra);
        let links = block.links();
        if !links.is_empty() {
            node.insert("links".into(), json!(links));
        }
        node.insert(
            "markdown".into(),
            Value::String(anno_extract::render::markdown(std::slice::from_ref(block), &Default::default())),
        );
    }
    node
}

fn tokens(doc: &Document) -> Value {
    match &doc.tokens {
        Some(t) => json!({
            "raw": t.raw,
            "output": t.markdown,
            "text": t.text,
            "tokenizer": t.tokenizer,
            "reduction": t.reduction,
        }),
        None => Value::Null,
    }
}

fn alert(source: &Source, doc: &Document) -> Option<Value> {
    let (kind, reason) = match doc.outcome {
        Outcome::ChallengePage => ("challenge_detected", "The page is a captcha or bot check, not the content."),
        Outcome::AuthWall => {
            ("auth_wall_detected", "The page asks to sign in or subscribe before showing the content.")
        }
        Outcome::Empty => ("empty_body", "The page shows no text."),
        Outcome::NotHtml => ("not_html", "The response is not an HTML page."),
        Outcome::LowContent => ("low_content", "Little content was found on the page."),
        Outcome::Ok => return None,
    };
    Some(json!({ "kind": kind, "reason": reason, "url": source.final_url, "timestamp": anno_tenancy::now_ms() }))
}

/// How the page was obtained: the `metadata` event, and the head of the
/// JSON document.
fn source_fields(source: &Source) -> Map<String, Value> {
    let fields = json!({
        "url": source.url,
        "finalUrl": source.final_url,
        "status": source.status,
        "contentType": source.content_type,
        "fetchTimestamp": source.fetched_at,
        "durationMs": source.duration_ms,
        "fromCache": source.from_cache,
        "cachedAt": source.from_cache.then_some(source.fetched_at),
        "age": source.age,
        "rendered": false,
        "redirects": source.redirects,
        "source": if source.supplied { "supplied" } else { "fetched" },
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Anno's event stream for one page, in order.
pub fn events(source: &Source, doc: &Document) -> Vec<Value> {
    let h = &doc.heuristics;
    let confidence = doc.confidence;
    let byline = byline(doc);
    let m = &doc.metadata;
    let mut out = vec![event("metadata", Value::Object(source_fields(source)))];
    if let Some(alert) = alert(source, doc) {
        out.push(event("alert", alert));
    }
    out.push(event(
        "confidence",
        json!({
            "overallConfidence": confidence,
            "authWall": doc.outcome == Outcome::AuthWall,
            "outcome": doc.outcome,
            "heuristics": {
                "fallbackUsed": !h.container_found,
                "nodeCount": doc.blocks.len(),
                "contentLength": doc.text.chars().count(),
                "hasByline": byline.is_some(),
                "mainWords": h.main_words,
                "paragraphs": h.paragraphs,
                "contentShare": h.content_share,
                "linkDensity": h.link_density,
                "articleType": h.article_type,
                "published": h.published,
                "scores": h.scores,
            },
        }),
    ));
    out.push(event(
        "extraction",
        json!({
            "method": "anno",
            "extractor": ENGINE_VERSION,
            "confidence": confidence,
            "fallbackUsed": !h.container_found,
            "byline": byline,
            "siteName": m.site_name,
        }),
    ));
    if !(m.json_ld.is_empty() && m.open_graph.is_empty() && m.twitter_card.is_empty() && m.microdata.is_empty()) {
        out.push(event(
            "structured",
            json!({
                "jsonLd": m.json_ld,
                "openGraph": m.open_graph,
                "twitterCard": m.twitter_card,
                "microdata": m.microdata,
                "confidence": if m.json_ld.is_empty() { 0.6 } else { 0.9 },
            }),
        ));
    }
    if !doc.tables.is_empty() {
        let tables: Vec<Value> = doc.tables.iter().enumerate().map(|(i, t)| table_payload(i, t, confidence)).collect();
        out.push(event("tables", json!({ "tables": tables })));
    }
    for (order, block) in doc.blocks.iter().enumerate() {
        out.push(event("node", node_payload(source, order, block, confidence)));
    }
    out.push(event(
        "provenance",
        json!({
            "extractor": ENGINE_VERSION,
            "checksum": source.checksum,
            "nodeCount": doc.blocks.len(),
        }),
    ));
    out.push(event(
        "done",
        json!({
            "nodes": doc.blocks.len(),
            "truncated": doc.truncated,
            "excerpt": excerpt(&doc.text),
            "title": m.title,
            "byline": byline,
            "siteName": m.site_name,
            "lang": m.lang,
            "published": m.published,
            "modified": m.modified,
            "canonical": m.canonical,
            "description": m.description,
            "image": m.image,
            "outcome": doc.outcome,
            "confidence": confidence,
            "tokens": tokens(doc),
        }),
    ));
    out
}

/// The whole page in one object.
pub fn document(source: &Source, doc: &Document) -> Value {
    let m = &doc.metadata;
    let mut out = source_fields(source);
    let rest = json!({
        "checksum": source.checksum,
        "extractor": ENGINE_VERSION,
        "outcome": doc.outcome,
        "confidence": doc.confidence,
        "heuristics": doc.heuristics,
        "title": m.title,
        "byline": byline(doc),
        "siteName": m.site_name,
        "metadata": m,
        "nodes": doc.blocks.iter().enumerate().map(|(i, b)| node_payload(source, i, b, doc.confidence)).collect::<Vec<_>>(),
        "markdown": doc.markdown,
        "text": doc.text,
        "tables": doc.tables,
        "tokens": tokens(doc),
        "truncated": doc.truncated,
    });
    if let Value::Object(rest) = rest {
        out.extend(rest);
    }
    Value::Object(out)
}

pub fn ndjson_lines(events: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        // Serialising a `Value` cannot fail.
        let _ = serde_json::to_writer(&mut out, e);
        out.push(b'\n');
    }
    out
}

/// A header value from free text: non-ASCII and control characters are
/// percent-encoded so any title fits.
fn header_text(text: &str) -> Option<HeaderValue> {
    let encoded: String = text
        .chars()
        .flat_map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '%' {
                vec![c.to_string()]
            } else {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf).bytes().map(|b| format!("%{b:02X}")).collect()
            }
        })
        .collect();
    HeaderValue::from_str(&encoded).ok()
}

/// The response in the asked format.
pub fn respond(format: Format, source: &Source, doc: &Document) -> Response {
    let (content_type, body) = match format {
        Format::Ndjson => ("application/x-ndjson", ndjson_lines(&events(source, doc))),
        Format::Json => ("application/json", serde_json::to_vec(&document(source, doc)).unwrap_or_default()),
        Format::Markdown => ("text/markdown; charset=utf-8", doc.markdown.clone().into_bytes()),
        Format::Text => ("text/plain; charset=utf-8", doc.text.clone().into_bytes()),
    };
    let mut response = (StatusCode::OK, Body::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let mut put = |name: &'static str, value: Option<HeaderValue>| {
        if let Some(value) = value {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    let m = &doc.metadata;
    let number = |n: String| HeaderValue::from_str(&n).ok();
    put("x-anno-final-url", header_text(&source.final_url));
    put("x-anno-status", number(source.status.to_string()));
    put("x-anno-outcome", Some(HeaderValue::from_static(doc.outcome.as_str())));
    put("x-anno-confidence", number(format!("{:.3}", doc.confidence)));
    put("x-anno-from-cache", Some(HeaderValue::from_static(if source.from_cache { "true" } else { "false" })));
    put("x-anno-truncated", Some(HeaderValue::from_static(if doc.truncated { "true" } else { "false" })));
    put("x-anno-nodes", number(doc.blocks.len().to_string()));
    put("x-anno-title", m.title.as_deref().and_then(header_text));
    put("x-anno-byline", byline(doc).as_deref().and_then(header_text));
    put("x-anno-site-name", m.site_name.as_deref().and_then(header_text));
    put("x-anno-lang", m.lang.as_deref().and_then(header_text));
    put("x-anno-published", m.published.as_deref().and_then(header_text));
    put("x-anno-canonical", m.canonical.as_deref().and_then(header_text));
    if let Some(t) = &doc.tokens {
        put("x-anno-tokens-raw", number(t.raw.to_string()));
        put("x-anno-tokens-output", number(t.markdown.to_string()));
        put("x-anno-token-reduction", number(format!("{:.4}", t.reduction)));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn source() -> Source {
        Source {
            url: "https://blog.example.org/a".into(),
            final_url: "https://blog.example.org/a".into(),
            status: 200,
            content_type: Some("text/html".into()),
            fetched_at: 1,
            duration_ms: 2,
            from_cache: false,
            age: None,
            redirects: vec![],
            checksum: "00".into(),
            supplied: false,
        }
    }

    fn page() -> Document {
        let prose = "Futures in Rust are lazy state machines that do nothing until they are polled, which is why an executor is needed to drive them to completion. ";
        let html = format!(
            r#"<html lang="en"><head><title>Async Rust in Practice</title>
<meta property="og:site_name" content="Example Blog"><meta name="author" content="Jane Doe"></head>
<body><article><p>{prose}{prose}</p><h2>Why async?</h2><p>{prose}<a href="/b">next</a></p>
<ul><li>one</li><li>two</li></ul><pre><code class="language-rust">fn main() {{}}</code></pre>
<table><tr><th>Name</th><th>Kind</th></tr><tr><td>poll</td><td>fn</td></tr></table></article></body></html>"#
        );
        anno_extract::extract(html.as_bytes(), "https://blog.example.org/a", None, &Default::default())
    }

    #[test]
    fn the_stream_keeps_annos_order_and_names() {
        let doc = page();
        let events = events(&source(), &doc);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        let nodes = kinds.iter().filter(|k| **k == "node").count();
        assert_eq!(kinds[..3], ["metadata", "confidence", "extraction"]);
        assert_eq!(kinds[kinds.len() - 2..], ["provenance", "done"]);
        assert!(kinds.contains(&"structured") && kinds.contains(&"tables"));
        assert_eq!(nodes, doc.blocks.len());
        let node_kinds: Vec<&str> =
            events.iter().filter(|e| e["type"] == "node").map(|e| e["payload"]["kind"].as_str().unwrap()).collect();
        for k in ["heading", "paragraph", "listItem", "code", "table"] {
            assert!(node_kinds.contains(&k), "{k} in {node_kinds:?}");
        }
        let done = &events.last().unwrap()["payload"];
        assert_eq!(done["title"], "Async Rust in Practice");
        assert_eq!(done["siteName"], "Example Blog");
        assert!(done["tokens"]["raw"].as_u64().unwrap() > done["tokens"]["output"].as_u64().unwrap());
        let link = events.iter().find(|e| e["payload"]["links"].is_array()).unwrap();
        assert_eq!(link["payload"]["links"][0]["href"], "https://blog.example.org/b");
        let table = &events.iter().find(|e| e["type"] == "tables").unwrap()["payload"]["tables"][0];
        assert_eq!(table["rows"][0], json!({"Name": "poll", "Kind": "fn"}));
    }

    #[test]
    fn node_hashes_follow_annos_rule() {
        let doc = page();
        let events = events(&source(), &doc);
        let node = &events.iter().find(|e| e["type"] == "node").unwrap()["payload"];
        let text = node["text"].as_str().unwrap();
        let head: String = text.chars().take(64).collect();
        let expected = hex::encode(Sha256::digest(format!("https://blog.example.org/a:0:{head}").as_bytes()));
        assert_eq!(node["hash"], expected);
    }

    #[test]
    fn excerpts_cut_at_a_word() {
        assert_eq!(excerpt("short  text"), "short text");
        let long = "word ".repeat(100);
        let e = excerpt(&long);
        assert!(e.ends_with("word…") && e.chars().count() <= 201, "{e}");
    }

    #[test]
    fn any_title_fits_a_header() {
        assert_eq!(header_text("Ärger % 100").unwrap(), "%C3%84rger %25 100");
    }
}
