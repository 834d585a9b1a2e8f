//! The crawl endpoints. Each starts from the caller's tenant: its jobs are looked
//! up in its own storage only, so another tenant's job id is simply not found.

use crate::crawl::options::{CreateCrawl, Rules, Validated};
use crate::crawl::runner::{self, Frontier};
use crate::crawl::store::{self, JobRecord, JobStatus, NewUrl, UrlState};
use crate::crawl::wire::{CrawlPage, CrawlUrl, Created, Job};
use crate::crawl::{Crawler, JobQuota, index};
use anno_api::token::Caller;
use anno_api::{Page, PageQuery, page_from_rows};
use anno_errors::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use anno_store::{Db, StoreError};
use anno_tenancy::{Scope, TenantId, new_id, now_ms, rfc3339};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

const ID_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A well-formed job id (`job_` and 26 base32 characters); anything else cannot exist.
fn is_job_id(id: &str) -> bool {
    id.strip_prefix("job_").is_some_and(|body| body.len() == 26 && body.bytes().all(|b| ID_ALPHABET.contains(&b)))
}

fn job_not_found() -> ApiError {
    ApiError::not_found("Crawl job")
}

/// The caller's tenant, allowed to crawl.
fn tenant(caller: &Caller) -> ApiResult<TenantId> {
    Ok(caller.tenant(Scope::ContentCrawl)?.tenant_id)
}

/// The caller's storage and one of its jobs.
async fn find(crawler: &Crawler, tenant: &TenantId, id: &str) -> ApiResult<(Db, JobRecord)> {
    if !is_job_id(id) {
        return Err(job_not_found());
    }
    let db = match crawler.inner.stores.open(tenant).await {
        Ok(db) => db,
        Err(StoreError::NotFound) => return Err(job_not_found()),
        Err(e) => return Err(e.into()),
    };
    let job = store::find_job(&db, id).await?.ok_or_else(job_not_found)?;
    Ok((db, job))
}

async fn view(db: &Db, job: JobRecord) -> ApiResult<Job> {
    let mut counts = store::counts(db, &[job.id.as_str()]).await?;
    let counts = counts.remove(&job.id).unwrap_or_default();
    Ok(Job::new(job, counts))
}

/// `POST /v1/crawl`
pub async fn create(
    State(crawler): State<Crawler>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateCrawl>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let tenant = tenant(&caller)?;
    let mut request = request.validate()?;
    let plan = crawler.inner.plans.plan(&tenant, &caller.token).await?;
    plan.fetch.allow(request.start.host_str().unwrap_or_default())?;
    request.options.max_pages = request.options.max_pages.min(plan.pages_per_crawl.max(1));
    let by = Starter { key: caller.claims.sub.clone(), quota: plan.quota };
    let created = start(&crawler, &tenant, request, by).await?;
    Ok((StatusCode::ACCEPTED, Json(created)))
}

/// Who starts a job, and the plan's quotas it is charged against from then on.
struct Starter {
    key: String,
    quota: JobQuota,
}

async fn start(crawler: &Crawler, tenant: &TenantId, request: Validated, by: Starter) -> ApiResult<Created> {
    let inner = &crawler.inner;
    if inner.shutdown.is_cancelled() {
        return Err(ApiError::unavailable("the crawler is shutting down"));
    }
    let Validated { start, options } = request;
    let rules = Rules::new(&start, &options).map_err(ApiError::internal)?;
    let db = match inner.stores.open(tenant).await {
        Ok(db) => db,
        Err(StoreError::NotFound) => return Err(ApiError::not_found("Tenant")),
        Err(e) => return Err(e.into()),
    };
    let now = now_ms();
    let record = JobRecord {
        id: new_id("job"),
        start_url: start.to_string(),
        options,
        status: JobStatus::Running,
        current_url: None,
        sitemaps_read: false,
        created_at: now,
        finished_at: None,
        created_by: Some(by.key),
        quota: by.quota,
        stop: None,
    };
    let first = NewUrl { url: record.start_url.clone(), seq: 1, depth: 0, state: UrlState::Queued, reason: None };
    // Indexed first: a job the index does not know could never be resumed.
    index::register(&inner.core, &record.id, tenant, &inner.owner, now + runner::lease_ms(inner), now).await?;
    if let Err(e) = store::insert_job(&db, &record, &first).await {
        let _ = index::remove(&inner.core, &record.id).await;
        return Err(e.into());
    }
    tracing::info!(job.id = %record.id, tenant.id = %tenant, "crawl started");
    let created = Created {
        job_id: record.id.clone(),
        status: JobStatus::Running.as_str(),
        start_url: record.start_url.clone(),
        started_at: rfc3339(now),
    };
    let job = runner::Job {
        id: record.id,
        tenant: tenant.clone(),
        db,
        start,
        options: record.options,
        rules,
        sitemaps_read: false,
        created_by: record.created_by,
        quota: record.quota,
    };
    crawler.launch(job, Frontier::new(&first));
    Ok(created)
}

/// `GET /v1/crawl`: the tenant's jobs, newest first.
pub async fn list(
    State(crawler): State<Crawler>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Job>>> {
    let tenant = tenant(&caller)?;
    let cursor = query.cursor.as_deref().filter(|c| !c.is_empty());
    if cursor.is_some_and(|c| !is_job_id(c)) {
        return Err(ApiError::bad_request("invalid_cursor", "The cursor is not one this list gave."));
    }
    let db = match crawler.inner.stores.open(&tenant).await {
        Ok(db) => db,
        Err(StoreError::NotFound) => return Ok(Json(Page { data: Vec::new(), next_cursor: None })),
        Err(e) => return Err(e.into()),
    };
    let limit = query.limit();
    let page = page_from_rows(store::list_jobs(&db, cursor, limit).await?, limit, |job| job.id.clone());
    let ids: Vec<&str> = page.data.iter().map(|job| job.id.as_str()).collect();
    let mut counts = store::counts(&db, &ids).await?;
    let data = page
        .data
        .into_iter()
        .map(|job| {
            let counts = counts.remove(&job.id).unwrap_or_default();
            Job::new(job, counts)
        })
        .collect();
    Ok(Json(Page { data, next_cursor: page.next_cursor }))
}

/// `GET /v1/crawl/{id}`
pub async fn get(State(crawler): State<Crawler>, caller: Caller, ApiPath(id): ApiPath<String>) -> ApiResult<Json<Job>> {
    let (db, job) = find(&crawler, &tenant(&caller)?, &id).await?;
    Ok(Json(view(&db, job).await?))
}

/// `DELETE /v1/crawl/{id}`: cancels a running job; what it captured stays.
/// Answers with the job once it has stopped here; a job that already ended is
/// shown as it is.
pub async fn cancel(
    State(crawler): State<Crawler>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Job>> {
    let tenant = tenant(&caller)?;
    let (db, job) = find(&crawler, &tenant, &id).await?;
    if job.status == JobStatus::Running {
        let now = now_ms();
        let cancelled = store::finish_job(&db, &id, JobStatus::Cancelled, None, now).await?;
        crawler.stop_here(&id).await;
        // An instance elsewhere working the job stops at its next page, which
        // is no longer queued, or when it next renews its lease.
        store::settle_queued(&db, &id, UrlState::Cancelled).await?;
        if cancelled {
            index::finish(&crawler.inner.core, &id, JobStatus::Cancelled.as_str(), now).await?;
            tracing::info!(job.id = %id, tenant.id = %tenant, "crawl cancelled");
        }
    }
    let job = store::find_job(&db, &id).await?.ok_or_else(job_not_found)?;
    Ok(Json(view(&db, job).await?))
}

/// What a list of a job's rows starts from: the caller's storage (the job being
/// theirs), where to start after, and how many.
async fn listing(crawler: &Crawler, caller: &Caller, id: &str, query: &PageQuery) -> ApiResult<(Db, i64, u32)> {
    let tenant = tenant(caller)?;
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::bad_request("invalid_cursor", "The cursor is not one this list gave."))?,
    };
    let (db, _) = find(crawler, &tenant, id).await?;
    Ok((db, after, query.limit()))
}

/// `GET /v1/crawl/{id}/results`: captured pages in capture order, while the job runs too.
pub async fn results(
    State(crawler): State<Crawler>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<CrawlPage>>> {
    let (db, after, limit) = listing(&crawler, &caller, &id, &query).await?;
    let rows = store::pages_after(&db, &id, after, i64::from(limit) + 1).await?;
    let page = page_from_rows(rows, limit, |p| p.seq.to_string());
    Ok(Json(page))
}

/// `GET /v1/crawl/{id}/urls`: every discovered URL in discovery order, with its disposition.
pub async fn urls(
    State(crawler): State<Crawler>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<CrawlUrl>>> {
    let (db, after, limit) = listing(&crawler, &caller, &id, &query).await?;
    let rows = store::urls_after(&db, &id, after, i64::from(limit) + 1).await?;
    let page = page_from_rows(rows, limit, |u| u.seq.to_string());
    Ok(Json(Page { data: page.data.into_iter().map(CrawlUrl::from).collect(), next_cursor: page.next_cursor }))
}
