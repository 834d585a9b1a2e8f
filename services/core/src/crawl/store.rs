//! Crawl queries on a tenant's own storage: jobs, the URLs each discovered with
//! their disposition, and the pages captured. Every function takes the tenant's
//! [`Db`], so no query can reach another tenant's jobs.

use crate::crawl::options::CrawlOptions;
use crate::crawl::plan::JobQuota;
use crate::crawl::wire::{CrawlPage, UrlCounts};
use anno_store::sqlx::{self, Any, Transaction};
use anno_store::{Db, StoreError};
use std::collections::HashMap;
use std::future::Future;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Completed,
    Cancelled,
    Failed,
    Interrupted,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Failed => "failed",
            JobStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Result<JobStatus, StoreError> {
        Ok(match s {
            "running" => JobStatus::Running,
            "completed" => JobStatus::Completed,
            "cancelled" => JobStatus::Cancelled,
            "failed" => JobStatus::Failed,
            "interrupted" => JobStatus::Interrupted,
            other => return Err(StoreError::Other(format!("unknown crawl status `{other}`"))),
        })
    }
}

/// Where a discovered URL stands. `Queued` is the only state that changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlState {
    Queued,
    Captured,
    Failed,
    Excluded,
    OverBudget,
    Cancelled,
}

impl UrlState {
    pub fn as_str(self) -> &'static str {
        match self {
            UrlState::Queued => "queued",
            UrlState::Captured => "captured",
            UrlState::Failed => "failed",
            UrlState::Excluded => "excluded",
            UrlState::OverBudget => "over_budget",
            UrlState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<UrlState, StoreError> {
        Ok(match s {
            "queued" => UrlState::Queued,
            "captured" => UrlState::Captured,
            "failed" => UrlState::Failed,
            "excluded" => UrlState::Excluded,
            "over_budget" => UrlState::OverBudget,
            "cancelled" => UrlState::Cancelled,
            other => return Err(StoreError::Other(format!("unknown URL state `{other}`"))),
        })
    }
}

#[derive(Clone, Debug)]
pub struct JobRecord {
    pub id: String,
    pub start_url: String,
    pub options: CrawlOptions,
    pub status: JobStatus,
    pub current_url: Option<String>,
    pub sitemaps_read: bool,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// The API key or user that started the job.
    pub created_by: Option<String>,
    /// What its pages are charged against (unlimited for jobs from before it was kept).
    pub quota: JobQuota,
    /// Why it ended before running out of pages to capture.
    pub stop: Option<Stop>,
}

/// Why a job ended early: `reason` a problem code, `policy` the limit's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    pub reason: String,
    pub policy: Option<String>,
}

impl Stop {
    /// The tenant's units ran out under `limit`.
    pub fn quota(limit: anno_limits::Limit) -> Stop {
        Stop { reason: limit.code().to_owned(), policy: Some(limit.name().to_owned()) }
    }
}

type JobRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const SELECT_JOB: &str = "SELECT id, start_url, options, status, current_url, sitemaps_read, created_at, finished_at, \
                          created_by, quota, stop_reason, stop_policy FROM crawl_jobs";

impl TryFrom<JobRow> for JobRecord {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        Ok(JobRecord {
            id: r.0,
            start_url: r.1,
            options: serde_json::from_str(&r.2).map_err(|e| StoreError::Other(format!("crawl options: {e}")))?,
            status: JobStatus::parse(&r.3)?,
            current_url: r.4,
            sitemaps_read: r.5 != 0,
            created_at: r.6,
            finished_at: r.7,
            created_by: r.8,
            quota: match r.9 {
                Some(quota) => {
                    serde_json::from_str(&quota).map_err(|e| StoreError::Other(format!("crawl quota: {e}")))?
                }
                None => JobQuota::default(),
            },
            stop: r.10.map(|reason| Stop { reason, policy: r.11 }),
        })
    }
}

/// A URL as it is recorded when discovered.
#[derive(Clone, Debug)]
pub struct NewUrl {
    pub url: String,
    pub seq: i64,
    pub depth: u32,
    pub state: UrlState,
    pub reason: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct UrlRecord {
    pub seq: i64,
    pub url: String,
    pub depth: u32,
    pub state: UrlState,
    pub reason: Option<String>,
}

/// Records a new job with its start URL queued.
pub async fn insert_job(db: &Db, job: &JobRecord, start: &NewUrl) -> Result<(), StoreError> {
    let options = serde_json::to_string(&job.options).map_err(|e| StoreError::Other(e.to_string()))?;
    let quota = serde_json::to_string(&job.quota).map_err(|e| StoreError::Other(e.to_string()))?;
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO crawl_jobs (id, start_url, options, max_pages, status, sitemaps_read, created_at, updated_at, \
         created_by, quota) VALUES ($1, $2, $3, $4, $5, 0, $6, $6, $7, $8)",
    )
    .bind(&job.id)
    .bind(&job.start_url)
    .bind(options)
    .bind(i64::from(job.options.max_pages))
    .bind(job.status.as_str())
    .bind(job.created_at)
    .bind(job.created_by.as_deref())
    .bind(quota)
    .execute(&mut *tx)
    .await?;
    insert_urls(&mut tx, &job.id, std::slice::from_ref(start), job.created_at).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn find_job(db: &Db, id: &str) -> Result<Option<JobRecord>, StoreError> {
    let row: Option<JobRow> =
        sqlx::query_as(&format!("{SELECT_JOB} WHERE id = $1")).bind(id).fetch_optional(db.pool()).await?;
    row.map(JobRecord::try_from).transpose()
}

/// Jobs newest first, those made before the `before` id when given.
pub async fn list_jobs(db: &Db, before: Option<&str>, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
    let limit = i64::from(limit) + 1;
    let rows: Vec<JobRow> = match before {
        Some(before) => {
            sqlx::query_as(&format!("{SELECT_JOB} WHERE id < $1 ORDER BY id DESC LIMIT $2"))
                .bind(before)
                .bind(limit)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            sqlx::query_as(&format!("{SELECT_JOB} ORDER BY id DESC LIMIT $1")).bind(limit).fetch_all(db.pool()).await?
        }
    };
    rows.into_iter().map(JobRecord::try_from).collect()
}

/// URL counts of each of `jobs`.
pub async fn counts(db: &Db, jobs: &[&str]) -> Result<HashMap<String, UrlCounts>, StoreError> {
    let mut out: HashMap<String, UrlCounts> = HashMap::new();
    if jobs.is_empty() {
        return Ok(out);
    }
    let placeholders = (1..=jobs.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT job_id, state, COUNT(*) FROM crawl_urls WHERE job_id IN ({placeholders}) GROUP BY job_id, state"
    );
    let mut query = sqlx::query_as::<_, (String, String, i64)>(&sql);
    for job in jobs {
        query = query.bind(*job);
    }
    for (job, state, n) in query.fetch_all(db.pool()).await? {
        out.entry(job).or_default().add(UrlState::parse(&state)?, n);
    }
    Ok(out)
}

/// Moves a running job to a final status, with why it stopped early if it did;
/// false when it was no longer running.
pub async fn finish_job(
    db: &Db,
    id: &str,
    status: JobStatus,
    stop: Option<&Stop>,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE crawl_jobs SET status = $1, finished_at = $2, updated_at = $2, current_url = NULL, \
         stop_reason = $3, stop_policy = $4 WHERE id = $5 AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(stop.map(|s| s.reason.as_str()))
    .bind(stop.and_then(|s| s.policy.as_deref()))
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_current_url(db: &Db, id: &str, url: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE crawl_jobs SET current_url = $1, updated_at = $2 WHERE id = $3 AND status = 'running'")
        .bind(url)
        .bind(now)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Records the URLs the sitemaps gave, and that they were read.
pub async fn record_sitemap_urls(db: &Db, job: &str, urls: &[NewUrl], now: i64) -> Result<(), StoreError> {
    let mut tx = db.pool().begin().await?;
    insert_urls(&mut tx, job, urls, now).await?;
    sqlx::query("UPDATE crawl_jobs SET sitemaps_read = 1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(job)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What became of a URL to settle.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled<R> {
    Done,
    /// It was no longer queued (settled already, or the job was cancelled):
    /// nothing was written.
    NotQueued,
    /// The gate turned it down: nothing was written, and the URL stays queued.
    Declined(R),
}

/// Settles one queued URL (captured with its page, failed, or excluded) and
/// records the URLs its page led to, at once. `gate` runs inside the
/// transaction once the URL is known to be queued, and before anything is
/// stored: when it declines, nothing is. A URL no longer queued is left as it
/// is, without asking the gate.
#[expect(clippy::too_many_arguments, reason = "one transaction's worth of inputs")]
pub async fn settle<R, G, Fut>(
    db: &Db,
    job: &str,
    url: &str,
    outcome: (UrlState, Option<&str>),
    page: Option<&CrawlPage>,
    discovered: &[NewUrl],
    now: i64,
    gate: G,
) -> Result<Settled<R>, StoreError>
where
    G: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), R>>,
{
    let mut tx = db.pool().begin().await?;
    let done = sqlx::query(
        "UPDATE crawl_urls SET state = $1, reason = $2 WHERE job_id = $3 AND url = $4 AND state = 'queued'",
    )
    .bind(outcome.0.as_str())
    .bind(outcome.1)
    .bind(job)
    .bind(url)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(Settled::NotQueued);
    }
    if let Err(declined) = gate().await {
        tx.rollback().await?;
        return Ok(Settled::Declined(declined));
    }
    if let Some(page) = page {
        insert_page(&mut tx, job, page, now).await?;
    }
    insert_urls(&mut tx, job, discovered, now).await?;
    tx.commit().await?;
    Ok(Settled::Done)
}

/// Settles every URL still queued, as over budget or cancelled.
pub async fn settle_queued(db: &Db, job: &str, state: UrlState) -> Result<u64, StoreError> {
    let done = sqlx::query("UPDATE crawl_urls SET state = $1 WHERE job_id = $2 AND state = 'queued'")
        .bind(state.as_str())
        .bind(job)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

async fn insert_page(tx: &mut Transaction<'_, Any>, job: &str, page: &CrawlPage, now: i64) -> Result<(), StoreError> {
    let links = serde_json::to_string(&page.links).map_err(|e| StoreError::Other(e.to_string()))?;
    sqlx::query(
        "INSERT INTO crawl_pages (job_id, seq, url, final_url, depth, http_status, title, content, links, token_count, \
         raw_token_count, captured_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(job)
    .bind(page.seq)
    .bind(&page.url)
    .bind(&page.final_url)
    .bind(i64::from(page.depth))
    .bind(i64::from(page.http_status))
    .bind(page.title.as_deref())
    .bind(&page.content)
    .bind(links)
    .bind(page.token_count)
    .bind(page.raw_token_count)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rows per statement: 7 parameters each stays far below SQLite's limit.
const URLS_PER_INSERT: usize = 200;

async fn insert_urls(tx: &mut Transaction<'_, Any>, job: &str, urls: &[NewUrl], now: i64) -> Result<(), StoreError> {
    for chunk in urls.chunks(URLS_PER_INSERT) {
        let values = (0..chunk.len())
            .map(|i| {
                let b = i * 7;
                format!("(${}, ${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO crawl_urls (job_id, url, seq, depth, state, reason, discovered_at) VALUES {values} \
             ON CONFLICT (job_id, url) DO NOTHING"
        );
        let mut query = sqlx::query(&sql);
        for u in chunk {
            query = query
                .bind(job)
                .bind(&u.url)
                .bind(u.seq)
                .bind(i64::from(u.depth))
                .bind(u.state.as_str())
                .bind(u.reason)
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Every URL of a job: what a resumed job starts again from.
pub async fn all_urls(db: &Db, job: &str) -> Result<Vec<UrlRecord>, StoreError> {
    urls_after(db, job, 0, i64::MAX).await
}

/// A job's URLs in discovery order, after the `after` sequence number.
pub async fn urls_after(db: &Db, job: &str, after: i64, limit: i64) -> Result<Vec<UrlRecord>, StoreError> {
    let sql =
        "SELECT seq, url, depth, state, reason FROM crawl_urls WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
    let rows: Vec<(i64, String, i64, String, Option<String>)> = rows_after(db, sql, job, after, limit).await?;
    rows.into_iter()
        .map(|(seq, url, depth, state, reason)| {
            Ok(UrlRecord { seq, url, depth: clamp_u32(depth), state: UrlState::parse(&state)?, reason })
        })
        .collect()
}

type PageRow = (i64, String, String, i64, i64, Option<String>, String, String, i64, i64);

/// A job's captured pages in capture order, after the `after` sequence number.
pub async fn pages_after(db: &Db, job: &str, after: i64, limit: i64) -> Result<Vec<CrawlPage>, StoreError> {
    let sql = "SELECT seq, url, final_url, depth, http_status, title, content, links, token_count, raw_token_count \
               FROM crawl_pages WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
    let rows: Vec<PageRow> = rows_after(db, sql, job, after, limit).await?;
    rows.into_iter()
        .map(|r| {
            Ok(CrawlPage {
                seq: r.0,
                status: UrlState::Captured.as_str(),
                url: r.1,
                final_url: r.2,
                depth: clamp_u32(r.3),
                http_status: u16::try_from(r.4).unwrap_or(0),
                title: r.5,
                content: r.6,
                links: serde_json::from_str(&r.7).map_err(|e| StoreError::Other(format!("page links: {e}")))?,
                token_count: r.8,
                raw_token_count: r.9,
            })
        })
        .collect()
}

/// One page of a job's rows by sequence number: `sql` takes the job, `after` and the limit.
async fn rows_after<R>(db: &Db, sql: &str, job: &str, after: i64, limit: i64) -> Result<Vec<R>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    Ok(sqlx::query_as(sql).bind(job).bind(after).bind(limit).fetch_all(db.pool()).await?)
}

/// The sequence number of the last page captured, 0 before the first.
pub async fn last_page_seq(db: &Db, job: &str) -> Result<i64, StoreError> {
    let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM crawl_pages WHERE job_id = $1")
        .bind(job)
        .fetch_one(db.pool())
        .await?;
    Ok(seq)
}

fn clamp_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}
