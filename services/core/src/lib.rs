//! Anno core: fetch, extract, batch and crawl, over the safe fetcher and the
//! tenant-aware cache. Every request carries an internal token.

mod cache;
mod content;
pub mod crawl;
mod metrics;
mod options;
mod stream;

pub use cache::{CacheSettings, ENGINE_VERSION};

/// Core's own schema.
pub const MIGRATIONS: &[anno_store::Migration] = crawl::MIGRATIONS;

use anno_api::server::{Limits, Readiness, finish};
use anno_api::tenant::TenantClient;
use anno_api::token::{Caller, TokenVerifier};
use anno_bus::Bus;
use anno_errors::ApiError;
use anno_fetch::Fetcher;
use anno_store::Db;
use anno_store::tenant::TenantStores;
use anno_tenancy::{Limits as PlanLimitsOf, TenantId};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{any, post};
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE: &str = "core";

/// How core behaves; the `anno` binary fills this from its configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub cache: CacheSettings,
    /// How old a cached page may be when the caller sends no `maxAge`.
    pub default_max_age: Duration,
    /// Tenants share cached public pages (no headers or cookies of theirs).
    pub shared_public_cache: bool,
    /// URLs of one batch fetched at once, unless the caller asks for fewer.
    pub batch_parallelism: u32,
    pub crawl: crawl::CrawlSettings,
    /// Largest HTML a caller may send to `/v1/content/extract` (bytes).
    pub max_html_bytes: usize,
    /// Single fetches obey robots.txt (crawls choose per job).
    pub respect_robots: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cache: CacheSettings::default(),
            crawl: crawl::CrawlSettings::default(),
            default_max_age: Duration::from_secs(3600),
            shared_public_cache: false,
            batch_parallelism: 4,
            max_html_bytes: 10 * 1024 * 1024,
            respect_robots: true,
        }
    }
}

/// What core is built from.
pub struct Deps {
    pub db: Db,
    pub bus: Bus,
    pub verifier: TokenVerifier,
    pub tenants: TenantClient,
    pub fetcher: Fetcher,
    /// Shared with the gateway when both run in one process.
    pub limits: anno_limits::Limits,
    /// The config service: each tenant's extraction defaults and fetch policy.
    pub config: anno_api::config::ConfigClient,
    /// How often the config service's change counter is read.
    pub config_check_interval: Duration,
    pub settings: Settings,
}

#[derive(Clone)]
pub struct State {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    bus: Bus,
    verifier: TokenVerifier,
    fetcher: Fetcher,
    cache: cache::Cache,
    settings: Settings,
    plans: Arc<TenantPlans>,
    limits: anno_limits::Limits,
    crawler: crawl::Crawler,
    config: anno_api::config::ConfigCache,
}

/// Each tenant's plan limits, from the tenant service, kept briefly.
struct TenantPlans {
    client: TenantClient,
    cache: moka::future::Cache<TenantId, PlanLimitsOf>,
}

impl TenantPlans {
    async fn limits(&self, tenant: &TenantId, token: &str) -> Result<PlanLimitsOf, ApiError> {
        let (client, token) = (self.client.clone(), token.to_owned());
        self.cache
            .try_get_with(tenant.clone(), async move {
                client.get(&token, tenant).await.map(|t| t.limits).map_err(|e| e.into_api_error())
            })
            .await
            .map_err(|e| ApiError::clone(&e))
    }
}

/// What a crawl may do: the plan's limits with the tenant configuration's
/// overrides, and its fetch policy.
struct CrawlPlans {
    plans: Arc<TenantPlans>,
    config: anno_api::config::ConfigCache,
}

impl crawl::PlanLimits for CrawlPlans {
    fn plan<'a>(
        &'a self,
        tenant: &'a TenantId,
        token: &'a str,
    ) -> crawl::BoxFuture<'a, Result<crawl::CrawlPlan, ApiError>> {
        Box::pin(async move {
            let limits = self.plans.limits(tenant, token).await?;
            let config = self.config.get(tenant, token).await.map_err(|e| e.pass_client_errors())?;
            let mut plan = crawl::CrawlPlan::from(&limits.with_overrides(&config.config.limits));
            plan.fetch = config.config.fetch.clone();
            Ok(plan)
        })
    }
}

impl FromRef<State> for TokenVerifier {
    fn from_ref(state: &State) -> TokenVerifier {
        state.inner.verifier.clone()
    }
}

impl State {
    pub fn new(deps: Deps) -> Self {
        let redis = deps.bus.redis_connection().map(|(conn, namespace)| (conn, namespace.to_owned()));
        let cache = cache::Cache::new(deps.settings.cache.clone(), redis);
        let plans = Arc::new(TenantPlans {
            client: deps.tenants,
            cache: moka::future::Cache::builder().time_to_live(Duration::from_secs(30)).build(),
        });
        let config = anno_api::config::ConfigCache::new(deps.config, &deps.bus, deps.config_check_interval);
        let crawl_plans = Arc::new(CrawlPlans { plans: plans.clone(), config: config.clone() });
        let crawler = crawl::Crawler::new(crawl::CrawlDeps {
            core_db: deps.db.clone(),
            stores: TenantStores::new(&deps.db, crawl::TENANT_MIGRATIONS),
            fetcher: deps.fetcher.clone(),
            verifier: deps.verifier.clone(),
            plans: crawl_plans,
            limits: deps.limits.clone(),
            settings: deps.settings.crawl.clone(),
        });
        State {
            inner: Arc::new(Inner {
                config,
                db: deps.db,
                bus: deps.bus,
                verifier: deps.verifier,
                fetcher: deps.fetcher,
                cache,
                settings: deps.settings,
                plans,
                limits: deps.limits,
                crawler,
            }),
        }
    }

    /// Resumes the crawl jobs a stopped instance left. Call once at startup.
    pub async fn start(&self) -> anyhow::Result<()> {
        let resumed = self.inner.crawler.resume().await?;
        if resumed > 0 {
            tracing::info!(resumed, "crawl jobs resumed");
        }
        Ok(())
    }

    /// Stops this instance's crawl jobs without ending them, for the next
    /// start (here or on another replica) to carry on.
    pub async fn shutdown(&self) {
        self.inner.crawler.shutdown().await;
    }

    /// The caller's tenant's effective configuration: its extraction defaults
    /// and fetch policy. Without it a request is refused (503) rather than
    /// served against a policy the tenant did not set.
    async fn tenant_config(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<Arc<anno_api::config::EffectiveConfig>, ApiError> {
        self.inner.config.get(tenant, &caller.token).await.map_err(|e| e.pass_client_errors())
    }

    /// Counts one delivered page against the tenant's quotas and records it
    /// for the ledger; refused with 429 when a quota has no unit left.
    async fn charge(&self, caller: &Caller, tenant: &TenantId, source: &str) -> Result<(), ApiError> {
        let mut limits = self.inner.plans.limits(tenant, &caller.token).await?;
        // The configuration's overrides, as the gateway applies them.
        if let Ok(config) = self.inner.config.get(tenant, &caller.token).await {
            limits = limits.with_overrides(&config.config.limits);
        }
        let record = anno_limits::UsageRecord {
            id: anno_tenancy::new_id("use"),
            tenant_id: tenant.clone(),
            key_id: Some(caller.claims.sub.clone()),
            units: 1,
            at: anno_tenancy::now_ms(),
            source: source.to_owned(),
        };
        match self.inner.limits.charge(&record, &anno_limits::Policy::from(&limits)).await {
            anno_limits::Charged::Counted { .. } => Ok(()),
            anno_limits::Charged::Refused(limit) => Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                limit.code(),
                format!("The tenant's units are used up (policy \"{}\"); the page was not delivered.", limit.name()),
            )),
        }
    }

    /// The tenant's plan limit on URLs per batch.
    async fn urls_per_batch(&self, caller: &Caller, tenant: &TenantId) -> Result<u32, ApiError> {
        self.inner.plans.limits(tenant, &caller.token).await.map(|l| l.urls_per_batch)
    }
}

/// Every request must carry a valid internal token; none reaches an endpoint
/// this service does not have.
async fn unknown_endpoint(_caller: Caller) -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "No such endpoint.")
}

pub fn router(state: State) -> Router {
    let (db, bus) = (state.inner.db.clone(), state.inner.bus.clone());
    let crawl = crawl::router(state.inner.crawler.clone());
    let routes = Router::new()
        .route("/v1/content/fetch", post(content::fetch))
        .route("/v1/content/extract", post(content::extract))
        .route("/v1/content/batch-fetch", post(content::batch_fetch))
        .route("/v1/{*rest}", any(unknown_endpoint))
        .route("/internal/{*rest}", any(unknown_endpoint))
        .with_state(state)
        .merge(crawl);
    let readiness = Readiness::new(move || {
        let (db, bus) = (db.clone(), bus.clone());
        async move {
            db.ping().await.map_err(|e| e.to_string())?;
            bus.ping().await.map_err(|e| e.to_string())
        }
    });
    finish(SERVICE, routes, readiness, Limits::default())
}
