//! `Idempotency-Key` on creating POSTs: the first answer is replayed, a retry
//! with another body or while the first runs is a 409, and nothing is created twice.

use crate::harness::{ADMIN_KEY, Platform, random_hex};
use crate::in_both_shapes;
use crate::site::site;
use reqwest::StatusCode;
use serde_json::{Value, json};

in_both_shapes!(
    a_retried_key_creation_is_answered_once,
    concurrent_duplicates_create_one_thing,
    tenants_and_crawls_are_created_once,
    keys_are_each_callers_own,
);

async fn post(
    p: &Platform,
    credential: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, bool, Value) {
    let mut request = reqwest::Client::new().post(format!("{}{path}", p.url())).bearer_auth(credential).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("the gateway answers");
    let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (response.status(), replayed, response.json().await.unwrap_or(Value::Null))
}

async fn key_count(p: &Platform, credential: &str) -> usize {
    p.client(credential).list_keys(None).await.expect("listing keys").data.len()
}

async fn a_retried_key_creation_is_answered_once(p: &Platform) {
    let secret = p.onboard().await.api_key.secret;
    let before = key_count(p, &secret).await;
    let body = json!({ "name": "ci", "scopes": ["content:fetch"] });
    let key = format!("retry-{}", random_hex(8));
    let (status, replayed, first) = post(p, &secret, "/v1/keys", Some(&key), &body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{first}");
    let (status, replayed, again) = post(p, &secret, "/v1/keys", Some(&key), &body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again, first, "the same answer, secret and all");
    assert_eq!(key_count(p, &secret).await, before + 1);

    let other = json!({ "name": "other", "scopes": ["content:fetch"] });
    let (status, _, problem) = post(p, &secret, "/v1/keys", Some(&key), &other).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("idempotency_key_reused")));
    let (status, _, problem) = post(p, &secret, "/v1/keys", Some("has space"), &body).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key")));
    // Without a key, each call creates.
    post(p, &secret, "/v1/keys", None, &body).await;
    post(p, &secret, "/v1/keys", None, &body).await;
    assert_eq!(key_count(p, &secret).await, before + 3);
}

async fn concurrent_duplicates_create_one_thing(p: &Platform) {
    let secret = p.onboard().await.api_key.secret;
    let before = key_count(p, &secret).await;
    let key = format!("race-{}", random_hex(8));
    let body = json!({ "name": "raced", "scopes": ["content:fetch"] });
    let calls = (0..6).map(|_| post(p, &secret, "/v1/keys", Some(&key), &body));
    let answers = futures::future::join_all(calls).await;
    let created: Vec<&Value> = answers.iter().filter(|a| a.0 == StatusCode::CREATED).map(|a| &a.2).collect();
    assert!(!created.is_empty());
    assert!(created.iter().all(|c| c["id"].is_string() && c["id"] == created[0]["id"]), "one key, replayed");
    for (status, _, body) in &answers {
        assert!(
            *status == StatusCode::CREATED
                || (*status == StatusCode::CONFLICT && body["code"] == "idempotency_in_progress"),
            "{status} {body}"
        );
    }
    assert_eq!(key_count(p, &secret).await, before + 1);
}

async fn tenants_and_crawls_are_created_once(p: &Platform) {
    let suffix = random_hex(6);
    let body = json!({
        "name": format!("Idem {suffix}"),
        "domain": format!("i{suffix}.example.com"),
        "contactEmail": format!("ops@i{suffix}.example.com"),
        "plan": "professional",
    });
    let key = format!("tenant-{suffix}");
    let (status, _, first) = post(p, ADMIN_KEY, "/v1/admin/tenants", Some(&key), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // A second create of the same domain would be refused; the retry is the first answer.
    let (status, replayed, again) = post(p, ADMIN_KEY, "/v1/admin/tenants", Some(&key), &body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert!(first["tenant"]["id"].is_string(), "{first}");
    assert_eq!(again["tenant"]["id"], first["tenant"]["id"]);

    let secret = first["apiKey"]["key"].as_str().expect("the first key").to_owned();
    let crawl = json!({ "url": site().url("/crawl/0"), "options": { "maxDepth": 0, "respectRobots": false } });
    let (status, _, job) = post(p, &secret, "/v1/crawl", Some("crawl-1"), &crawl).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let (status, replayed, again) = post(p, &secret, "/v1/crawl", Some("crawl-1"), &crawl).await;
    assert!(job["jobId"].is_string(), "{job}");
    assert_eq!((status, replayed, &again["jobId"]), (StatusCode::ACCEPTED, true, &job["jobId"]));
    let listed = p.get_json(&secret, "/v1/crawl").await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
}

async fn keys_are_each_callers_own(p: &Platform) {
    let a = p.onboard().await.api_key.secret;
    let b = p.onboard().await.api_key.secret;
    let body = json!({ "name": "mine", "scopes": ["content:fetch"] });
    let (_, _, from_a) = post(p, &a, "/v1/keys", Some("shared-key"), &body).await;
    let (status, replayed, from_b) = post(p, &b, "/v1/keys", Some("shared-key"), &body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "another tenant's key is not replayed");
    assert!(from_a["id"].is_string() && from_b["id"].is_string());
    assert_ne!(from_a["id"], from_b["id"]);
}
