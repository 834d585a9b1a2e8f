//! What only the distributed shape can show: several gateway replicas sharing
//! Redis, and services reachable on their own ports.

use crate::harness::{ADMIN_KEY, Platform};
use anno::ServiceName;
use anno_client::anno_api::auth::CreateKeyRequest;
use anno_tenancy::ScopeSet;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_by_every_gateway_within_a_second() {
    let Some(p) = Platform::distributed(2).await else { return };
    let t = p.onboard().await;
    let owner = p.client(&t.api_key.secret);
    let victim = owner
        .create_key(&CreateKeyRequest { name: "victim".into(), scopes: ScopeSet::all(), expires_at: None })
        .await
        .unwrap();
    let replicas: Vec<_> =
        p.gateways.iter().map(|url| anno_client::Client::new(url).with_credential(&victim.secret)).collect();
    // Both replicas have verified (and cached) the key.
    for replica in &replicas {
        replica.me().await.expect("the key works on every replica");
        replica.me().await.expect("and again, from the cache");
    }
    owner.revoke_key(victim.key.id.as_str()).await.unwrap();
    let revoked_at = Instant::now();
    for (i, replica) in replicas.iter().enumerate() {
        loop {
            match replica.me().await {
                Err(e) if e.status() == Some(StatusCode::UNAUTHORIZED) => break,
                Ok(_) => {}
                Err(e) => panic!("unexpected error from replica {i}: {e}"),
            }
            assert!(revoked_at.elapsed() < Duration::from_secs(1), "replica {i} still accepts the revoked key");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Suspension reaches every replica too.
    let update = anno_client::anno_api::tenant::UpdateTenantRequest {
        status: Some(anno_tenancy::TenantStatus::Suspended),
        ..Default::default()
    };
    let owners: Vec<_> =
        p.gateways.iter().map(|url| anno_client::Client::new(url).with_credential(&t.api_key.secret)).collect();
    for o in &owners {
        o.me().await.unwrap();
    }
    p.admin().update_tenant(&t.tenant.id, &update).await.unwrap();
    let suspended_at = Instant::now();
    for o in &owners {
        while o.me().await.is_ok() {
            assert!(suspended_at.elapsed() < Duration::from_secs(1), "a replica still serves a suspended tenant");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(o.me().await.unwrap_err().code(), Some("tenant_suspended"));
    }
    p.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_refuse_requests_without_an_internal_token() {
    let Some(p) = Platform::distributed(1).await else { return };
    let t = p.onboard().await;
    let http = reqwest::Client::new();
    let tenant_url = p.service_url(ServiceName::Tenant).unwrap();
    let auth_url = p.service_url(ServiceName::Auth).unwrap();
    let core_url = p.service_url(ServiceName::Core).unwrap();
    let config_url = p.service_url(ServiceName::Config).unwrap();
    let attempts = [
        // Plain tenant headers are not believed.
        http.get(format!("{tenant_url}/v1/admin/tenants")).header("x-tenant-id", t.tenant.id.as_str()),
        http.get(format!("{tenant_url}/internal/v1/tenants/{}", t.tenant.id))
            .header("x-tenant-id", t.tenant.id.as_str()),
        // Neither are the public credentials: only internal tokens count here.
        http.get(format!("{tenant_url}/v1/admin/tenants")).bearer_auth(ADMIN_KEY),
        http.get(format!("{auth_url}/v1/keys")).bearer_auth(&t.api_key.secret),
        http.get(format!("{auth_url}/v1/keys")).header("x-tenant-id", t.tenant.id.as_str()),
        http.post(format!("{core_url}/v1/content/fetch")).header("x-tenant-id", t.tenant.id.as_str()),
        http.get(format!("{config_url}/v1/config")).bearer_auth(&t.api_key.secret),
        // A token that is not one of auth's.
        http.get(format!("{auth_url}/v1/keys")).bearer_auth("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
    ];
    for attempt in attempts {
        let r = attempt.send().await.unwrap();
        let url = r.url().to_string();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{url}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized", "{url}");
    }
    // An internal token from auth for tenant A still gives nothing of tenant B's.
    let b = p.onboard().await;
    let verified: serde_json::Value = http
        .post(format!("{auth_url}/internal/v1/verify"))
        .json(&serde_json::json!({"credential": t.api_key.secret}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = verified["token"].as_str().unwrap();
    let r =
        http.get(format!("{tenant_url}/internal/v1/tenants/{}", b.tenant.id)).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http.get(format!("{tenant_url}/v1/admin/tenants")).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Every tenant's export setting is for the platform's own services only.
    let exports = format!("{config_url}/internal/v1/config/audit-exports");
    let r = http.get(&exports).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a tenant's token");
    // A service proves itself with the service secret, and nothing else does.
    let service_token = |credential: &str| {
        http.post(format!("{auth_url}/internal/v1/service-token"))
            .bearer_auth(credential)
            .json(&serde_json::json!({"service": "tenant"}))
            .send()
    };
    for wrong in [ADMIN_KEY, t.api_key.secret.as_str(), "test-service-secret-0123456789abcdefghijklmnoq"] {
        assert_eq!(service_token(wrong).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let issued: serde_json::Value = service_token(crate::harness::SERVICE_SECRET).await.unwrap().json().await.unwrap();
    let service = issued["token"].as_str().expect("a service token");
    let r = http.get(&exports).bearer_auth(service).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let listed: serde_json::Value = r.json().await.unwrap();
    assert!(listed["seq"].is_i64() && listed["exports"].is_array(), "{listed}");
    // It acts for no tenant, and the edge does not take it.
    let r = http.get(format!("{config_url}/internal/v1/config")).bearer_auth(service).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http.get(format!("{tenant_url}/v1/admin/tenants")).bearer_auth(service).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http.get(format!("{}/v1/me", p.url())).bearer_auth(service).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    p.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_reports_health_readiness_and_metrics() {
    let Some(p) = Platform::distributed(1).await else { return };
    let t = p.onboard().await;
    p.client(&t.api_key.secret).me().await.unwrap();
    let http = reqwest::Client::new();
    let mut urls: Vec<(String, String)> = p.services.iter().map(|(s, u)| (s.as_str().to_owned(), u.clone())).collect();
    urls.push(("gateway".into(), p.url().to_owned()));
    for (name, url) in &urls {
        for path in ["/health", "/ready"] {
            let r = http.get(format!("{url}{path}")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{name}{path}");
        }
        let metrics = http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("anno_http_requests_total"), "{name} has no request metrics");
    }
    let metrics = http.get(format!("{}/metrics", p.url())).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("anno_http_requests_total")
            && l.contains(r#"route="/v1/me""#)
            && l.contains(r#"service="gateway""#)
            && l.contains(r#"status="200""#)),
        "requests are labelled by matched route"
    );
    assert!(
        !metrics.contains(&t.api_key.secret) && !metrics.contains(t.tenant.id.as_str()),
        "no secrets or raw paths in metrics"
    );
    assert!(
        metrics.contains(r#"route="/internal/v1/tenants/{tenant_id}""#)
            || !metrics.contains("/internal/v1/tenants/ten_")
    );
    p.finish().await;
}

/// Units are charged by core together with their usage record, so a gateway
/// that dies loses none: the ledger equals the pages the clients received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_after_a_gateway_crash_equals_the_pages_delivered() {
    let Some(mut p) = Platform::distributed(2).await else { return };
    let key = p.onboard().await.api_key.secret;
    let fetch = |base: String, n: usize| {
        let key = key.clone();
        async move {
            let body = serde_json::json!({ "url": crate::site::site().url(&format!("/article?{n}")), "options": { "format": "json" } });
            let sent = reqwest::Client::new()
                .post(format!("{base}/v1/content/fetch"))
                .bearer_auth(key)
                .json(&body)
                .timeout(Duration::from_secs(20))
                .send()
                .await;
            match sent {
                Ok(r) if r.status() == StatusCode::OK => {
                    let units = r
                        .headers()
                        .get("x-anno-units")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0")
                        .parse::<u64>()
                        .unwrap_or(0);
                    // The page is delivered once its body is read in full.
                    if r.bytes().await.is_ok() { units } else { 0 }
                }
                _ => 0,
            }
        }
    };
    let (first, second) = (p.gateways[0].clone(), p.gateways[1].clone());
    let mut delivered = 0;
    for n in 0..6 {
        delivered += fetch(second.clone(), n).await;
    }
    p.crash_gateway(1).await;
    for n in 6..12 {
        // The dead replica answers nothing; the live one serves.
        assert_eq!(fetch(second.clone(), n).await, 0);
        delivered += fetch(first.clone(), n).await;
    }
    assert_eq!(delivered, 12);
    let deadline = Instant::now() + Duration::from_secs(15);
    let used = loop {
        let usage = p.get_json(&key, "/v1/usage").await;
        let month = usage["windows"].as_array().unwrap().iter().find(|w| w["window"] == "month").unwrap()["used"]
            .as_u64()
            .unwrap();
        if month == delivered || Instant::now() > deadline {
            break month;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(used, delivered);
    p.finish().await;
}

/// Three gateway replicas sharing Redis, offered ten times a tenant's rate for
/// ten seconds, admit what one limiter would: the burst plus the rate over the
/// time taken, within 1 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_sharing_redis_admit_the_tenants_rate_within_one_percent() {
    let Some(p) = Platform::distributed(3).await else { return };
    let created = p.onboard_on(Some(anno_tenancy::Plan::Enterprise)).await;
    let limits: anno_tenancy::LimitOverrides = serde_json::from_value(serde_json::json!({
        "tenantRatePerSecond": 40, "tenantBurst": 40, "keyRatePerSecond": 100000, "keyBurst": 100000,
    }))
    .unwrap();
    let update =
        anno_client::anno_api::tenant::UpdateTenantRequest { limits: Some(Some(limits)), ..Default::default() };
    p.admin().update_tenant(&created.tenant.id, &update).await.unwrap();
    let key = created.api_key.secret;
    // Each replica first learns the key, the tenant and its configuration, so
    // that no lane stalls on a cold cache while the window runs; then the
    // bucket refills to its burst.
    let http = reqwest::Client::new();
    for gateway in &p.gateways {
        let warm = http.get(format!("{gateway}/v1/me")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(warm.status(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let run_for = Duration::from_secs(10);
    let started = Instant::now();
    let mut lanes = tokio::task::JoinSet::new();
    for gateway in &p.gateways {
        for _ in 0..3 {
            let (url, key, http) = (format!("{gateway}/v1/me"), key.clone(), reqwest::Client::new());
            lanes.spawn(async move {
                // ~45 requests/s per lane, nine lanes: ten times the rate.
                let mut tick = tokio::time::interval(Duration::from_millis(22));
                let (mut admitted, mut sent) = (0u64, 0u64);
                let (mut first, mut last) = (None, Duration::ZERO);
                while started.elapsed() < run_for {
                    tick.tick().await;
                    // The window is when requests were sent: a slow last answer
                    // must not stretch it.
                    last = started.elapsed();
                    first.get_or_insert(last);
                    let status = http.get(&url).bearer_auth(&key).send().await.map(|r| r.status());
                    match status {
                        Ok(StatusCode::OK) => admitted += 1,
                        Ok(StatusCode::TOO_MANY_REQUESTS) => {}
                        other => panic!("unexpected answer: {other:?}"),
                    }
                    sent += 1;
                }
                (admitted, sent, first.unwrap_or_default(), last)
            });
        }
    }
    let results = lanes.join_all().await;
    let first = results.iter().map(|r| r.2).min().unwrap_or_default();
    let last = results.iter().map(|r| r.3).max().unwrap_or_default();
    let elapsed = (last - first).as_secs_f64();
    let (admitted, sent): (u64, u64) = results.iter().fold((0, 0), |(a, s), r| (a + r.0, s + r.1));
    let expected = 40.0 + 40.0 * elapsed;
    // Offered ten times the rate; a busy machine may send fewer, never near the limit.
    assert!(sent as f64 > 3.0 * expected, "offered {sent} for an allowance of {expected:.0}");
    let error = (admitted as f64 - expected).abs() / expected;
    assert!(error <= 0.01, "admitted {admitted}, expected {expected:.0} ({:.2} %)", error * 100.0);
    p.finish().await;
}
