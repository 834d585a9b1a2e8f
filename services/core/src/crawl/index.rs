//! The crawl index in core's own schema: every job's tenant and status, and the
//! lease of the core instance working a running job. It is how a starting core
//! finds the jobs to resume without opening every tenant's storage, and how two
//! instances never work one job at once.

use anno_store::sqlx;
use anno_store::{Db, StoreError};
use anno_tenancy::TenantId;

/// Records a new running job, leased to `owner` until `until`.
pub async fn register(
    core: &Db,
    job: &str,
    tenant: &TenantId,
    owner: &str,
    until: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO crawl_index (job_id, tenant_id, status, lease_owner, lease_until, created_at, updated_at) \
         VALUES ($1, $2, 'running', $3, $4, $5, $5)",
    )
    .bind(job)
    .bind(tenant.as_str())
    .bind(owner)
    .bind(until)
    .bind(now)
    .execute(core.pool())
    .await?;
    Ok(())
}

/// Forgets a job whose creation failed half-way.
pub async fn remove(core: &Db, job: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM crawl_index WHERE job_id = $1").bind(job).execute(core.pool()).await?;
    Ok(())
}

/// Running jobs nobody holds a lease on (released, or its holder stopped renewing).
pub async fn orphans(core: &Db, now: i64, limit: i64) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT job_id, tenant_id FROM crawl_index WHERE status = 'running' AND lease_until < $1 \
         ORDER BY job_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(core.pool())
    .await?)
}

/// Takes an orphan's lease; false when another instance took it first.
pub async fn claim(core: &Db, job: &str, owner: &str, until: i64, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE crawl_index SET lease_owner = $1, lease_until = $2, updated_at = $3 \
         WHERE job_id = $4 AND status = 'running' AND lease_until < $3",
    )
    .bind(owner)
    .bind(until)
    .bind(now)
    .bind(job)
    .execute(core.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends a held lease; false when the job is no longer running or no longer ours.
pub async fn renew(core: &Db, job: &str, owner: &str, until: i64, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE crawl_index SET lease_until = $1, updated_at = $2 \
         WHERE job_id = $3 AND lease_owner = $4 AND status = 'running'",
    )
    .bind(until)
    .bind(now)
    .bind(job)
    .bind(owner)
    .execute(core.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a lease back so that another instance (or this one, restarted) may
/// take the job at once.
pub async fn release(core: &Db, job: &str, owner: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE crawl_index SET lease_owner = NULL, lease_until = 0, updated_at = $1 \
         WHERE job_id = $2 AND lease_owner = $3",
    )
    .bind(now)
    .bind(job)
    .bind(owner)
    .execute(core.pool())
    .await?;
    Ok(())
}

/// Records a job's final status.
pub async fn finish(core: &Db, job: &str, status: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE crawl_index SET status = $1, lease_owner = NULL, lease_until = 0, updated_at = $2 WHERE job_id = $3",
    )
    .bind(status)
    .bind(now)
    .bind(job)
    .execute(core.pool())
    .await?;
    Ok(())
}
