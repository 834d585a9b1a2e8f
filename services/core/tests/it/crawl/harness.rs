//! What every crawl test needs: a database (SQLite in a temporary directory, or
//! a throwaway Postgres database), internal tokens signed the way auth signs them,
//! the fixture site, limits in process with the usage records they pass on, and
//! a crawler whose router is called in process.

use super::site::Site;
use anno_api::token::{Claims, INTERNAL_AUDIENCE, ISSUER, KeySource, PrincipalKind, TokenVerifier};
use anno_bus::{Bus, Entry, Handler};
use anno_core::crawl::{self, CrawlDeps, CrawlPlan, CrawlSettings, Crawler, FixedPlanLimits};
use anno_limits::{Fallbacks, Limits, USAGE_STREAM, UsageRecord};
use anno_store::tenant::TenantStores;
use anno_store::testing::{TestDatabase, postgres_available};
use anno_store::{DatabaseTarget, Db, sqlx};
use anno_tenancy::{Scope, ScopeSet, TenantId, now_ms};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The databases of one test.
struct Env {
    core: Db,
    dir: Option<PathBuf>,
    postgres: Option<TestDatabase>,
}

impl Env {
    /// None when Postgres is wanted but absent outside CI (in CI that fails).
    async fn new(backend: Backend) -> Option<Env> {
        let (target, dir, postgres) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("anno-crawl-{:016x}", rand_u64()));
                (DatabaseTarget::Sqlite { dir: dir.clone() }, Some(dir), None)
            }
            Backend::Postgres => {
                if !postgres_available().await {
                    return None;
                }
                let database = TestDatabase::create().await.expect("create a test database");
                (DatabaseTarget::Postgres { url: database.url() }, None, Some(database))
            }
        };
        let core = target.open("core", 4).await.expect("open core's database");
        core.migrate(crawl::MIGRATIONS).await.expect("migrate core");
        Some(Env { core, dir, postgres })
    }
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("random bytes");
    u64::from_le_bytes(bytes)
}

/// An Ed25519 key signing internal tokens, and the verifier that trusts it.
struct Keys {
    kid: String,
    encoding: EncodingKey,
    verifier: TokenVerifier,
}

impl Keys {
    fn new() -> Keys {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("generate a key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("read the key");
        let kid = format!("sig_test_{:x}", rand_u64());
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }),
        };
        let set = JwkSet { keys: vec![jwk] };
        let verifier = TokenVerifier::new(KeySource::Local(Arc::new(move || {
            let set = set.clone();
            Box::pin(async move { Ok(set) })
        })));
        Keys { kid, encoding: EncodingKey::from_ed_der(pkcs8.as_ref()), verifier }
    }

    /// An internal token for a tenant's API key, as the gateway forwards it.
    fn token(&self, tenant: &TenantId, scopes: ScopeSet) -> String {
        let now = now_ms() / 1000;
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: INTERNAL_AUDIENCE.to_owned(),
            sub: KEY_ID.to_owned(),
            knd: PrincipalKind::Key,
            ten: Some(tenant.clone()),
            scp: scopes,
            iat: now,
            exp: now + 600,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("sign a token")
    }
}

/// The id of the key every test token speaks for.
pub const KEY_ID: &str = "key_0123456789abcdefghjkmnpqrs";

/// One test's world.
pub struct Ctx {
    env: Env,
    keys: Keys,
    pub site: Site,
    pub crawler: Crawler,
    app: Router,
    plan: CrawlPlan,
    /// The tenants' quotas and concurrency slots, as the gateway sees them.
    pub limits: Limits,
    /// What reached the usage stream, in order.
    usage: Arc<Mutex<Vec<UsageRecord>>>,
    consumer: tokio::task::JoinHandle<()>,
}

impl Ctx {
    /// `cap` is every tenant's plan limit on pages per crawl; no quotas.
    pub async fn new(backend: Backend, cap: u32) -> Option<Ctx> {
        Ctx::with_plan(backend, FixedPlanLimits::pages(cap).0).await
    }

    /// Every tenant is on `plan`.
    pub async fn with_plan(backend: Backend, plan: CrawlPlan) -> Option<Ctx> {
        let env = Env::new(backend).await?;
        let keys = Keys::new();
        let site = Site::start().await;
        let bus = Bus::in_process();
        let limits = Limits::new(&bus, Fallbacks::default());
        let usage: Arc<Mutex<Vec<UsageRecord>>> = Arc::default();
        let sink = usage.clone();
        let handler: Handler = Arc::new(move |entries: Vec<Entry>| {
            let sink = sink.clone();
            Box::pin(async move {
                let mut sink = sink.lock().map_err(|_| anyhow::anyhow!("a test panicked"))?;
                for e in entries {
                    sink.push(serde_json::from_str(&e.payload)?);
                }
                Ok(())
            })
        });
        let consumer = bus.consume(USAGE_STREAM, "ledger", "test", handler);
        let crawler = new_crawler(&env.core, &site, &keys, plan.clone(), &limits);
        let app = crawl::router(crawler.clone());
        Some(Ctx { env, keys, site, crawler, app, plan, limits, usage, consumer })
    }

    /// Stops the crawler, as a process exit would, and starts another on the
    /// same databases and limits (without resuming anything yet).
    pub async fn restart(&mut self) {
        self.restart_with(self.plan.clone()).await;
    }

    /// As [`Ctx::restart`], with the tenants on another plan from then on.
    pub async fn restart_with(&mut self, plan: CrawlPlan) {
        self.crawler.shutdown().await;
        self.plan = plan.clone();
        self.crawler = new_crawler(&self.env.core, &self.site, &self.keys, plan, &self.limits);
        self.app = crawl::router(self.crawler.clone());
    }

    /// The usage records of a tenant that reached the stream so far.
    pub fn usage(&self, tenant: &TenantId) -> Vec<UsageRecord> {
        let records = self.usage.lock().map(|r| r.clone()).unwrap_or_default();
        records.into_iter().filter(|r| &r.tenant_id == tenant).collect()
    }

    /// The tenant's usage records once at least `expected` have arrived (and a
    /// moment more, for any beyond): each charge appends to the stream before
    /// the page is stored, so they are all on their way once the job has ended.
    pub async fn settled_usage(&self, tenant: &TenantId, expected: usize) -> Vec<UsageRecord> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.usage(tenant).len() < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.usage(tenant)
    }

    /// Another instance holds the job's lease for `ms` more, as one that died
    /// without handing it back would.
    pub async fn lease_elsewhere(&self, job: &str, ms: i64) {
        sqlx::query("UPDATE crawl_index SET lease_owner = 'crawler_gone', lease_until = $1 WHERE job_id = $2")
            .bind(now_ms() + ms)
            .bind(job)
            .execute(self.env.core.pool())
            .await
            .expect("take the lease");
    }

    /// A new tenant with its storage, and a token with the crawl scope.
    pub async fn tenant(&self) -> (TenantId, String) {
        let tenant = TenantId::generate();
        self.env.core.provision_tenant(&tenant).await.expect("provision the tenant");
        let token = self.keys.token(&tenant, [Scope::ContentCrawl].into_iter().collect());
        (tenant, token)
    }

    pub fn token(&self, tenant: &TenantId, scopes: ScopeSet) -> String {
        self.keys.token(tenant, scopes)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .expect("a request"),
            None => request.body(Body::empty()).expect("a request"),
        };
        let response = self.app.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the body");
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") };
        (status, json)
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// Starts a crawl of a path of the site; its job id.
    pub async fn start(&self, token: &str, path: &str, options: Value) -> String {
        let body = serde_json::json!({"url": self.site.url(path), "options": options});
        let (status, json) = self.call(Method::POST, "/v1/crawl", Some(token), Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{json}");
        assert_eq!(json["status"], "running");
        assert_eq!(json["startUrl"], self.site.url(path));
        assert!(json["startedAt"].as_str().is_some_and(|s| s.ends_with('Z')), "{json}");
        let id = json["jobId"].as_str().expect("a job id").to_owned();
        assert!(id.starts_with("job_"), "{id}");
        id
    }

    pub async fn job(&self, token: &str, id: &str) -> Value {
        let (status, json) = self.get(token, &format!("/v1/crawl/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json
    }

    /// Polls the job until `done` holds of it.
    pub async fn wait_for(&self, token: &str, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let job = self.job(token, id).await;
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the job to end, however it ends.
    pub async fn ended(&self, token: &str, id: &str) -> Value {
        let job = self.wait_for(token, id, "the end of the crawl", |j| j["status"] != "running").await;
        assert!(job["finishedAt"].is_string(), "{job}");
        job
    }

    /// Waits for the job to end; it must end `completed`.
    pub async fn finished(&self, token: &str, id: &str) -> Value {
        let job = self.ended(token, id).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert!(job["finishedAt"].is_string(), "{job}");
        job
    }

    /// Every page of a paginated list, following `nextCursor` with pages of `limit`.
    pub async fn all(&self, token: &str, path: &str, limit: u32) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}?limit={limit}&cursor={c}"),
                None => format!("{path}?limit={limit}"),
            };
            let (status, json) = self.get(token, &url).await;
            assert_eq!(status, StatusCode::OK, "{json}");
            items.extend(json["data"].as_array().expect("data").iter().cloned());
            match json["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    /// Every discovered URL (as a site path) and its disposition.
    pub async fn dispositions(&self, token: &str, id: &str) -> BTreeMap<String, String> {
        let urls = self.all(token, &format!("/v1/crawl/{id}/urls"), 7).await;
        let mut out = BTreeMap::new();
        for u in urls {
            let path = self.site.path(u["url"].as_str().expect("url")).to_owned();
            let disposition = u["disposition"].as_str().expect("disposition").to_owned();
            assert!(out.insert(path.clone(), disposition).is_none(), "{path} listed twice");
        }
        out
    }

    /// The captured pages, by site path; each must be there once.
    pub async fn results(&self, token: &str, id: &str) -> BTreeMap<String, Value> {
        let pages = self.all(token, &format!("/v1/crawl/{id}/results"), 5).await;
        let mut out = BTreeMap::new();
        for p in pages {
            let path = self.site.path(p["url"].as_str().expect("url")).to_owned();
            assert!(out.insert(path.clone(), p).is_none(), "{path} captured twice");
        }
        out
    }

    pub async fn finish(self) {
        self.crawler.shutdown().await;
        self.consumer.abort();
        if let Some(database) = self.env.postgres {
            drop(self.env.core);
            database.drop().await;
        }
        if let Some(dir) = self.env.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn new_crawler(core: &Db, site: &Site, keys: &Keys, plan: CrawlPlan, limits: &Limits) -> Crawler {
    Crawler::new(CrawlDeps {
        core_db: core.clone(),
        stores: TenantStores::new(core, crawl::TENANT_MIGRATIONS),
        fetcher: site.fetcher(),
        verifier: keys.verifier.clone(),
        plans: Arc::new(FixedPlanLimits(plan)),
        limits: limits.clone(),
        settings: CrawlSettings { lease: Duration::from_secs(3) },
    })
}

/// Builds a map of paths to dispositions from literal pairs.
pub fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(p, d)| ((*p).to_owned(), (*d).to_owned())).collect()
}
