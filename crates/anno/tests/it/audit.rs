//! The audit trail through the public API, in both shapes: calls become events
//! a tenant (and only that tenant) can read, admins see every chain, `anno
//! audit verify` finds an edited event, and exports reach a signed webhook and
//! a JSON Lines file.

use crate::harness::{Platform, random_hex};
use crate::in_both_shapes;
use anno_audit::BodyTally;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

in_both_shapes!(
    calls_through_the_gateway_are_audited_per_tenant,
    audit_verify_passes_then_fails_after_an_edit,
    exports_reach_a_signed_webhook_and_a_json_lines_file,
);

/// A webhook receiver on loopback, on its own thread and runtime so it outlives
/// any one test's runtime. Hooks named `flaky-…` answer 503 the first time.
pub struct Receiver {
    pub port: u16,
    hits: Arc<Mutex<HashMap<String, Vec<Hit>>>>,
}

#[derive(Clone, Debug)]
pub struct Hit {
    pub signature: Option<String>,
    pub body: Bytes,
    pub answered: StatusCode,
}

impl Receiver {
    pub fn url(&self, name: &str) -> String {
        format!("http://localhost:{}/hooks/{name}", self.port)
    }

    /// `host:port`, for `fetch.allowed_private_hosts`.
    pub fn allowed(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub fn hits(&self, name: &str) -> Vec<Hit> {
        self.hits.lock().map(|h| h.get(name).cloned().unwrap_or_default()).unwrap_or_default()
    }
}

type Hits = Arc<Mutex<HashMap<String, Vec<Hit>>>>;

async fn hook(State(hits): State<Hits>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut hits = hits.lock().expect("the receiver's lock");
    let seen = hits.entry(name.clone()).or_default();
    let answered =
        if name.starts_with("flaky-") && seen.is_empty() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let signature = headers.get("anno-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.push(Hit { signature, body, answered });
    answered
}

pub fn receiver() -> &'static Receiver {
    static RECEIVER: OnceLock<Receiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let hits: Hits = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let port = listener.local_addr().expect("its address").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let app = Router::new().route("/hooks/{name}", post(hook)).with_state(Arc::clone(&hits));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                axum::serve(listener, app).await.expect("the webhook receiver runs");
            });
        });
        Receiver { port, hits }
    })
}

fn digest(bytes: &[u8]) -> String {
    let mut tally = BodyTally::default();
    tally.update(bytes);
    tally.complete();
    tally.digest().unwrap_or_default()
}

/// Polls until `found` picks something out, for up to 20 seconds.
async fn eventually<T, F, Fut>(what: &str, mut found: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = found().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every page of a list, with the raw text of each page.
async fn all_pages(p: &Platform, credential: &str, path: &str) -> (Vec<Value>, String) {
    let http = reqwest::Client::new();
    let (mut records, mut text, mut cursor) = (Vec::new(), String::new(), None::<String>);
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{}{path}{separator}limit=200&cursor={c}", p.url()),
            None => format!("{}{path}{separator}limit=200", p.url()),
        };
        let response = http.get(url).bearer_auth(credential).send().await.expect("list audit events");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let page_text = response.text().await.expect("the page");
        let page: Value = serde_json::from_str(&page_text).expect("a JSON page");
        records.extend(page["data"].as_array().cloned().unwrap_or_default());
        text.push_str(&page_text);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (records, text),
        }
    }
}

/// The stored record of the call made with `request_id`, once it is there.
async fn record_of(p: &Platform, credential: &str, path: &str, request_id: &str) -> Value {
    eventually(&format!("the audit event of {request_id}"), || async move {
        let (records, _) = all_pages(p, credential, path).await;
        records.into_iter().find(|r| r["event"]["requestId"] == request_id)
    })
    .await
}

async fn calls_through_the_gateway_are_audited_per_tenant(p: &Platform) {
    let (a, b) = (p.onboard().await, p.onboard().await);
    let secret = &a.api_key.secret;
    let http = reqwest::Client::new();

    // A creates a key: a body goes in, a secret comes out.
    let body = json!({ "name": "ci", "scopes": ["content:fetch"] }).to_string();
    let request_id = format!("req-audit-{}", random_hex(6));
    let response = http
        .post(format!("{}/v1/keys", p.url()))
        .bearer_auth(secret)
        .header("content-type", "application/json")
        .header("user-agent", "audit-test/1")
        .header("x-request-id", &request_id)
        // The platform trusts loopback as a proxy in the tests: the client is
        // the rightmost address it forwarded.
        .header("x-forwarded-for", "198.51.100.7, 203.0.113.9")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let answered = response.bytes().await.unwrap();
    let created: Value = serde_json::from_slice(&answered).unwrap();
    let new_secret = created["key"].as_str().expect("the new key's secret").to_owned();

    let record = record_of(p, secret, "/v1/audit", &request_id).await;
    let event = &record["event"];
    assert!(event["id"].as_str().is_some_and(|id| id.starts_with("evt_")), "{event}");
    assert_eq!(event["tenantId"], a.tenant.id.as_str());
    assert_eq!(event["actor"], json!({ "kind": "key", "id": a.api_key.key.id }));
    assert_eq!(
        (&event["method"], &event["route"], &event["path"]),
        (&json!("POST"), &json!("/v1/keys"), &json!("/v1/keys"))
    );
    assert_eq!(event["status"], 201);
    assert_eq!(event["requestDigest"], digest(body.as_bytes()));
    assert_eq!(event["requestBytes"], body.len());
    assert_eq!(event["responseDigest"], digest(&answered), "the digest of exactly what the client received");
    assert_eq!(event["responseBytes"], answered.len());
    assert_eq!(event["userAgent"], "audit-test/1");
    assert_eq!(event["clientIp"], "203.0.113.9");
    assert!(event["latencyMs"].is_u64() && event["time"].is_string());
    assert!(record["seq"].as_i64().is_some_and(|s| s >= 1));
    for field in ["hash", "prevHash"] {
        assert!(record[field].as_str().is_some_and(|h| h.len() == 64), "{field}: {record}");
    }

    // No secret anywhere in what the trail shows.
    let (records, text) = all_pages(p, secret, "/v1/audit").await;
    for leaked in [secret.as_str(), new_secret.as_str(), "Bearer", "anno_live_"] {
        assert!(!text.contains(leaked), "`{leaked}` appears in the audit trail");
    }
    assert!(records.iter().all(|r| r["event"]["tenantId"] == a.tenant.id.as_str()));

    // Pages follow each other by cursor, oldest first.
    let first: Value = http
        .get(format!("{}/v1/audit?limit=1", p.url()))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = first["nextCursor"].as_str().expect("more than one event");
    let second: Value = http
        .get(format!("{}/v1/audit?limit=1&cursor={cursor}", p.url()))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (one, two) = (first["data"][0]["seq"].as_i64().unwrap(), second["data"][0]["seq"].as_i64().unwrap());
    assert_eq!((one, two), (1, 2));
    for query in ["since=yesterday", "cursor=evt_not_ours"] {
        let r = http.get(format!("{}/v1/audit?{query}", p.url())).bearer_auth(secret).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "invalid_query", "{query}: {problem}");
    }

    // Another tenant sees none of it.
    let (theirs, _) = all_pages(p, &b.api_key.secret, "/v1/audit").await;
    assert!(theirs.iter().all(|r| r["event"]["tenantId"] == b.tenant.id.as_str()));
    assert!(theirs.iter().all(|r| r["event"]["requestId"] != request_id.as_str()));

    // Reading the trail takes `audit:read`.
    let r = http.get(format!("{}/v1/audit", p.url())).bearer_auth(&new_secret).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A failed authentication is recorded, anonymously, on the platform's chain.
    let anonymous_id = format!("req-anon-{}", random_hex(6));
    let r = http
        .get(format!("{}/v1/me", p.url()))
        .bearer_auth("anno_live_not-a-real-key")
        .header("x-request-id", &anonymous_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let admin = crate::harness::ADMIN_KEY;
    let anonymous = record_of(p, admin, "/v1/admin/audit?tenant=platform", &anonymous_id).await;
    assert_eq!(anonymous["event"]["actor"], json!({ "kind": "anonymous", "id": null }));
    assert_eq!((&anonymous["event"]["tenantId"], &anonymous["event"]["status"]), (&Value::Null, &json!(401)));
    let (_, platform_text) = all_pages(p, admin, "/v1/admin/audit?tenant=platform").await;
    assert!(!platform_text.contains("not-a-real-key"), "a rejected credential is not recorded either");
    assert!(!platform_text.contains(admin), "nor the admin key");

    // Admins read any chain, and all of them.
    let seen = record_of(p, admin, &format!("/v1/admin/audit?tenant={}", a.tenant.id), &request_id).await;
    assert_eq!(seen["hash"], record["hash"]);
    record_of(p, admin, "/v1/admin/audit", &request_id).await;
    let r = http.get(format!("{}/v1/admin/audit?tenant=nobody", p.url())).bearer_auth(admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = http.get(format!("{}/v1/admin/audit", p.url())).bearer_auth(secret).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// Runs `anno audit verify` against the platform's data.
async fn verify(p: &Platform, tenant: Option<&str>) -> (bool, String) {
    let config = p.config();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_anno"));
    command.args(["audit", "verify"]).env_clear().env("ANNO_DATA_DIR", &config.data_dir).env("ANNO_LOG_FORMAT", "text");
    if let Some(url) = &config.database_url {
        command.env("ANNO_DATABASE_URL", url.expose());
    }
    if let Some(tenant) = tenant {
        command.args(["--tenant", tenant]);
    }
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run anno audit verify");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

async fn audit_verify_passes_then_fails_after_an_edit(p: &Platform) {
    let a = p.onboard().await;
    let secret = &a.api_key.secret;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let request_id = format!("req-verify-{}", random_hex(6));
        let r = http.get(format!("{}/v1/me", p.url())).bearer_auth(secret).header("x-request-id", &request_id);
        assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
        ids.push(request_id);
    }
    let mut events = Vec::new();
    for request_id in &ids {
        events.push(record_of(p, secret, "/v1/audit", request_id).await);
    }

    let tenant = a.tenant.id.as_str();
    let (ok, text) = verify(p, Some(tenant)).await;
    assert!(ok, "a fresh chain verifies: {text}");
    assert!(text.contains("intact"), "{text}");
    let (ok, text) = verify(p, None).await;
    assert!(ok, "every chain verifies: {text}");

    // Someone with database access changes what a call answered.
    let edited = events[1]["event"]["id"].as_str().unwrap().to_owned();
    let target = anno::platform::database_target(p.config()).expect("database target");
    let db = target.open("audit", 1).await.expect("open the audit store");
    let done = anno_store::sqlx::query("UPDATE audit_events SET status = 299 WHERE id = $1")
        .bind(&edited)
        .execute(db.pool())
        .await
        .expect("edit an event");
    assert_eq!(done.rows_affected(), 1);

    let (ok, text) = verify(p, Some(tenant)).await;
    assert!(!ok, "an edited event fails verification: {text}");
    assert!(text.contains("BROKEN") && text.contains(&edited), "{text}");
    assert!(text.contains(&format!("at seq {}", events[1]["seq"])), "{text}");
    let (ok, text) = verify(p, None).await;
    assert!(!ok, "{text}");
    assert!(text.contains(tenant), "{text}");
    let (ok, text) = verify(p, Some("not-a-tenant")).await;
    assert!(!ok && text.contains("not a tenant id"), "{text}");
}

async fn exports_reach_a_signed_webhook_and_a_json_lines_file(p: &Platform) {
    let a = p.onboard().await;
    let secret = &a.api_key.secret;
    let http = reqwest::Client::new();
    let (url, config) = (format!("{}/v1/audit/export", p.url()), format!("{}/v1/config", p.url()));
    let set =
        |export: Value| http.patch(&config).bearer_auth(secret).json(&json!({ "audit": { "export": export } })).send();
    let call = |request_id: String| {
        let r = http.get(format!("{}/v1/me", p.url())).bearer_auth(secret).header("x-request-id", request_id);
        async move { assert_eq!(r.send().await.unwrap().status(), StatusCode::OK) }
    };
    let (http, url) = (&http, &url);
    let status = move |credential: String| async move {
        let r = http.get(url).bearer_auth(credential).send().await.ok()?;
        (r.status() == StatusCode::OK).then_some(r.json::<Value>().await.ok()?)
    };

    // Bad settings are refused with every path at fault.
    for (export, path) in [
        (json!({ "kind": "webhook" }), "audit.export.url"),
        (json!({ "kind": "webhook", "url": "ftp://hooks.example.com/x" }), "audit.export.url"),
        (json!({ "kind": "file", "url": "https://hooks.example.com/x" }), "audit.export.url"),
        (json!({ "kind": "pigeon" }), "audit.export.kind"),
        (json!({ "kind": "file", "path": "/etc/passwd" }), "audit.export.path"),
    ] {
        let r = set(export.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{export}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "invalid_input", "{export}");
        assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["path"] == path), "{export}: {problem}");
    }
    // Only a tenant's own layer says where its trail goes.
    let r = http
        .put(format!("{}/v1/admin/config", p.url()))
        .bearer_auth(crate::harness::ADMIN_KEY)
        .json(&json!({ "audit": { "export": { "kind": "file" } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(http.get(url).bearer_auth(secret).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // A webhook, set in the configuration, is followed by the exporter; the
    // signing secret is shown to a caller that may manage keys.
    let name = format!("flaky-{}", random_hex(6));
    let r = set(json!({ "kind": "webhook", "url": receiver().url(&name) })).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let effective: Value = r.json().await.unwrap();
    assert_eq!(effective["config"]["audit"]["export"], json!({ "kind": "webhook", "url": receiver().url(&name) }));
    let set_at = Instant::now();
    let shown = eventually("the export follows the configuration", || status(secret.clone())).await;
    let followed_in = set_at.elapsed();
    assert!(followed_in < Duration::from_secs(2), "the exporter took {followed_in:?} to follow the setting");
    assert_eq!((&shown["kind"], &shown["url"]), (&json!("webhook"), &json!(receiver().url(&name))));
    let signing = shown["signingSecret"].as_str().expect("the signing secret").to_owned();
    assert!(signing.starts_with("whsec_"));
    let reader = anno_client::anno_api::auth::CreateKeyRequest {
        name: "reader".into(),
        scopes: [anno_tenancy::Scope::AuditRead, anno_tenancy::Scope::ConfigWrite].into_iter().collect(),
        expires_at: None,
    };
    let reader = p.client(secret).create_key(&reader).await.unwrap().secret;
    let seen = status(reader.clone()).await.expect("a reader sees the export");
    assert!(seen.get("signingSecret").is_none(), "{seen}");
    assert!(!seen.to_string().contains(&signing));

    let request_id = format!("req-export-{}", random_hex(6));
    call(request_id.clone()).await;
    let delivery_with = |request_id: String| {
        let name = name.clone();
        async move {
            receiver().hits(&name).into_iter().find(|hit| {
                hit.answered == StatusCode::OK
                    && serde_json::from_slice::<Value>(&hit.body).is_ok_and(|body| {
                        body["data"]
                            .as_array()
                            .is_some_and(|d| d.iter().any(|r| r["event"]["requestId"] == *request_id))
                    })
            })
        }
    };
    let delivered = eventually("a webhook delivery with the call", || delivery_with(request_id.clone())).await;
    let header = delivered.signature.expect("an Anno-Signature header");
    let now = anno_tenancy::now_ms() / 1000;
    assert!(anno_audit::webhook::verify_signature(&signing, &header, &delivered.body, now, 300), "{header}");
    assert!(!anno_audit::webhook::verify_signature("whsec_wrong", &header, &delivered.body, now, 300));
    let body: Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(body["tenantId"], a.tenant.id.as_str());
    assert!(body["data"].as_array().unwrap().iter().all(|r| r["event"]["tenantId"] == a.tenant.id.as_str()));
    let hits = receiver().hits(&name);
    assert_eq!(hits[0].answered, StatusCode::SERVICE_UNAVAILABLE, "the first delivery failed…");
    let ids = |hit: &Hit| -> Vec<String> {
        let body: Value = serde_json::from_slice(&hit.body).unwrap_or_default();
        let data = body["data"].as_array().cloned().unwrap_or_default();
        data.iter().filter_map(|r| r["event"]["id"].as_str().map(str::to_owned)).collect()
    };
    let (failed, retried) = (ids(&hits[0]), ids(&hits[1]));
    assert!(!failed.is_empty() && failed.iter().all(|id| retried.contains(id)), "…and its events came again");
    let healthy = eventually("the export's status", || async {
        let status = status(secret.clone()).await?;
        (status["failures"] == 0 && status["deliveredSeq"].as_i64() > Some(0)).then_some(status)
    })
    .await;
    assert!(healthy["lastDeliveredAt"].is_string(), "{healthy}");

    // A new signing secret is used from the next delivery on; rolling it takes `keys:write`.
    let roll = format!("{url}/secret");
    assert_eq!(http.post(&roll).bearer_auth(&reader).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let rolled: Value = http.post(&roll).bearer_auth(secret).send().await.unwrap().json().await.unwrap();
    let new_signing = rolled["signingSecret"].as_str().expect("the new secret").to_owned();
    assert_ne!(new_signing, signing);
    let request_id = format!("req-rolled-{}", random_hex(6));
    call(request_id.clone()).await;
    let delivered = eventually("a delivery after the roll", || delivery_with(request_id.clone())).await;
    let header = delivered.signature.expect("an Anno-Signature header");
    let now = anno_tenancy::now_ms() / 1000;
    assert!(anno_audit::webhook::verify_signature(&new_signing, &header, &delivered.body, now, 300), "{header}");

    // Changing where the trail goes takes `audit:read` as well as `config:write`.
    let writer = anno_client::anno_api::auth::CreateKeyRequest {
        name: "writer".into(),
        scopes: [anno_tenancy::Scope::ConfigWrite].into_iter().collect(),
        expires_at: None,
    };
    let writer = p.client(secret).create_key(&writer).await.unwrap().secret;
    let r = http
        .patch(&config)
        .bearer_auth(&writer)
        .json(&json!({ "audit": { "export": { "kind": "file" } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // An address the platform may not reach is refused when delivering, and the status says so.
    assert_eq!(
        set(json!({ "kind": "webhook", "url": "https://169.254.169.254/latest" })).await.unwrap().status(),
        StatusCode::OK
    );
    eventually("the new URL followed", || async {
        status(secret.clone()).await.filter(|s| s["url"] == "https://169.254.169.254/latest")
    })
    .await;
    call(format!("req-refused-{}", random_hex(6))).await;
    let refused = eventually("the refused delivery", || async {
        status(secret.clone()).await.filter(|s| s["failures"].as_i64() > Some(0))
    })
    .await;
    assert!(refused["lastError"].as_str().is_some_and(|e| e.contains("refused")), "{refused}");

    // A JSON Lines file in the operator's directory. The change is a merge
    // patch: the webhook's URL goes with a `null`.
    assert_eq!(set(json!({ "kind": "file" })).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(set(json!({ "kind": "file", "url": null })).await.unwrap().status(), StatusCode::OK);
    let file_set = eventually("the file export followed", || async {
        status(secret.clone()).await.filter(|s| s["kind"] == "file")
    })
    .await;
    assert!(file_set.get("signingSecret").is_none() && file_set.get("url").is_none_or(Value::is_null), "{file_set}");
    let request_id = format!("req-file-{}", random_hex(6));
    call(request_id.clone()).await;
    let dir = p.config().audit.file_sink_dir.clone().expect("the tests configure a file sink");
    let file = anno_audit::file_path(&dir, &a.tenant.id);
    let (file, request_id) = (&file, &request_id);
    let lines: Vec<Value> = eventually("a line for the call", || async move {
        let text = std::fs::read_to_string(file).ok()?;
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        lines.iter().any(|r| r["event"]["requestId"] == *request_id).then_some(lines)
    })
    .await;
    assert!(lines.iter().all(|r| r["event"]["tenantId"] == a.tenant.id.as_str() && r["hash"].is_string()));

    // Removing the setting stops the export.
    assert_eq!(set(Value::Null).await.unwrap().status(), StatusCode::OK);
    eventually("the export removed", || async {
        let r = http.get(url).bearer_auth(secret).send().await.ok()?;
        (r.status() == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
}

/// `anno bench audit` stores every event it timed, across its tenants' chains,
/// and they all verify: on SQLite, and on Postgres when it is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_storage_benchmark_stores_and_verifies_what_it_times() {
    use anno::bench::audit::{AuditArgs, run};
    let mut args = AuditArgs { events: 700, batch: 64, vary: true, tenants: 3, postgres_url: None, pool: false };
    let report = run(&args).await.expect("the benchmark runs on SQLite");
    assert_eq!((report.backend, report.path, report.events), ("sqlite", "the storing thread's connection", 700));
    // Ten full batches of warm-up, then the timed ones.
    assert_eq!(report.verified, 10 * 64 + 700);
    args.pool = true;
    let pooled = run(&args).await.expect("the benchmark runs through the pool");
    assert_eq!((pooled.path, pooled.verified), ("the pool", 10 * 64 + 700));
    args.pool = false;
    assert!(report.batches > 700 / 64, "varied batches are smaller than --batch: {}", report.batches);
    assert!(report.to_string().contains("every chain verified"), "{report}");
    if anno_store::testing::postgres_available().await {
        args.postgres_url = Some(anno_store::testing::postgres_url());
        let report = run(&args).await.expect("the benchmark runs on Postgres");
        assert_eq!((report.backend, report.path, report.verified), ("postgres", "the pool", 10 * 64 + 700));
    }
}

/// `anno bench gateway` calls core's route through the gateway (its audit
/// events stored on the storing thread's own connection) and directly, every
/// call answering 200, and prints what each arm cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_benchmark_calls_both_arms_and_reports_their_cost() {
    use anno::bench::gateway::{GatewayArgs, run};
    let args = GatewayArgs { calls: 400, rounds: 2, concurrency: 4 };
    let report = run(&args).await.expect("every call of both arms answers 200");
    assert_eq!((report.direct.len(), report.gateway.len()), (2, 2));
    for sample in report.direct.iter().chain(&report.gateway) {
        assert!(sample.per_second > 0.0 && sample.cpu_us >= 0.0 && sample.switches >= 0.0, "{sample:?}");
    }
    let printed = report.to_string();
    for line in ["core directly", "through the gateway", "the gateway's own work"] {
        assert!(printed.contains(line), "{printed}");
    }
}
