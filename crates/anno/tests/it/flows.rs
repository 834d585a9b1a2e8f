//! The user-visible flows, each run in both shapes.

use crate::harness::{Platform, random_hex};
use crate::in_both_shapes;
use anno_client::anno_api::auth::{CreateKeyRequest, CreateUserRequest, KeyStatus};
use anno_client::anno_api::tenant::UpdateTenantRequest;
use anno_tenancy::{Plan, Role, Scope, ScopeSet, TenantStatus, now_ms, parse_rfc3339};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

in_both_shapes!(
    onboarding_gives_a_working_key,
    bad_credentials_all_get_the_same_401,
    keys_are_created_listed_rotated_and_revoked,
    tenants_cannot_reach_each_others_keys,
    client_sent_internal_headers_change_nothing,
    suspended_tenants_are_refused_until_reactivated,
    expired_trials_are_refused,
    plan_changes_take_effect_at_once,
    deleted_tenants_are_refused_and_scheduled_for_purge,
    users_log_in_with_their_roles_scopes,
    malformed_input_gets_problem_details,
    admin_lists_tenants_by_cursor,
    garbage_never_causes_a_server_error,
);

fn code(e: &anno_client::Error) -> (Option<StatusCode>, Option<&str>) {
    (e.status(), e.code())
}

async fn onboarding_gives_a_working_key(p: &Platform) {
    let created = p.onboard_on(None).await;
    let t = &created.tenant;
    assert!(t.id.as_str().starts_with("ten_"));
    assert_eq!((t.plan, t.status), (Plan::Trial, TenantStatus::Trial));
    let ends = parse_rfc3339(t.trial_ends_at.as_deref().expect("a trial end")).expect("RFC 3339");
    let fourteen_days = 14 * 24 * 3600 * 1000;
    assert!((ends - now_ms() - fourteen_days).abs() < 60_000, "trial ends 14 days ahead");
    assert_eq!(t.limits.units_per_month, Some(1_000));
    assert_eq!(t.limits.concurrent_requests, 2);
    assert_eq!(t.features, ["basic_extraction", "api_access"]);

    let key = &created.api_key;
    assert!(key.secret.starts_with("anno_live_") && key.secret.len() == "anno_live_".len() + 43);
    assert!(key.secret.starts_with(&key.key.prefix));
    assert_eq!(key.key.scopes, ScopeSet::all());

    assert!(
        p.tenant_db().await.tenant_storage_exists(&t.id).await.unwrap(),
        "onboarding made the tenant's own storage"
    );

    let me = p.client(&key.secret).me().await.expect("the new key works");
    assert_eq!(me.tenant.id, t.id);
    assert_eq!(me.tenant.limits, t.limits);
    assert_eq!(me.key.as_ref().map(|k| k.id.as_str()), Some(key.key.id.as_str()));

    // X-API-Key works like a bearer token.
    let r =
        reqwest::Client::new().get(format!("{}/v1/me", p.url())).header("x-api-key", &key.secret).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The secret is shown once: nothing else returns it.
    let admin_view = reqwest::Client::new()
        .get(format!("{}/v1/admin/tenants/{}", p.url(), t.id))
        .bearer_auth(crate::harness::ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let listing = reqwest::Client::new()
        .get(format!("{}/v1/keys", p.url()))
        .bearer_auth(&key.secret)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for body in [&admin_view, &listing] {
        assert!(!body.contains(&key.secret[10..]), "the secret leaked: {body}");
    }
    assert!(listing.contains(&key.key.prefix));
}

async fn bad_credentials_all_get_the_same_401(p: &Platform) {
    let created = p.onboard().await;
    let owner = p.client(&created.api_key.secret);
    let revoked = owner
        .create_key(&CreateKeyRequest { name: "old".into(), scopes: ScopeSet::all(), expires_at: None })
        .await
        .unwrap();
    owner.revoke_key(revoked.key.id.as_str()).await.unwrap();
    let soon = anno_tenancy::rfc3339(now_ms() + 1_500);
    let expiring = owner
        .create_key(&CreateKeyRequest { name: "brief".into(), scopes: ScopeSet::all(), expires_at: Some(soon) })
        .await
        .unwrap();
    assert!(p.client(&expiring.secret).me().await.is_ok(), "works until it expires");
    tokio::time::sleep(Duration::from_millis(1_600)).await;

    let unknown = format!("anno_live_{}", "A".repeat(43));
    let mut bodies = Vec::new();
    for credential in [unknown.as_str(), "nonsense", &revoked.secret, &expiring.secret, "a.b.c"] {
        let r = reqwest::Client::new().get(format!("{}/v1/me", p.url())).bearer_auth(credential).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{credential}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let mut body: Value = r.json().await.unwrap();
        assert!(body["requestId"].as_str().is_some_and(|id| !id.is_empty()));
        body.as_object_mut().unwrap().remove("requestId");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "401 bodies differ: {bodies:?}");
    assert_eq!(bodies[0]["code"], "unauthorized");
    let r = reqwest::Client::new().get(format!("{}/v1/me", p.url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no credential at all");
}

async fn keys_are_created_listed_rotated_and_revoked(p: &Platform) {
    let created = p.onboard().await;
    let owner = p.client(&created.api_key.secret);

    let fetch_only: ScopeSet = [Scope::ContentFetch].into_iter().collect();
    let narrow = owner
        .create_key(&CreateKeyRequest { name: "fetcher".into(), scopes: fetch_only, expires_at: None })
        .await
        .unwrap();
    assert_eq!(narrow.key.scopes, fetch_only);
    let narrow_client = p.client(&narrow.secret);
    assert!(narrow_client.me().await.is_ok());
    let denied = narrow_client.list_keys(None).await.unwrap_err();
    assert_eq!(code(&denied), (Some(StatusCode::FORBIDDEN), Some("insufficient_scope")));
    // A key cannot mint a key with scopes it does not hold.
    let escalate = narrow_client
        .create_key(&CreateKeyRequest { name: "more".into(), scopes: ScopeSet::all(), expires_at: None })
        .await
        .unwrap_err();
    assert_eq!(code(&escalate).0, Some(StatusCode::FORBIDDEN));
    let keys_rw: ScopeSet = [Scope::KeysRead, Scope::KeysWrite].into_iter().collect();
    let manager = owner
        .create_key(&CreateKeyRequest { name: "manager".into(), scopes: keys_rw, expires_at: None })
        .await
        .unwrap();
    let escalate = p
        .client(&manager.secret)
        .create_key(&CreateKeyRequest { name: "fetch".into(), scopes: fetch_only, expires_at: None })
        .await
        .unwrap_err();
    assert_eq!(code(&escalate), (Some(StatusCode::FORBIDDEN), Some("insufficient_scope")));

    let listed = owner.list_keys(None).await.unwrap();
    assert_eq!(listed.data.len(), 3);
    assert!(listed.data.iter().all(|k| k.status == KeyStatus::Active));

    // Rotation with a grace period: both keys work until it ends.
    let rotated = owner.rotate_key(narrow.key.id.as_str(), 2).await.unwrap();
    assert_ne!(rotated.secret, narrow.secret);
    assert_eq!(rotated.key.scopes, fetch_only);
    assert!(p.client(&rotated.secret).me().await.is_ok());
    assert!(p.client(&narrow.secret).me().await.is_ok(), "the old key works during the grace period");
    let old = owner.get_key(narrow.key.id.as_str()).await.unwrap();
    assert!(old.expires_at.is_some());
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let refused = p.client(&narrow.secret).me().await.unwrap_err();
    assert_eq!(code(&refused).0, Some(StatusCode::UNAUTHORIZED));
    assert_eq!(owner.get_key(narrow.key.id.as_str()).await.unwrap().status, KeyStatus::Expired);

    // Revocation is immediate.
    owner.revoke_key(rotated.key.id.as_str()).await.unwrap();
    assert_eq!(code(&p.client(&rotated.secret).me().await.unwrap_err()).0, Some(StatusCode::UNAUTHORIZED));
    assert_eq!(owner.get_key(rotated.key.id.as_str()).await.unwrap().status, KeyStatus::Revoked);
    let again = owner.rotate_key(rotated.key.id.as_str(), 0).await.unwrap_err();
    assert_eq!(code(&again), (Some(StatusCode::CONFLICT), Some("key_inactive")));

    // lastUsedAt is recorded, without a write per request.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let me = owner.get_key(created.api_key.key.id.as_str()).await.unwrap();
    assert!(me.last_used_at.is_some(), "lastUsedAt was not recorded");
}

async fn tenants_cannot_reach_each_others_keys(p: &Platform) {
    let a = p.onboard().await;
    let b = p.onboard().await;
    let (ca, cb) = (p.client(&a.api_key.secret), p.client(&b.api_key.secret));
    let b_key = b.api_key.key.id.as_str();
    let not_found = |e: anno_client::Error| assert_eq!(code(&e), (Some(StatusCode::NOT_FOUND), Some("not_found")));
    not_found(ca.get_key(b_key).await.unwrap_err());
    not_found(ca.rotate_key(b_key, 0).await.unwrap_err());
    not_found(ca.revoke_key(b_key).await.unwrap_err());
    let listed = ca.list_keys(None).await.unwrap();
    assert_eq!(listed.data.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), [a.api_key.key.id.as_str()]);
    // B's key is untouched by A's attempts.
    assert!(cb.me().await.is_ok());
    assert_eq!(cb.get_key(b_key).await.unwrap().status, KeyStatus::Active);
    // Tenant keys are not admin keys.
    let e = ca.list_tenants(None).await.unwrap_err();
    assert_eq!(code(&e), (Some(StatusCode::FORBIDDEN), Some("insufficient_scope")));
}

async fn client_sent_internal_headers_change_nothing(p: &Platform) {
    let a = p.onboard().await;
    let b = p.onboard().await;
    let http = reqwest::Client::new();
    let me: Value = http
        .get(format!("{}/v1/me", p.url()))
        .bearer_auth(&a.api_key.secret)
        .header("x-tenant-id", b.tenant.id.as_str())
        .header("x-anno-tenant", b.tenant.id.as_str())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["tenant"]["id"], a.tenant.id.as_str());
    let keys: Value = http
        .get(format!("{}/v1/keys", p.url()))
        .bearer_auth(&a.api_key.secret)
        .header("x-tenant-id", b.tenant.id.as_str())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = keys["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [a.api_key.key.id.as_str()]);
    // A request id is echoed when well-formed, made when not.
    let r = http
        .get(format!("{}/v1/me", p.url()))
        .bearer_auth(&a.api_key.secret)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    let r = http
        .get(format!("{}/v1/me", p.url()))
        .bearer_auth(&a.api_key.secret)
        .header("x-request-id", "bad id!")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id!");
}

async fn suspended_tenants_are_refused_until_reactivated(p: &Platform) {
    let t = p.onboard_on(None).await;
    let tenant = p.client(&t.api_key.secret);
    assert!(tenant.me().await.is_ok());
    let update = UpdateTenantRequest { status: Some(TenantStatus::Suspended), ..Default::default() };
    assert_eq!(p.admin().update_tenant(&t.tenant.id, &update).await.unwrap().status, TenantStatus::Suspended);
    let e = tenant.me().await.unwrap_err();
    assert_eq!(code(&e), (Some(StatusCode::FORBIDDEN), Some("tenant_suspended")));
    let e = tenant.list_keys(None).await.unwrap_err();
    assert_eq!(code(&e).1, Some("tenant_suspended"));
    let update = UpdateTenantRequest { status: Some(TenantStatus::Active), ..Default::default() };
    // A trial tenant lifted from suspension is back on its trial.
    assert_eq!(p.admin().update_tenant(&t.tenant.id, &update).await.unwrap().status, TenantStatus::Trial);
    assert!(tenant.me().await.is_ok());
}

async fn expired_trials_are_refused(p: &Platform) {
    // On use: an admin moves the trial end into the past.
    let t = p.onboard_on(None).await;
    let tenant = p.client(&t.api_key.secret);
    assert!(tenant.me().await.is_ok());
    let past = anno_tenancy::rfc3339(now_ms() - 1_000);
    let update = UpdateTenantRequest { trial_ends_at: Some(past), ..Default::default() };
    assert_eq!(p.admin().update_tenant(&t.tenant.id, &update).await.unwrap().status, TenantStatus::Expired);
    let e = tenant.me().await.unwrap_err();
    assert_eq!(code(&e), (Some(StatusCode::PAYMENT_REQUIRED), Some("trial_expired")));
    // Choosing a plan brings it back.
    let upgrade = UpdateTenantRequest { plan: Some(Plan::Starter), ..Default::default() };
    let upgraded = p.admin().update_tenant(&t.tenant.id, &upgrade).await.unwrap();
    assert_eq!((upgraded.status, upgraded.trial_ends_at), (TenantStatus::Active, None));
    assert!(tenant.me().await.is_ok());

    // By the periodic task: a trial that runs out while nobody looks.
    let t2 = p.onboard_on(None).await;
    let soon = anno_tenancy::rfc3339(now_ms() + 500);
    p.admin()
        .update_tenant(&t2.tenant.id, &UpdateTenantRequest { trial_ends_at: Some(soon), ..Default::default() })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        // Listing by status reads stored rows: only the sweep can have changed this one.
        let r: Value = reqwest::Client::new()
            .get(format!("{}/v1/admin/tenants?status=expired&limit=200", p.url()))
            .bearer_auth(crate::harness::ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["data"].as_array().unwrap().iter().any(|t| t["id"] == t2.tenant.id.as_str()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the sweep did not expire the trial");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let e = p.client(&t2.api_key.secret).me().await.unwrap_err();
    assert_eq!(code(&e).1, Some("trial_expired"));
}

async fn plan_changes_take_effect_at_once(p: &Platform) {
    let t = p.onboard_on(None).await;
    let tenant = p.client(&t.api_key.secret);
    assert_eq!(tenant.me().await.unwrap().tenant.plan, Plan::Trial);
    let update = UpdateTenantRequest { plan: Some(Plan::Professional), ..Default::default() };
    p.admin().update_tenant(&t.tenant.id, &update).await.unwrap();
    let me = tenant.me().await.unwrap();
    assert_eq!((me.tenant.plan, me.tenant.status), (Plan::Professional, TenantStatus::Active));
    assert_eq!(me.tenant.limits.units_per_month, Some(100_000));
    assert!(me.tenant.features.iter().any(|f| f == "advanced_extraction"));

    // Custom limits are for enterprise tenants only.
    let custom: anno_tenancy::LimitOverrides = serde_json::from_value(json!({"concurrentRequests": 500})).unwrap();
    let e = p
        .admin()
        .update_tenant(&t.tenant.id, &UpdateTenantRequest { limits: Some(Some(custom.clone())), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("invalid_input")));
    let enterprise =
        UpdateTenantRequest { plan: Some(Plan::Enterprise), limits: Some(Some(custom)), ..Default::default() };
    let updated = p.admin().update_tenant(&t.tenant.id, &enterprise).await.unwrap();
    assert_eq!(updated.limits.concurrent_requests, 500);
    assert_eq!(updated.limits.units_per_month, None);
    assert_eq!(tenant.me().await.unwrap().tenant.limits.concurrent_requests, 500);
    // Downgrade: limits and features follow, custom limits go.
    let down = UpdateTenantRequest { plan: Some(Plan::Starter), ..Default::default() };
    let downgraded = p.admin().update_tenant(&t.tenant.id, &down).await.unwrap();
    assert_eq!(downgraded.limits.concurrent_requests, 5);
    assert!(!downgraded.features.iter().any(|f| f == "advanced_extraction"));
    assert_eq!(tenant.me().await.unwrap().tenant.plan, Plan::Starter);
}

async fn deleted_tenants_are_refused_and_scheduled_for_purge(p: &Platform) {
    let t = p.onboard_on(None).await;
    let tenant = p.client(&t.api_key.secret);
    assert!(tenant.me().await.is_ok());
    let deleted = p.admin().delete_tenant(&t.tenant.id).await.unwrap();
    assert_eq!(deleted.status, TenantStatus::Deleted);
    let purge = parse_rfc3339(deleted.purge_after.as_deref().unwrap()).unwrap();
    let deleted_at = parse_rfc3339(deleted.deleted_at.as_deref().unwrap()).unwrap();
    assert_eq!(purge - deleted_at, 7 * 24 * 3600 * 1000, "trial retention is 7 days");
    assert_eq!(code(&tenant.me().await.unwrap_err()), (Some(StatusCode::UNAUTHORIZED), Some("unauthorized")));
    let e = p
        .admin()
        .update_tenant(&t.tenant.id, &UpdateTenantRequest { status: Some(TenantStatus::Active), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(code(&e).1, Some("tenant_deleted"));
    // After the retention period the tenant's data is purged by the periodic task.
    let db = p.tenant_db().await;
    assert!(db.tenant_storage_exists(&t.tenant.id).await.unwrap(), "kept during retention");
    anno_store::sqlx::query("UPDATE tenants SET purge_after = $1 WHERE id = $2")
        .bind(now_ms() - 1)
        .bind(t.tenant.id.as_str())
        .execute(db.pool())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.tenant_storage_exists(&t.tenant.id).await.unwrap() {
        assert!(std::time::Instant::now() < deadline, "the tenant's data was not purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(p.admin().get_tenant(&t.tenant.id).await.unwrap().status, TenantStatus::Deleted, "the record stays");
    // The domain is free for a new tenant.
    let again = anno_client::anno_api::tenant::CreateTenantRequest {
        name: "Again".into(),
        domain: t.tenant.domain.clone(),
        contact_email: t.tenant.contact_email.clone(),
        plan: Some(Plan::Starter),
    };
    let second = p.admin().create_tenant(&again).await.unwrap();
    assert_eq!(second.tenant.status, TenantStatus::Active);
}

async fn users_log_in_with_their_roles_scopes(p: &Platform) {
    let t = p.onboard().await;
    let password = format!("correct horse {}", random_hex(4));
    let owner = CreateUserRequest {
        email: "Owner@Example.com".into(),
        name: Some("Olga".into()),
        role: Role::Owner,
        password: password.clone(),
    };
    let user = p.admin().admin_create_user(&t.tenant.id, &owner).await.unwrap();
    assert_eq!((user.email.as_str(), user.role), ("owner@example.com", Role::Owner));

    let login = p.anonymous().login(&t.tenant.id, "owner@example.com", &password).await.unwrap();
    let as_owner = p.client(&login.access_token);
    let me = as_owner.me().await.unwrap();
    assert_eq!(me.tenant.id, t.tenant.id);
    assert_eq!(me.user.as_ref().map(|u| u.scopes), Some(ScopeSet::all()));

    let viewer_password = format!("viewer pass {}", random_hex(4));
    let viewer = CreateUserRequest {
        email: "viewer@example.com".into(),
        name: None,
        role: Role::Viewer,
        password: viewer_password.clone(),
    };
    as_owner.create_user(&viewer).await.unwrap();
    let viewer_token =
        p.anonymous().login(&t.tenant.id, "viewer@example.com", &viewer_password).await.unwrap().access_token;
    let as_viewer = p.client(&viewer_token);
    assert!(as_viewer.list_keys(None).await.is_ok());
    let e = as_viewer
        .create_key(&CreateKeyRequest {
            name: "x".into(),
            scopes: [Scope::KeysRead].into_iter().collect(),
            expires_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(StatusCode::FORBIDDEN), Some("insufficient_scope")));

    let wrong = p.anonymous().login(&t.tenant.id, "owner@example.com", "not the password").await.unwrap_err();
    let unknown = p.anonymous().login(&t.tenant.id, "nobody@example.com", &password).await.unwrap_err();
    assert_eq!(code(&wrong), (Some(StatusCode::UNAUTHORIZED), Some("unauthorized")));
    assert_eq!(code(&unknown), code(&wrong));
    let short =
        CreateUserRequest { email: "x@example.com".into(), name: None, role: Role::Viewer, password: "short".into() };
    let e = as_owner.create_user(&short).await.unwrap_err();
    assert_eq!(code(&e), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("invalid_input")));
    let dup = as_owner.create_user(&viewer).await.unwrap_err();
    assert_eq!(code(&dup), (Some(StatusCode::CONFLICT), Some("user_exists")));
}

async fn malformed_input_gets_problem_details(p: &Platform) {
    let http = reqwest::Client::new();
    let admin = crate::harness::ADMIN_KEY;
    let post = |body: &'static str| {
        http.post(format!("{}/v1/admin/tenants", p.url()))
            .bearer_auth(admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let problem = |r: reqwest::Response| async move {
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let status = r.status();
        (status, r.json::<Value>().await.unwrap())
    };
    let (status, body) = problem(post("{not json").await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_json")));
    let (status, body) = problem(post(r#"{"name": "X", "domain": "x.example.com"}"#).await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")));
    assert!(body["detail"].as_str().unwrap().contains("contactEmail"), "{body}");
    let (status, body) =
        problem(post(r#"{"name": "X", "domain": "not a domain", "contactEmail": "nope"}"#).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let paths: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["domain", "contactEmail"]);
    let (status, body) = problem(
        post(r#"{"name": "X", "domain": "x.example.com", "contactEmail": "a@x.example.com", "plan": "platinum"}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["path"], "plan");
    let (status, body) = problem(
        post(r#"{"name": "X", "domain": "x.example.com", "contactEmail": "a@x.example.com", "extra": 1}"#)
            .await
            .unwrap(),
    )
    .await;
    // A field the API does not have is refused, not dropped.
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("unknown_field")));
    assert_eq!(body["errors"][0]["path"], "extra");

    let t = p.onboard().await;
    let dup = anno_client::anno_api::tenant::CreateTenantRequest {
        name: "Dup".into(),
        domain: t.tenant.domain.to_uppercase(),
        contact_email: "x@example.com".into(),
        plan: None,
    };
    let e = p.admin().create_tenant(&dup).await.unwrap_err();
    assert_eq!(code(&e), (Some(StatusCode::CONFLICT), Some("tenant_exists")));
    // Unknown routes, unknown ids, wrong methods: problems too, never a 500.
    for (method, path, expected) in [
        (reqwest::Method::GET, "/v1/nothing-here".to_owned(), StatusCode::NOT_FOUND),
        (reqwest::Method::GET, "/v1/admin/tenants/ten_00000000000000000000000000".to_owned(), StatusCode::NOT_FOUND),
        (reqwest::Method::GET, "/v1/admin/tenants/not-an-id".to_owned(), StatusCode::NOT_FOUND),
        (reqwest::Method::PUT, format!("/v1/admin/tenants/{}", t.tenant.id), StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let (status, body) =
            problem(http.request(method, format!("{}{path}", p.url())).bearer_auth(admin).send().await.unwrap()).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    let r = http.get(format!("{}/v1/keys?limit=lots", p.url())).bearer_auth(&t.api_key.secret).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An oversized body is refused, whoever sends it.
    let huge = vec![b' '; 17 * 1024 * 1024];
    let r = http.post(format!("{}/v1/keys", p.url())).bearer_auth(&t.api_key.secret).body(huge).send().await.unwrap();
    let (status, body) = problem(r).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
}

async fn admin_lists_tenants_by_cursor(p: &Platform) {
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(p.onboard().await.tenant.id);
    }
    let http = reqwest::Client::new();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/v1/admin/tenants?limit=2", p.url());
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value =
            http.get(url).bearer_auth(crate::harness::ADMIN_KEY).send().await.unwrap().json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "pages are in id order without repeats");
    for id in ids {
        assert!(seen.contains(&id.to_string()));
    }
}

async fn garbage_never_causes_a_server_error(p: &Platform) {
    let t = p.onboard().await;
    let id = t.tenant.id.to_string();
    // Rotation is the target of garbage too (an empty body is a valid rotation),
    // so it gets a key of its own.
    let spare = CreateKeyRequest { name: "spare".into(), scopes: ScopeSet::all(), expires_at: None };
    let key = p.client(&t.api_key.secret).create_key(&spare).await.unwrap().key.id.to_string();
    let routes = [
        ("POST", "/v1/admin/tenants".to_owned()),
        ("PATCH", format!("/v1/admin/tenants/{id}")),
        ("POST", format!("/v1/admin/tenants/{id}/users")),
        ("PUT", "/v1/admin/plans/starter".to_owned()),
        ("POST", "/v1/keys".to_owned()),
        ("POST", format!("/v1/keys/{key}/rotate")),
        ("POST", "/v1/users".to_owned()),
        ("POST", "/v1/auth/login".to_owned()),
        ("GET", "/v1/keys?cursor=%00%ff&limit=-1".to_owned()),
        ("GET", "/v1/admin/tenants?status=sideways".to_owned()),
        ("DELETE", "/v1/keys/..%2f..%2fadmin".to_owned()),
        ("GET", "/v1/admin/tenants/ten_%F0%9F%92%A9".to_owned()),
    ];
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"text\"".to_vec(),
        b"{\"name\": null, \"scopes\": \"all\"}".to_vec(),
        br#"{"name": "x", "scopes": ["content:fetch"], "expiresAt": "1999-99-99"}"#.to_vec(),
        br#"{"plan": 7, "status": {"a": 1}, "limits": [1]}"#.to_vec(),
        br#"{"gracePeriodSeconds": -5}"#.to_vec(),
        br#"{"gracePeriodSeconds": 18446744073709551615}"#.to_vec(),
        br#"{"tenantId": "ten_x", "email": [], "password": 1}"#.to_vec(),
        br#"{"limits": {"tenantRatePerSecond": 99999999999}, "features": [""]}"#.to_vec(),
        format!(r#"{{"name": "{}", "domain": "a.b", "contactEmail": "a@b.c"}}"#, "x".repeat(100_000)).into_bytes(),
        (0..2048u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect(),
    ];
    let http = reqwest::Client::new();
    for credential in [crate::harness::ADMIN_KEY, t.api_key.secret.as_str()] {
        for (method, path) in &routes {
            for body in &bodies {
                for content_type in ["application/json", "text/plain"] {
                    let r = http
                        .request(method.parse().unwrap(), format!("{}{path}", p.url()))
                        .bearer_auth(credential)
                        .header("content-type", content_type)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    assert!(
                        status.as_u16() < 500,
                        "{method} {path} answered {status}: {}",
                        r.text().await.unwrap_or_default()
                    );
                }
            }
        }
    }
    // The tenant is still intact after all that.
    assert!(p.client(&t.api_key.secret).me().await.is_ok());
}
