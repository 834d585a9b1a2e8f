//! Plan limits through the gateway: rate with burst, units per minute, and
//! concurrent requests, with the headers a client reads; and the usage ledger
//! agreeing with what was charged.

use crate::harness::Platform;
use crate::in_both_shapes;
use crate::site::site;
use anno_api::auth::CreateKeyRequest;
use anno_tenancy::ScopeSet;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

in_both_shapes!(
    a_trial_burst_passes_and_the_rest_are_refused,
    keys_of_one_tenant_share_its_limits,
    pages_cost_units_and_the_minute_quota_holds,
    concurrent_requests_are_capped,
);

fn header(r: &Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn get(p: &Platform, key: &str, path: &str) -> Response {
    reqwest::Client::new().get(format!("{}{path}", p.url())).bearer_auth(key).send().await.expect("the gateway answers")
}

async fn fetch(p: &Platform, key: &str, page: &str) -> Response {
    reqwest::Client::new()
        .post(format!("{}/v1/content/fetch", p.url()))
        .bearer_auth(key)
        .json(&json!({ "url": site().url(page), "options": { "format": "json" } }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the gateway answers")
}

/// The status and problem code of a response, reading its body.
async fn outcome(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

async fn a_trial_burst_passes_and_the_rest_are_refused(p: &Platform) {
    let key = p.onboard_on(None).await.api_key.secret;
    let started = Instant::now();
    let mut responses = Vec::new();
    for _ in 0..30 {
        responses.push(get(p, &key, "/v1/me").await);
    }
    let refilled = (started.elapsed().as_secs_f64() * 5.0).floor() as usize;
    let passed = responses.iter().filter(|r| r.status() == StatusCode::OK).count();
    assert!(passed >= 10 && passed <= 10 + refilled, "{passed} of 30 passed (trial: 5/s, burst 10)");
    let first = &responses[0];
    assert_eq!(header(first, "ratelimit-policy"), r#""tenant";q=10;w=2, "key";q=10;w=2"#);
    assert!(header(first, "ratelimit").starts_with(r#""tenant";r=9;t=1"#), "{}", header(first, "ratelimit"));
    assert_eq!(header(first, "x-anno-units"), "0", "a call that delivers no page costs nothing");
    let last = responses.pop().unwrap();
    assert_eq!(last.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&last, "retry-after").parse().expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(header(&last, "ratelimit").starts_with(r#""tenant";r=0;"#), "{}", header(&last, "ratelimit"));
    assert!(header(&last, "content-type").starts_with("application/problem+json"));
    let body: Value = last.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert!(body["detail"].as_str().unwrap().contains(r#""tenant""#), "names the policy: {body}");
    // Refusals take nothing: after a refill the tenant is served again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(get(p, &key, "/v1/me").await.status(), StatusCode::OK);
}

async fn keys_of_one_tenant_share_its_limits(p: &Platform) {
    let created = p.onboard_on(None).await;
    let first = created.api_key.secret;
    let request = CreateKeyRequest { name: "second".into(), scopes: ScopeSet::all(), expires_at: None };
    let second = p.client(&first).create_key(&request).await.expect("a second key").secret;
    // A full bucket again (burst 10 at 5/s).
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let started = Instant::now();
    let mut passed = 0;
    for i in 0..20 {
        let key = if i % 2 == 0 { &first } else { &second };
        passed += usize::from(get(p, key, "/v1/me").await.status() == StatusCode::OK);
    }
    let refilled = (started.elapsed().as_secs_f64() * 5.0).floor() as usize;
    assert!(passed >= 10 && passed <= 10 + refilled, "two keys share the tenant's burst of 10: {passed}");
}

/// Sleeps past the end of the minute when little of it is left, so a test of
/// the minute quota runs inside one minute.
async fn start_of_a_minute() {
    let into = anno_tenancy::now_ms() % 60_000;
    if into > 35_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into + 200) as u64)).await;
    }
}

async fn usage(p: &Platform, key: &str) -> Value {
    let r = get(p, key, "/v1/usage").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn window<'a>(usage: &'a Value, name: &str) -> &'a Value {
    usage["windows"].as_array().unwrap().iter().find(|w| w["window"] == name).expect("the window")
}

async fn pages_cost_units_and_the_minute_quota_holds(p: &Platform) {
    let created = p.onboard_on(None).await;
    let (tenant, key) = (created.tenant.id, created.api_key.secret);
    start_of_a_minute().await;
    // Trial: 10 units a minute. Nine pages, and one failure that costs nothing.
    for i in 0..9 {
        let r = fetch(p, &key, &format!("/article?{i}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "x-anno-units"), "1");
    }
    let failed = fetch(p, &key, "/broken").await;
    assert_eq!(header(&failed, "x-anno-units"), "0");
    assert!(failed.status().is_server_error() || failed.status().is_client_error(), "{}", failed.status());
    // Past the burst of 10 requests: wait for rate tokens, not units.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let tenth = fetch(p, &key, "/article?9").await;
    assert_eq!(tenth.status(), StatusCode::OK);
    let refused = fetch(p, &key, "/article?10").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&refused, "ratelimit").contains(r#""units-minute";r=0;"#), "{}", header(&refused, "ratelimit"));
    assert!(header(&refused, "ratelimit-policy").contains(r#""units-minute";q=10;w=60"#));
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(outcome(refused).await, (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded".to_owned()));

    // The ledger has each unit once, and agrees with the limiter.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = usage(p, &key).await;
    while window(&seen, "month")["used"] != 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen = usage(p, &key).await;
    }
    let month = window(&seen, "month");
    assert_eq!(
        (month["used"].as_u64(), month["limit"].as_u64(), month["remaining"].as_u64()),
        (Some(10), Some(1_000), Some(990))
    );
    assert_eq!(window(&seen, "minute")["used"], 10);
    assert_eq!(window(&seen, "minute")["remaining"], 0);
    assert_eq!(window(&seen, "day")["used"], 10);
    assert_eq!(seen["byKey"], json!([{ "keyId": created.api_key.key.id, "units": 10 }]));
    let admin = p.get_json(crate::harness::ADMIN_KEY, &format!("/v1/admin/tenants/{tenant}/usage")).await;
    assert_eq!(window(&admin, "month")["used"], 10);
    // Another tenant's usage is its own.
    let other = p.onboard().await.api_key.secret;
    assert_eq!(window(&usage(p, &other).await, "month")["used"], 0);
}

async fn concurrent_requests_are_capped(p: &Platform) {
    // Trial: two requests at once. Two slow pages hold both slots.
    let key = p.onboard_on(None).await.api_key.secret;
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let (base, key) = (p.url().to_owned(), key.clone());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(format!("{base}/v1/content/fetch"))
                    .bearer_auth(key)
                    .json(&json!({ "url": site().url(&format!("/slow?{i}")), "options": { "format": "json" } }))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let third = fetch(p, &key, "/article").await;
    assert_eq!(header(&third, "retry-after"), "1");
    assert_eq!(outcome(third).await, (StatusCode::TOO_MANY_REQUESTS, "concurrency_exceeded".to_owned()));
    for task in slow {
        let status = task.await.unwrap().unwrap();
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    // Done: the slots are free again.
    let mut served = false;
    for _ in 0..20 {
        if fetch(p, &key, "/article").await.status() == StatusCode::OK {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served);
}
