//! Fetch, extract and batch through the gateway, against the fixture site.

use crate::harness::Platform;
use crate::in_both_shapes;
use crate::site::site;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

in_both_shapes!(
    a_fetch_streams_annos_events,
    every_format_carries_the_same_page,
    failures_before_the_first_byte_are_real_statuses,
    the_ssrf_guard_refuses_internal_addresses_and_hops,
    cached_pages_are_served_revalidated_and_kept_per_tenant,
    html_the_caller_has_is_extracted_without_a_fetch,
    a_batch_streams_every_url_and_survives_failures,
    content_metrics_are_exported,
);

struct Caller {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Caller {
    async fn new(p: &Platform) -> Caller {
        let created = p.onboard().await;
        Caller { http: reqwest::Client::new(), base: p.url().to_owned(), key: created.api_key.secret }
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("the gateway answers")
    }

    async fn fetch(&self, url: &str, options: Value) -> reqwest::Response {
        self.post("/v1/content/fetch", json!({ "url": url, "options": options })).await
    }

    /// The events of an NDJSON answer.
    async fn events(&self, url: &str, options: Value) -> Vec<Value> {
        let response = self.fetch(url, options).await;
        let status = response.status();
        let content_type = response.headers()["content-type"].clone();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        assert_eq!(content_type, "application/x-ndjson");
        lines(&body)
    }
}

fn lines(body: &str) -> Vec<Value> {
    body.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
}

fn payload<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    &events.iter().find(|e| e["type"] == kind).unwrap_or_else(|| panic!("no {kind} event"))["payload"]
}

/// The status and problem code of a refused request.
async fn problem(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

async fn a_fetch_streams_annos_events(p: &Platform) {
    let c = Caller::new(p).await;
    let events = c.events(&site().url("/redirect"), json!({})).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[..3], ["metadata", "confidence", "extraction"], "{kinds:?}");
    assert_eq!(kinds[kinds.len() - 2..], ["provenance", "done"]);
    assert!(kinds.contains(&"structured") && kinds.contains(&"tables"), "{kinds:?}");

    let metadata = payload(&events, "metadata");
    assert_eq!(metadata["url"], site().url("/redirect"));
    assert_eq!(metadata["finalUrl"], site().url("/article"), "finalUrl follows the redirects");
    assert_eq!(metadata["redirects"].as_array().map(Vec::len), Some(2));
    assert_eq!((metadata["status"].as_u64(), metadata["fromCache"].as_bool()), (Some(200), Some(false)));
    assert_eq!(metadata["rendered"], false);

    let nodes: Vec<&Value> = events.iter().filter(|e| e["type"] == "node").map(|e| &e["payload"]).collect();
    let kinds: Vec<&str> = nodes.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    for kind in ["paragraph", "heading", "table", "code"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(nodes[0]["text"].as_str().unwrap().starts_with("The harbour authority"), "{:?}", nodes[0]);
    let linked = nodes.iter().find(|n| n["links"].is_array()).expect("a node with a link");
    assert_eq!(linked["links"][0]["href"], site().url("/survey"), "links are absolute");
    let done = payload(&events, "done");
    assert_eq!(done["nodes"].as_u64(), Some(nodes.len() as u64));
    assert_eq!(done["title"], "Breakwater to be rebuilt");
    assert_eq!((done["byline"].as_str(), done["siteName"].as_str()), (Some("Jane Doe"), Some("Harbour News")));
    assert_eq!((done["outcome"].as_str(), done["lang"].as_str()), (Some("ok"), Some("en")));
    assert_eq!(done["tokens"]["tokenizer"], "o200k_base");
    assert!(done["tokens"]["raw"].as_u64().unwrap() > done["tokens"]["output"].as_u64().unwrap());
    assert_eq!(payload(&events, "provenance")["nodeCount"].as_u64(), Some(nodes.len() as u64));

    let few = c.events(&site().url("/article"), json!({ "maxNodes": 2 })).await;
    assert_eq!(few.iter().filter(|e| e["type"] == "node").count(), 2);
    assert_eq!(payload(&few, "done")["truncated"], true);
}

async fn every_format_carries_the_same_page(p: &Platform) {
    let c = Caller::new(p).await;
    let url = site().url("/article");
    let json_doc: Value = c.fetch(&url, json!({ "format": "json" })).await.json().await.unwrap();
    assert_eq!(json_doc["finalUrl"], url);
    assert!(json_doc["markdown"].as_str().unwrap().contains("| Year | Cost |"), "GFM tables with outer pipes");
    assert!(json_doc["markdown"].as_str().unwrap().contains("```python"));
    assert!(json_doc["text"].as_str().unwrap().starts_with("The harbour authority"));

    let markdown = c.fetch(&url, json!({ "format": "markdown" })).await;
    assert_eq!(markdown.headers()["content-type"], "text/markdown; charset=utf-8");
    assert_eq!(markdown.headers()["x-anno-outcome"], "ok");
    assert_eq!(markdown.headers()["x-anno-final-url"], url.as_str());
    assert_eq!(markdown.text().await.unwrap(), json_doc["markdown"].as_str().unwrap());

    let accept = c
        .http
        .post(format!("{}/v1/content/fetch", c.base))
        .bearer_auth(&c.key)
        .header("accept", "text/plain")
        .json(&json!({ "url": url }))
        .send()
        .await
        .unwrap();
    assert_eq!(accept.headers()["content-type"], "text/plain; charset=utf-8");
    let text = accept.text().await.unwrap();
    assert_eq!(text, json_doc["text"].as_str().unwrap());
    assert!(!text.contains("http://"), "plain text has no URLs");

    // A page in windows-1252 declared only in a <meta>.
    let latin: Value = c.fetch(&site().url("/latin1"), json!({ "format": "json" })).await.json().await.unwrap();
    assert!(latin["text"].as_str().unwrap().contains("Le café naïve “quoted”."), "{}", latin["text"]);
    let sniffed: Value = c.fetch(&site().url("/sniffed"), json!({ "format": "json" })).await.json().await.unwrap();
    assert!(sniffed["text"].as_str().unwrap().contains("Déjà vu, crème brûlée et ça."), "{}", sniffed["text"]);
}

async fn failures_before_the_first_byte_are_real_statuses(p: &Platform) {
    let c = Caller::new(p).await;
    let cases = [
        ("not a url", json!({}), StatusCode::BAD_REQUEST, "invalid_url"),
        ("ftp://example.com/file", json!({}), StatusCode::FORBIDDEN, "url_blocked"),
        (&site().url("/private/page"), json!({}), StatusCode::FORBIDDEN, "robots_disallowed"),
        (&site().url("/paper.pdf"), json!({}), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_content_type"),
        (&site().url("/big"), json!({}), StatusCode::PAYLOAD_TOO_LARGE, "page_too_large"),
        (&site().url("/broken"), json!({}), StatusCode::BAD_GATEWAY, "upstream_error"),
        (&site().url("/article"), json!({ "render": true }), StatusCode::NOT_IMPLEMENTED, "rendering_unavailable"),
        (&site().url("/article"), json!({ "maxNode": 3 }), StatusCode::BAD_REQUEST, "unknown_field"),
        (&site().url("/article"), json!({ "maxNodes": "many" }), StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
    ];
    for (url, options, status, code) in cases {
        let got = problem(c.fetch(url, options.clone()).await).await;
        assert_eq!(got, (status, code.to_owned()), "{url} {options}");
    }
    let started = Instant::now();
    let got = problem(c.fetch(&site().url("/slow"), json!({})).await).await;
    assert_eq!(got, (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout".to_owned()));
    assert!(started.elapsed() < Duration::from_secs(10), "the fetch timeout bounds the wait");
    // Port 9 on the allowed name: nothing listens there.
    let closed = format!("http://{}:9/", crate::site::HOST);
    let got = problem(c.fetch(&closed, json!({})).await).await;
    assert_eq!(got.0, StatusCode::FORBIDDEN, "only the allowed port of a private host is reachable: {got:?}");
}

async fn the_ssrf_guard_refuses_internal_addresses_and_hops(p: &Platform) {
    let c = Caller::new(p).await;
    let port = site().port;
    for url in [
        format!("http://127.0.0.1:{port}/article"),
        format!("http://[::ffff:127.0.0.1]:{port}/article"),
        format!("http://[::1]:{port}/article"),
        format!("http://2130706433:{port}/article"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://user:secret@example.com/".to_owned(),
        site().url("/redirect-out"),
    ] {
        let got = problem(c.fetch(&url, json!({})).await).await;
        assert_eq!(got, (StatusCode::FORBIDDEN, "url_blocked".to_owned()), "{url}");
    }
    assert_eq!(site().hits("/redirect-out"), 1, "the allowed hop was fetched, the forbidden one refused");
}

async fn cached_pages_are_served_revalidated_and_kept_per_tenant(p: &Platform) {
    let (a, b) = (Caller::new(p).await, Caller::new(p).await);
    let url = site().url("/validated");
    let first = a.events(&url, json!({})).await;
    assert_eq!(payload(&first, "metadata")["fromCache"], false);
    let second = a.events(&url, json!({})).await;
    assert_eq!(payload(&second, "metadata")["fromCache"], true);
    assert_eq!(payload(&second, "metadata")["cachedAt"], payload(&first, "metadata")["fetchTimestamp"]);
    assert_eq!(site().hits("/validated"), 1, "a fresh copy is served from the cache");
    assert_eq!(payload(&first, "done"), payload(&second, "done"));

    // Too old for the caller: revalidated with the ETag (304), still from the cache.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let revalidated = a.events(&url, json!({ "maxAge": 0 })).await;
    assert_eq!(payload(&revalidated, "metadata")["fromCache"], true);
    assert_eq!(site().hits("/validated"), 2);

    let fresh = a.events(&url, json!({ "useCache": false })).await;
    assert_eq!(payload(&fresh, "metadata")["fromCache"], false);
    assert_eq!(site().hits("/validated"), 3);

    // Another tenant does not see the first one's cached pages.
    let other = b.events(&url, json!({})).await;
    assert_eq!(payload(&other, "metadata")["fromCache"], false);
    assert_eq!(site().hits("/validated"), 4);
}

async fn html_the_caller_has_is_extracted_without_a_fetch(p: &Platform) {
    let c = Caller::new(p).await;
    let page = crate::site::article("Sent by the caller");
    let response = c
        .http
        .post(format!("{}/v1/content/extract?url=https://news.example.org/story&format=json", c.base))
        .bearer_auth(&c.key)
        .header("content-type", "text/html; charset=utf-8")
        .body(page.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["finalUrl"], "https://news.example.org/story");
    assert!(doc["text"].as_str().unwrap().starts_with("The harbour authority"));
    assert!(doc["markdown"].as_str().unwrap().contains("(https://news.example.org/survey)"));

    let events = lines(
        &c.post("/v1/content/extract", json!({ "html": page, "url": "https://news.example.org/story" }))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(payload(&events, "metadata")["source"], "supplied");
    assert_eq!(payload(&events, "done")["outcome"], "ok");

    let no_url = c
        .http
        .post(format!("{}/v1/content/extract", c.base))
        .bearer_auth(&c.key)
        .header("content-type", "text/html")
        .body("<p>x</p>")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(no_url).await, (StatusCode::BAD_REQUEST, "invalid_url".to_owned()));
    let wrong_type = c
        .http
        .post(format!("{}/v1/content/extract?url=https://a.example/", c.base))
        .bearer_auth(&c.key)
        .header("content-type", "application/pdf")
        .body("%PDF")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(wrong_type).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

async fn a_batch_streams_every_url_and_survives_failures(p: &Platform) {
    let c = Caller::new(p).await;
    let urls = [site().url("/article"), site().url("/broken"), site().url("/other"), "http://10.0.0.1/".to_owned()];
    let response = c.post("/v1/content/batch-fetch", json!({ "urls": urls, "options": { "parallel": 2 } })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let events = lines(&response.text().await.unwrap());
    assert_eq!(events[0]["type"], "batch_start");
    assert_eq!(
        (events[0]["payload"]["totalUrls"].as_u64(), events[0]["payload"]["parallelism"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(events.last().unwrap()["type"], "batch_end");
    assert_eq!(events.last().unwrap()["payload"]["units"], 2, "two pages delivered, two failures free");
    let ends: Vec<&Value> = events.iter().filter(|e| e["type"] == "source_end").map(|e| &e["payload"]).collect();
    assert_eq!(ends.len(), 4);
    let status_of = |i: u64| ends.iter().find(|e| e["index"] == i).map(|e| e["status"].as_str().unwrap().to_owned());
    assert_eq!(
        [status_of(0), status_of(1), status_of(2), status_of(3)],
        [Some("success".into()), Some("error".into()), Some("success".into()), Some("error".into())]
    );
    let broken = ends.iter().find(|e| e["index"] == 1).unwrap();
    assert_eq!(broken["error"]["code"], "upstream_error");
    let inner: Vec<&Value> =
        events.iter().filter(|e| e["type"] == "source_event" && e["payload"]["index"] == 2).collect();
    assert_eq!(inner.first().map(|e| &e["payload"]["event"]["type"]), Some(&json!("metadata")));
    assert_eq!(inner.last().map(|e| &e["payload"]["event"]["type"]), Some(&json!("done")));

    let too_many: Vec<String> = (0..51).map(|i| site().url(&format!("/article?{i}"))).collect();
    let got = problem(c.post("/v1/content/batch-fetch", json!({ "urls": too_many })).await).await;
    assert_eq!(
        got,
        (StatusCode::UNPROCESSABLE_ENTITY, "batch_too_large".to_owned()),
        "the professional plan allows 50"
    );

    // A client that goes away stops the work: of five slow pages fetched one
    // at a time, only the first is asked for.
    let slow: Vec<String> = (0..5).map(|i| site().url(&format!("/slow?{i}"))).collect();
    let before = site().hits("/slow");
    let mut response = c.post("/v1/content/batch-fetch", json!({ "urls": slow, "options": { "parallel": 1 } })).await;
    let first = response.chunk().await.unwrap().expect("batch_start arrives at once");
    assert!(String::from_utf8_lossy(&first).contains("batch_start"));
    drop(response);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(site().hits("/slow") - before <= 1, "{} slow fetches after the client left", site().hits("/slow") - before);
}

async fn content_metrics_are_exported(p: &Platform) {
    let c = Caller::new(p).await;
    c.events(&site().url("/article"), json!({})).await;
    let _ = c.fetch("http://169.254.169.254/", json!({})).await;
    let core = p.service_url(anno::ServiceName::Core).unwrap_or(p.url());
    let text = reqwest::get(format!("{core}/metrics")).await.unwrap().text().await.unwrap();
    for name in [
        "anno_token_reduction_ratio_count",
        "anno_tenant_requests_total",
        "anno_tenant_response_time_seconds_bucket",
        "anno_fetch_duration_seconds_bucket",
        "anno_extract_duration_seconds_bucket",
        "anno_cache_requests_total",
    ] {
        assert!(text.contains(name), "{name} is exported");
    }
    assert!(text.contains("anno_fetch_blocked_total{reason=\"metadata\"}"), "blocked fetches by reason");
    assert!(!text.contains(&c.key), "no secret in metrics");
}
