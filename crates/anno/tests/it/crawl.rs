//! Crawl jobs through the gateway: started, followed, paged, isolated per
//! tenant, charged per captured page, and carried across a restart.

use crate::harness::Platform;
use crate::in_both_shapes;
use crate::site::site;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

in_both_shapes!(a_crawl_captures_the_site_and_accounts_for_every_url, a_crawl_costs_one_unit_per_captured_page);

struct Tenant {
    http: reqwest::Client,
    base: String,
    key: String,
    key_id: String,
}

impl Tenant {
    async fn new(p: &Platform) -> Tenant {
        let created = p.onboard().await;
        Tenant {
            http: reqwest::Client::new(),
            base: p.url().to_owned(),
            key: created.api_key.secret,
            key_id: created.api_key.key.id.to_string(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn start(&self, options: Value) -> String {
        let body = json!({ "url": site().url("/crawl/0"), "options": options });
        let (status, created) = self.call(reqwest::Method::POST, "/v1/crawl", Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{created}");
        assert_eq!(created["status"], "running");
        created["jobId"].as_str().expect("a job id").to_owned()
    }

    /// Polls the job until it is no longer running.
    async fn finished(&self, job: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.call(reqwest::Method::GET, &format!("/v1/crawl/{job}"), None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["status"] != "running" {
                return body;
            }
            assert!(Instant::now() < deadline, "the crawl did not finish: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn a_crawl_captures_the_site_and_accounts_for_every_url(p: &Platform) {
    let (owner, other) = (Tenant::new(p).await, Tenant::new(p).await);
    let job = owner.start(json!({ "maxDepth": 3, "respectRobots": false })).await;
    assert!(job.starts_with("job_"), "{job}");
    assert_eq!(other.call(reqwest::Method::GET, &format!("/v1/crawl/{job}"), None).await.0, StatusCode::NOT_FOUND);

    let done = owner.finished(&job).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["pagesCompleted"], 4, "the start page and three levels below it: {done}");

    let (_, results) = owner.call(reqwest::Method::GET, &format!("/v1/crawl/{job}/results?limit=2"), None).await;
    assert_eq!(results["data"].as_array().map(Vec::len), Some(2));
    let first = &results["data"][0];
    assert!(first["content"].as_str().unwrap().contains("The harbour authority"), "{first}");
    assert!(first["tokenCount"].as_u64().unwrap() < first["rawTokenCount"].as_u64().unwrap());
    let cursor = results["nextCursor"].as_str().expect("a second page");
    let (_, rest) = owner.call(reqwest::Method::GET, &format!("/v1/crawl/{job}/results?cursor={cursor}"), None).await;
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(2));

    let (_, urls) = owner.call(reqwest::Method::GET, &format!("/v1/crawl/{job}/urls"), None).await;
    let dispositions: Vec<(String, String)> = urls["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["url"].as_str().unwrap().to_owned(), u["disposition"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let of = |path: &str| dispositions.iter().find(|(u, _)| *u == site().url(path)).map(|(_, s)| s.as_str());
    assert_eq!(of("/crawl/3"), Some("captured"), "{dispositions:?}");
    assert_eq!(of("/crawl/4"), Some("excluded:depth"), "{dispositions:?}");

    let (status, listed) = other.call(reqwest::Method::GET, "/v1/crawl", None).await;
    assert_eq!((status, listed["data"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    let (_, listed) = owner.call(reqwest::Method::GET, "/v1/crawl", None).await;
    assert_eq!(listed["data"][0]["jobId"], job.as_str());
}

/// This month's window of the tenant's usage.
fn month(usage: &Value) -> &Value {
    let windows = usage["windows"].as_array().expect("usage windows");
    windows.iter().find(|w| w["window"] == "month").expect("the month's window")
}

async fn a_crawl_costs_one_unit_per_captured_page(p: &Platform) {
    let owner = Tenant::new(p).await;
    let job = owner.start(json!({ "maxDepth": 5, "respectRobots": false })).await;
    let done = owner.finished(&job).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done.get("stopReason").is_none(), "a professional tenant has units to spare: {done}");
    let pages = done["progress"]["pagesCompleted"].as_u64().expect("pages captured");
    assert_eq!(pages, 6, "{done}");

    // The ledger lags the charges by moments: poll until it has them all, then
    // look again a moment later, in case more were on their way.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, usage) = owner.call(reqwest::Method::GET, "/v1/usage", None).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        if month(&usage)["used"].as_u64() >= Some(pages) {
            break;
        }
        assert!(Instant::now() < deadline, "the ledger did not catch up: {usage}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, usage) = owner.call(reqwest::Method::GET, "/v1/usage", None).await;
    assert_eq!(month(&usage)["used"].as_u64(), Some(pages), "one unit per captured page: {usage}");
    assert_eq!(
        usage["byKey"],
        json!([{ "keyId": owner.key_id, "units": pages }]),
        "credited to the key that started it"
    );
}

/// A crawl running when the platform stops is carried on when it starts again:
/// what was captured stays, nothing is captured twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_survives_a_restart() {
    let mut p = Platform::embedded().await;
    let owner = Tenant::new(&p).await;
    let job = owner.start(json!({ "maxDepth": 5, "concurrency": 1, "respectRobots": false })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, before) = owner.call(reqwest::Method::GET, &format!("/v1/crawl/{job}"), None).await;
    assert_eq!(before["status"], "running", "{before}");
    assert!(before["progress"]["pagesCompleted"].as_u64().unwrap() < 6, "{before}");
    p.restart().await;
    let owner = Tenant { base: p.url().to_owned(), ..owner };
    let done = owner.finished(&job).await;
    assert_eq!(done["status"], "completed", "{done}");
    let (_, results) = owner.call(reqwest::Method::GET, &format!("/v1/crawl/{job}/results?limit=100"), None).await;
    let mut urls: Vec<&str> = results["data"].as_array().unwrap().iter().map(|r| r["url"].as_str().unwrap()).collect();
    urls.sort();
    let expected: Vec<String> = (0..=5).map(|n| site().url(&format!("/crawl/{n}"))).collect();
    assert_eq!(urls, expected.iter().map(String::as_str).collect::<Vec<_>>(), "each page once");
    p.finish().await;
}
