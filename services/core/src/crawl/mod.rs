//! Crawl jobs: discovery from a start URL (links and sitemaps) within depth,
//! page and pattern bounds, kept in the tenant's own storage.
//!
//! - `POST /v1/crawl` starts a job; `GET /v1/crawl` lists the tenant's jobs.
//! - `GET /v1/crawl/{id}` shows its progress, `DELETE` cancels it.
//! - `GET /v1/crawl/{id}/results` pages through captured pages (while it runs too),
//!   `GET /v1/crawl/{id}/urls` through every discovered URL and its disposition.
//!
//! Jobs, their URLs and pages live in the tenant's storage ([`TENANT_MIGRATIONS`]);
//! core's own schema keeps an index of jobs with the lease of the instance working
//! each ([`MIGRATIONS`]), from which [`Crawler::resume`] picks up the jobs a
//! stopped instance left running.
//!
//! Each captured page costs the tenant one unit, charged against the quotas its
//! plan had when the job was created (kept with the job, see [`JobQuota`]); a
//! running job holds one of the tenant's concurrency slots until it ends.

mod handlers;
mod index;
mod links;
mod options;
mod plan;
mod runner;
mod sitemap;
mod store;
mod wire;

pub use options::{CrawlOptions, CreateCrawl, OptionsInput};
pub use plan::{CrawlPlan, FixedPlanLimits, JobQuota, PlanLimits};
pub use wire::{CrawlPage, CrawlUrl, Created, Job, Progress, UrlCounts};

use anno_api::token::TokenVerifier;
use anno_fetch::Fetcher;
use anno_store::tenant::TenantStores;
use anno_store::{Db, Migration, StoreError};
use anno_tenancy::{TenantId, new_id, now_ms};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use runner::Frontier;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Core's own schema: the index of jobs across tenants.
pub const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, name: "crawl_index", sql: include_str!("migrations/core_0001_crawl_index.sql") }];

/// Each tenant's storage: jobs, their URLs and captured pages.
pub const TENANT_MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "crawl", sql: include_str!("migrations/tenant_0001_crawl.sql") },
    Migration { version: 2, name: "crawl_quota", sql: include_str!("migrations/tenant_0002_crawl_quota.sql") },
];

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Clone, Debug)]
pub struct CrawlSettings {
    /// How long a job stays with the instance working it without news from it.
    /// It is renewed at a third of this; an instance that stops without
    /// handing its jobs back leaves them to others (or its restarted self) after it.
    pub lease: Duration,
}

impl Default for CrawlSettings {
    fn default() -> Self {
        CrawlSettings { lease: Duration::from_secs(30) }
    }
}

/// What the crawler is built from.
pub struct CrawlDeps {
    /// Core's own database (with [`MIGRATIONS`] applied).
    pub core_db: Db,
    /// Tenants' storage, opened with [`TENANT_MIGRATIONS`].
    pub stores: TenantStores,
    pub fetcher: Fetcher,
    pub verifier: TokenVerifier,
    /// Tenants' plans, read when a job is created.
    pub plans: Arc<dyn PlanLimits>,
    /// What captured pages are charged to, and where a running job holds its
    /// concurrency slot.
    pub limits: anno_limits::Limits,
    pub settings: CrawlSettings,
}

/// Starts, runs, cancels and resumes crawl jobs. Cheap to clone.
#[derive(Clone)]
pub struct Crawler {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    core: Db,
    stores: TenantStores,
    fetcher: Fetcher,
    verifier: TokenVerifier,
    plans: Arc<dyn PlanLimits>,
    limits: anno_limits::Limits,
    settings: CrawlSettings,
    /// This instance, as lease holder.
    owner: String,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    running: Mutex<HashMap<String, Running>>,
    adopting: AtomicBool,
}

/// A job worked by this instance.
struct Running {
    token: CancellationToken,
    /// Closed when the job's coordinator has stopped.
    done: watch::Receiver<()>,
}

impl FromRef<Crawler> for TokenVerifier {
    fn from_ref(crawler: &Crawler) -> TokenVerifier {
        crawler.inner.verifier.clone()
    }
}

impl Crawler {
    pub fn new(deps: CrawlDeps) -> Crawler {
        let inner = Inner {
            core: deps.core_db,
            stores: deps.stores,
            fetcher: deps.fetcher,
            verifier: deps.verifier,
            plans: deps.plans,
            limits: deps.limits,
            settings: deps.settings,
            owner: new_id("crawler"),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            running: Mutex::default(),
            adopting: AtomicBool::new(false),
        };
        Crawler { inner: Arc::new(inner) }
    }

    /// Picks up the running jobs no instance works (those a stopped instance
    /// left), carrying on from what they had settled, and from then on keeps
    /// looking for such jobs once a lease period. Returns how many it resumed now.
    /// Call once at startup.
    pub async fn resume(&self) -> Result<usize, StoreError> {
        if !self.inner.adopting.swap(true, Ordering::SeqCst) {
            let crawler = self.clone();
            self.inner.tasks.spawn(async move {
                let period = crawler.inner.settings.lease.max(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        () = crawler.inner.shutdown.cancelled() => return,
                        () = tokio::time::sleep(period) => {}
                    }
                    if let Err(e) = crawler.adopt().await {
                        tracing::warn!(error = %e, "looking for crawl jobs to resume failed");
                    }
                }
            });
        }
        self.adopt().await
    }

    /// Stops every job this instance works without ending it, as a process exit
    /// would, and hands their leases back so that the next start resumes them at
    /// once. Waits for the jobs' tasks to stop. New jobs are refused after.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    async fn adopt(&self) -> Result<usize, StoreError> {
        let mut resumed = 0;
        for (job_id, tenant) in index::orphans(&self.inner.core, now_ms(), 100).await? {
            if self.inner.shutdown.is_cancelled() {
                break;
            }
            if self.is_running_here(&job_id) {
                continue;
            }
            let now = now_ms();
            let until = now + runner::lease_ms(&self.inner);
            if !index::claim(&self.inner.core, &job_id, &self.inner.owner, until, now).await? {
                continue;
            }
            match self.restart(&job_id, &tenant).await {
                Ok(true) => resumed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, job.id = %job_id, "resuming a crawl failed; it will be tried again");
                    index::release(&self.inner.core, &job_id, &self.inner.owner, now_ms()).await?;
                }
            }
        }
        Ok(resumed)
    }

    /// Carries on with a claimed job. False when there was nothing to resume.
    async fn restart(&self, job_id: &str, tenant: &str) -> Result<bool, StoreError> {
        let core = &self.inner.core;
        let interrupted = |why: &str| tracing::warn!(job.id = %job_id, why, "a crawl could not be resumed");
        let Ok(tenant) = tenant.parse::<TenantId>() else {
            interrupted("bad tenant id");
            index::finish(core, job_id, "interrupted", now_ms()).await?;
            return Ok(false);
        };
        let db = match self.inner.stores.open(&tenant).await {
            Ok(db) => db,
            Err(StoreError::NotFound) => {
                interrupted("the tenant's storage is gone");
                index::finish(core, job_id, "interrupted", now_ms()).await?;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let Some(record) = store::find_job(&db, job_id).await? else {
            interrupted("the job is gone");
            index::finish(core, job_id, "interrupted", now_ms()).await?;
            return Ok(false);
        };
        if record.status != store::JobStatus::Running {
            index::finish(core, job_id, record.status.as_str(), now_ms()).await?;
            return Ok(false);
        }
        let parsed = url::Url::parse(&record.start_url).map_err(|e| e.to_string());
        let rules = parsed.and_then(|start| Ok((options::Rules::new(&start, &record.options)?, start)));
        let (rules, start) = match rules {
            Ok(ok) => ok,
            Err(why) => {
                interrupted(&why);
                let now = now_ms();
                store::finish_job(&db, job_id, store::JobStatus::Interrupted, None, now).await?;
                index::finish(core, job_id, "interrupted", now).await?;
                return Ok(false);
            }
        };
        let frontier = Frontier::restore(store::all_urls(&db, job_id).await?, store::last_page_seq(&db, job_id).await?);
        tracing::info!(job.id = %job_id, tenant.id = %tenant, "crawl resumed");
        self.launch(
            runner::Job {
                id: record.id,
                tenant,
                db,
                start,
                options: record.options,
                rules,
                sitemaps_read: record.sitemaps_read,
                created_by: record.created_by,
                quota: record.quota,
            },
            frontier,
        );
        Ok(true)
    }

    fn is_running_here(&self, job_id: &str) -> bool {
        self.inner.running.lock().is_ok_and(|running| running.contains_key(job_id))
    }

    /// Starts the job's coordinator.
    fn launch(&self, job: runner::Job, frontier: Frontier) {
        let token = self.inner.shutdown.child_token();
        let (done_tx, done) = watch::channel(());
        if let Ok(mut running) = self.inner.running.lock() {
            running.insert(job.id.clone(), Running { token: token.clone(), done });
        }
        let inner = Arc::clone(&self.inner);
        self.inner.tasks.spawn(async move {
            let id = job.id.clone();
            runner::run(Arc::clone(&inner), job, frontier, token).await;
            if let Ok(mut running) = inner.running.lock() {
                running.remove(&id);
            }
            drop(done_tx);
        });
    }

    /// Stops the job's coordinator here, if it runs here, and waits for it.
    async fn stop_here(&self, job_id: &str) {
        let running =
            self.inner.running.lock().ok().and_then(|r| r.get(job_id).map(|r| (r.token.clone(), r.done.clone())));
        let Some((token, mut done)) = running else { return };
        token.cancel();
        let stopped = async { while done.changed().await.is_ok() {} };
        if tokio::time::timeout(Duration::from_secs(10), stopped).await.is_err() {
            tracing::warn!(job.id = %job_id, "a cancelled crawl is slow to stop");
        }
    }
}

/// The crawl routes, state applied, to merge into core's router.
pub fn router(crawler: Crawler) -> Router {
    Router::new()
        .route("/v1/crawl", post(handlers::create).get(handlers::list))
        .route("/v1/crawl/{job_id}", get(handlers::get).delete(handlers::cancel))
        .route("/v1/crawl/{job_id}/results", get(handlers::results))
        .route("/v1/crawl/{job_id}/urls", get(handlers::urls))
        .with_state(crawler)
}
