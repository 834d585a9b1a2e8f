//! Layered configuration, flags and live updates through the public API: what
//! a tenant or an admin changes is what the gateway and core act on next.

use crate::harness::{ADMIN_KEY, Platform};
use crate::in_both_shapes;
use crate::site::site;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

in_both_shapes!(
    layers_merge_in_order_and_bad_settings_are_listed,
    a_tenant_may_lower_its_limits_and_the_gateway_holds_them,
    history_rollback_and_etags,
    core_applies_extraction_defaults_and_blocks_domains_at_once,
    flags_target_roll_out_and_speak_ofrep,
);

struct Answer {
    status: StatusCode,
    body: Value,
    etag: Option<String>,
}

async fn call(
    base: &str,
    method: Method,
    path: &str,
    credential: &str,
    body: Option<Value>,
    etag: Option<&str>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(credential);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    let response = request.timeout(Duration::from_secs(30)).send().await.expect("the gateway answers");
    let status = response.status();
    let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Answer { status, body, etag }
}

async fn send(p: &Platform, method: Method, path: &str, credential: &str, body: Option<Value>) -> Answer {
    call(p.url(), method, path, credential, body, None).await
}

fn paths(answer: &Answer) -> Vec<String> {
    let mut paths: Vec<String> = answer.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["path"].as_str().map(String::from))
        .collect();
    paths.sort();
    paths
}

async fn layers_merge_in_order_and_bad_settings_are_listed(p: &Platform) {
    let tenant = p.onboard().await;
    let key = tenant.api_key.secret;
    let put = |path: &'static str, body: Value| send(p, Method::PUT, path, ADMIN_KEY, Some(body));
    assert_eq!(
        put("/v1/admin/config", json!({"extraction": {"maxNodes": 100, "format": "json"}})).await.status,
        StatusCode::OK
    );
    let plan = put("/v1/admin/config/plans/professional", json!({"extraction": {"format": "markdown"}})).await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    let patched =
        send(p, Method::PATCH, "/v1/config", &key, Some(json!({"fetch": {"blockedDomains": ["ads.example"]}}))).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);

    let own = send(p, Method::GET, "/v1/config", &key, None).await;
    assert_eq!(own.status, StatusCode::OK);
    let config = &own.body["config"];
    assert_eq!(config["extraction"]["maxNodes"], 100, "the platform base");
    assert_eq!(config["extraction"]["format"], "markdown", "the plan's layer over the base");
    assert_eq!(config["extraction"]["onlyMainContent"], true, "the built-in default");
    assert_eq!(config["fetch"]["blockedDomains"], json!(["ads.example"]), "the tenant's own");
    assert_eq!(own.body["plan"], "professional");

    // A tenant's layer beats the plan's; `null` removes it again.
    send(p, Method::PATCH, "/v1/config", &key, Some(json!({"extraction": {"format": "text"}}))).await;
    assert_eq!(p.get_json(&key, "/v1/config").await["config"]["extraction"]["format"], "text");
    send(p, Method::PATCH, "/v1/config", &key, Some(json!({"extraction": {"format": null}}))).await;
    assert_eq!(p.get_json(&key, "/v1/config").await["config"]["extraction"]["format"], "markdown");

    let bad = send(
        p,
        Method::PATCH,
        "/v1/config",
        &key,
        Some(json!({"extraction": {"maxNodes": 0, "colour": "red"}, "fetch": {"blockedDomains": ["Not A Domain"]}, "theme": 1})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(
        paths(&bad),
        ["extraction.colour", "extraction.maxNodes", "fetch.blockedDomains[0]", "theme"],
        "every bad path: {}",
        bad.body
    );
    let bad_base = put("/v1/admin/config", json!({"limits": {"tenantBurst": "many"}})).await;
    assert_eq!(paths(&bad_base), ["limits.tenantBurst"]);
    let forbidden = send(p, Method::GET, "/v1/admin/config", &key, None).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    put("/v1/admin/config", json!({})).await;
    put("/v1/admin/config/plans/professional", json!({})).await;
}

/// `/v1/me` until one is refused; how many passed.
async fn passes_before_refusal(p: &Platform, key: &str) -> usize {
    let http = reqwest::Client::new();
    for n in 0..50 {
        let r = http.get(format!("{}/v1/me", p.url())).bearer_auth(key).send().await.expect("an answer");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            return n;
        }
    }
    50
}

async fn a_tenant_may_lower_its_limits_and_the_gateway_holds_them(p: &Platform) {
    let tenant = p.onboard_on(None).await;
    let (id, key) = (tenant.tenant.id.to_string(), tenant.api_key.secret);
    let raise = send(p, Method::PATCH, "/v1/config", &key, Some(json!({"limits": {"tenantRatePerSecond": 50}}))).await;
    assert_eq!(raise.status, StatusCode::FORBIDDEN, "{}", raise.body);
    assert_eq!(raise.body["code"], "exceeds_plan");
    assert_eq!(paths(&raise), ["limits.tenantRatePerSecond"]);

    let lower = json!({"limits": {"tenantRatePerSecond": 5, "tenantBurst": 3}});
    assert_eq!(send(p, Method::PATCH, "/v1/config", &key, Some(lower)).await.status, StatusCode::OK);
    // Once the calls above are paid back (5/s), requests are held to the new
    // burst of 3 (a token may refill meanwhile).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let passed = passes_before_refusal(p, &key).await;
    assert!((3..=4).contains(&passed), "{passed} passed with a burst of 3");

    // An admin may grant more than the plan.
    let granted =
        json!({"limits": {"tenantRatePerSecond": 1000, "tenantBurst": 40, "keyRatePerSecond": 1000, "keyBurst": 40}});
    let put = send(p, Method::PUT, &format!("/v1/admin/tenants/{id}/config"), ADMIN_KEY, Some(granted)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["effective"]["config"]["limits"]["tenantBurst"], 40);
    // The refused calls above are owed at the old rate first.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let passed = passes_before_refusal(p, &key).await;
    assert!(passed >= 39, "{passed} passed with a burst of 40");
}

async fn history_rollback_and_etags(p: &Platform) {
    let tenant = p.onboard().await;
    let (id, key) = (tenant.tenant.id.to_string(), tenant.api_key.secret);
    for n in [10, 20, 30] {
        let patch = json!({"extraction": {"maxNodes": n}});
        assert_eq!(send(p, Method::PATCH, "/v1/config", &key, Some(patch)).await.status, StatusCode::OK);
    }
    let history =
        send(p, Method::GET, &format!("/v1/admin/tenants/{id}/config/history?limit=2"), ADMIN_KEY, None).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let versions: Vec<i64> =
        history.body["data"].as_array().unwrap().iter().map(|e| e["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [3, 2], "newest first");
    assert_eq!(history.body["data"][0]["document"]["extraction"]["maxNodes"], 30);
    assert!(history.body["data"][0]["actor"].as_str().is_some_and(|a| a.starts_with("key_")), "{}", history.body);
    let cursor = history.body["nextCursor"].as_str().expect("a second page").to_owned();
    let older =
        send(p, Method::GET, &format!("/v1/admin/tenants/{id}/config/history?cursor={cursor}"), ADMIN_KEY, None).await;
    assert_eq!(older.body["data"][0]["version"], 1);

    let first = call(p.url(), Method::GET, "/v1/config", &key, None, None).await;
    let etag = first.etag.expect("an ETag");
    let again = call(p.url(), Method::GET, "/v1/config", &key, None, Some(&etag)).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    let rolled = send(
        p,
        Method::POST,
        &format!("/v1/admin/tenants/{id}/config/rollback"),
        ADMIN_KEY,
        Some(json!({"version": 1})),
    )
    .await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    assert_eq!(rolled.body["layer"]["version"], 4, "a rollback is a new version");
    assert_eq!(rolled.body["effective"]["config"]["extraction"]["maxNodes"], 10);
    let changed = call(p.url(), Method::GET, "/v1/config", &key, None, Some(&etag)).await;
    assert_eq!(changed.status, StatusCode::OK, "the ETag no longer matches");
    assert_eq!(changed.body["config"]["extraction"]["maxNodes"], 10);
    let missing = send(
        p,
        Method::POST,
        &format!("/v1/admin/tenants/{id}/config/rollback"),
        ADMIN_KEY,
        Some(json!({"version": 99})),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["code"], "version_not_found");
}

async fn fetch(p: &Platform, key: &str, options: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/content/fetch", p.url()))
        .bearer_auth(key)
        .json(&json!({ "url": site().url("/article"), "options": options }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the gateway answers")
}

async fn core_applies_extraction_defaults_and_blocks_domains_at_once(p: &Platform) {
    let key = p.onboard().await.api_key.secret;
    let before = fetch(p, &key, json!({})).await;
    assert_eq!(before.status(), StatusCode::OK);
    assert!(before.headers()["content-type"].to_str().unwrap().starts_with("application/x-ndjson"));

    let patch = json!({"extraction": {"format": "markdown"}});
    assert_eq!(send(p, Method::PATCH, "/v1/config", &key, Some(patch)).await.status, StatusCode::OK);
    let markdown = fetch(p, &key, json!({})).await;
    assert_eq!(markdown.status(), StatusCode::OK);
    assert!(
        markdown.headers()["content-type"].to_str().unwrap().starts_with("text/markdown"),
        "the tenant's default format"
    );
    let asked = fetch(p, &key, json!({"format": "json"})).await;
    assert!(
        asked.headers()["content-type"].to_str().unwrap().starts_with("application/json"),
        "a request's own option wins"
    );

    let block = json!({"fetch": {"blockedDomains": [crate::site::HOST]}});
    assert_eq!(send(p, Method::PATCH, "/v1/config", &key, Some(block)).await.status, StatusCode::OK);
    let refused = fetch(p, &key, json!({})).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "the very next fetch");
    assert_eq!(refused.headers()["x-anno-units"], "0", "a refusal costs nothing");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "domain_not_allowed");
    let crawl = send(p, Method::POST, "/v1/crawl", &key, Some(json!({"url": site().url("/article")}))).await;
    assert_eq!(crawl.status, StatusCode::FORBIDDEN, "nor may a crawl start there: {}", crawl.body);
    assert_eq!(crawl.body["code"], "domain_not_allowed");

    let allow_other = json!({"fetch": {"blockedDomains": null, "allowedDomains": ["docs.example"]}});
    assert_eq!(send(p, Method::PATCH, "/v1/config", &key, Some(allow_other)).await.status, StatusCode::OK);
    assert_eq!(fetch(p, &key, json!({})).await.status(), StatusCode::FORBIDDEN, "not on the allow list");
    let open = json!({"fetch": {"allowedDomains": null}});
    assert_eq!(send(p, Method::PATCH, "/v1/config", &key, Some(open)).await.status, StatusCode::OK);
    assert_eq!(fetch(p, &key, json!({})).await.status(), StatusCode::OK);
}

async fn flags_target_roll_out_and_speak_ofrep(p: &Platform) {
    let chosen = p.onboard_on(Some(anno_tenancy::Plan::Enterprise)).await;
    let other = p.onboard().await;
    let (chosen_id, chosen_key, other_key) =
        (chosen.tenant.id.to_string(), chosen.api_key.secret, other.api_key.secret);
    let flag = format!("new-extractor-{}", crate::harness::random_hex(4));
    let definition = json!({
        "type": "boolean", "enabled": true, "defaultValue": false,
        "rules": [{"tenants": [chosen_id], "value": true}],
        "rollout": {"percentage": 0, "value": true},
    });
    let put = send(p, Method::PUT, &format!("/v1/admin/flags/{flag}"), ADMIN_KEY, Some(definition)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let bad =
        send(p, Method::PUT, "/v1/admin/flags/Bad Key", ADMIN_KEY, Some(json!({"type": "boolean", "defaultValue": 3})))
            .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);

    let flags = p.get_json(&chosen_key, "/v1/flags").await;
    assert_eq!(flags["flags"][&flag]["value"], true, "{flags}");
    assert_eq!(flags["flags"][&flag]["reason"], "TARGETING_MATCH");
    let flags = p.get_json(&other_key, "/v1/flags").await;
    assert_eq!(flags["flags"][&flag]["value"], false);

    // OFREP: one flag, a missing one, and the bulk form with its ETag.
    let one = send(
        p,
        Method::POST,
        &format!("/ofrep/v1/evaluate/flags/{flag}"),
        &chosen_key,
        Some(json!({"context": {"targetingKey": "anything"}})),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(
        one.body,
        json!({"key": flag, "value": true, "reason": "TARGETING_MATCH", "variant": "rule-0", "metadata": {}})
    );
    let missing =
        send(p, Method::POST, "/ofrep/v1/evaluate/flags/no-such-flag", &chosen_key, Some(json!({"context": {}}))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["errorCode"], "FLAG_NOT_FOUND");
    let bulk =
        call(p.url(), Method::POST, "/ofrep/v1/evaluate/flags", &other_key, Some(json!({"context": {}})), None).await;
    assert_eq!(bulk.status, StatusCode::OK);
    let item = bulk.body["flags"].as_array().unwrap().iter().find(|f| f["key"] == flag.as_str()).cloned().unwrap();
    assert_eq!(item["value"], false);
    let etag = bulk.etag.expect("an ETag");
    let unchanged =
        call(p.url(), Method::POST, "/ofrep/v1/evaluate/flags", &other_key, Some(json!({"context": {}})), Some(&etag))
            .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);

    // Everyone in the rollout: the other tenant's value changes, the ETag too.
    let everyone = json!({"type": "boolean", "defaultValue": false, "rollout": {"percentage": 100, "value": true}});
    send(p, Method::PUT, &format!("/v1/admin/flags/{flag}"), ADMIN_KEY, Some(everyone)).await;
    let changed =
        call(p.url(), Method::POST, "/ofrep/v1/evaluate/flags", &other_key, Some(json!({"context": {}})), Some(&etag))
            .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(p.get_json(&other_key, "/v1/flags").await["flags"][&flag]["reason"], "SPLIT");
    assert_eq!(
        send(p, Method::DELETE, &format!("/v1/admin/flags/{flag}"), ADMIN_KEY, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(p.get_json(&other_key, "/v1/flags").await["flags"].get(&flag).is_none());
}

/// A change through one gateway replica is applied by the other within a
/// second, also after every replica's bus connection was cut and restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_changes_reach_other_replicas_within_a_second() {
    let Some(p) = Platform::distributed(2).await else { return };
    let key = p.onboard().await.api_key.secret;
    let second = p.gateway(1).to_owned();
    let http = reqwest::Client::new();
    // The tenant's burst as the second replica applies it, from the policy it announces.
    let policy = || async {
        let r = http.get(format!("{second}/v1/me")).bearer_auth(&key).send().await.expect("an answer");
        r.headers().get("ratelimit-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    assert!(policy().await.starts_with("\"tenant\";q="), "the second replica holds the tenant's configuration");
    for (round, burst) in [(0, 3), (1, 4)] {
        if round == 1 {
            // Cut every subscriber's connection: the bus reconnects and resynchronises.
            let client = redis::Client::open(anno_bus::testing::redis_url()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let _: redis::Value =
                redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut conn).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let changed = Instant::now();
        let patch = json!({"limits": {"tenantBurst": burst}});
        assert_eq!(send(&p, Method::PATCH, "/v1/config", &key, Some(patch)).await.status, StatusCode::OK);
        let expected = format!("\"tenant\";q={burst};");
        loop {
            if policy().await.starts_with(&expected) {
                break;
            }
            assert!(changed.elapsed() < Duration::from_secs(1), "round {round}: not applied within a second");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Core, a process of its own, also had the notices after the reconnection.
    let fetch = |base: String| {
        let key = key.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/v1/content/fetch"))
                .bearer_auth(&key)
                .json(&json!({ "url": site().url("/article"), "options": { "format": "json" } }))
                .send()
                .await
                .expect("an answer")
                .status()
        }
    };
    assert_eq!(fetch(second.clone()).await, StatusCode::OK);
    let changed = Instant::now();
    let block = json!({"fetch": {"blockedDomains": [crate::site::HOST]}});
    assert_eq!(send(&p, Method::PATCH, "/v1/config", &key, Some(block)).await.status, StatusCode::OK);
    loop {
        if fetch(second.clone()).await == StatusCode::FORBIDDEN {
            break;
        }
        assert!(changed.elapsed() < Duration::from_secs(1), "core did not apply the block within a second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.finish().await;
}
