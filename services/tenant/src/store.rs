//! Tenant queries. A tenant is read together with its plan's limits and features.

use crate::plans;
use anno_api::tenant::Tenant;
use anno_store::{Db, StoreError};
use anno_tenancy::{LimitOverrides, Plan, TenantId, TenantStatus, rfc3339};

pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub domain: String,
    pub contact_email: String,
    pub plan: Plan,
    pub status: TenantStatus,
    pub trial_ends_at: Option<i64>,
    pub limit_overrides: Option<LimitOverrides>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub purge_after: Option<i64>,
    pub plan_limits: anno_tenancy::Limits,
    pub plan_features: anno_tenancy::Features,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    String,
    String,
);

const SELECT: &str = "SELECT t.id, t.name, t.domain, t.contact_email, t.plan, t.status, t.trial_ends_at, t.limit_overrides, \
     t.created_at, t.updated_at, t.deleted_at, t.purge_after, p.limits, p.features \
     FROM tenants t JOIN plans p ON p.name = t.plan";

impl TryFrom<Row> for TenantRecord {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        let bad = |e: String| StoreError::Other(e);
        let (plan_limits, plan_features) = plans::decode(&r.12, &r.13)?;
        Ok(TenantRecord {
            id: r.0.parse().map_err(|e: anno_tenancy::IdError| bad(e.to_string()))?,
            name: r.1,
            domain: r.2,
            contact_email: r.3,
            plan: r.4.parse().map_err(bad)?,
            status: r.5.parse().map_err(bad)?,
            trial_ends_at: r.6,
            limit_overrides: r.7.map(|o| serde_json::from_str(&o)).transpose().map_err(|e| bad(e.to_string()))?,
            created_at: r.8,
            updated_at: r.9,
            deleted_at: r.10,
            purge_after: r.11,
            plan_limits,
            plan_features,
        })
    }
}

impl TenantRecord {
    pub fn limits(&self) -> anno_tenancy::Limits {
        match &self.limit_overrides {
            Some(o) => self.plan_limits.with_overrides(o),
            None => self.plan_limits.clone(),
        }
    }

    pub fn to_api(&self) -> Tenant {
        Tenant {
            id: self.id.clone(),
            name: self.name.clone(),
            domain: self.domain.clone(),
            contact_email: self.contact_email.clone(),
            plan: self.plan,
            status: self.status,
            trial_ends_at: self.trial_ends_at.map(rfc3339),
            limits: self.limits(),
            limit_overrides: self.limit_overrides.clone(),
            features: self.plan_features.clone(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            deleted_at: self.deleted_at.map(rfc3339),
            purge_after: self.purge_after.map(rfc3339),
        }
    }
}

pub async fn find(db: &Db, id: &TenantId) -> Result<Option<TenantRecord>, StoreError> {
    let row: Option<Row> =
        sqlx::query_as(&format!("{SELECT} WHERE t.id = $1")).bind(id.as_str()).fetch_optional(db.pool()).await?;
    row.map(TenantRecord::try_from).transpose()
}

pub async fn list(
    db: &Db,
    after: &str,
    status: Option<TenantStatus>,
    limit: u32,
) -> Result<Vec<TenantRecord>, StoreError> {
    let rows: Vec<Row> = match status {
        Some(status) => {
            sqlx::query_as(&format!("{SELECT} WHERE t.id > $1 AND t.status = $2 ORDER BY t.id LIMIT $3"))
                .bind(after)
                .bind(status.as_str())
                .bind(i64::from(limit) + 1)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            sqlx::query_as(&format!("{SELECT} WHERE t.id > $1 ORDER BY t.id LIMIT $2"))
                .bind(after)
                .bind(i64::from(limit) + 1)
                .fetch_all(db.pool())
                .await?
        }
    };
    rows.into_iter().map(TenantRecord::try_from).collect()
}

pub async fn insert(db: &Db, t: &TenantRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tenants (id, name, domain, contact_email, plan, status, trial_ends_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(t.id.as_str())
    .bind(&t.name)
    .bind(&t.domain)
    .bind(&t.contact_email)
    .bind(t.plan.as_str())
    .bind(t.status.as_str())
    .bind(t.trial_ends_at)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Removes a tenant whose onboarding failed half-way.
pub async fn remove(db: &Db, id: &TenantId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM tenants WHERE id = $1").bind(id.as_str()).execute(db.pool()).await?;
    Ok(())
}

/// Writes every mutable field of a tenant back.
pub async fn save(db: &Db, t: &TenantRecord) -> Result<(), StoreError> {
    let overrides = t
        .limit_overrides
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    sqlx::query(
        "UPDATE tenants SET name = $1, contact_email = $2, plan = $3, status = $4, trial_ends_at = $5, limit_overrides = $6, \
         updated_at = $7, deleted_at = $8, purge_after = $9 WHERE id = $10",
    )
    .bind(&t.name)
    .bind(&t.contact_email)
    .bind(t.plan.as_str())
    .bind(t.status.as_str())
    .bind(t.trial_ends_at)
    .bind(overrides)
    .bind(t.updated_at)
    .bind(t.deleted_at)
    .bind(t.purge_after)
    .bind(t.id.as_str())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Marks a due trial expired; true when this call did it.
pub async fn expire_trial(db: &Db, id: &TenantId, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE tenants SET status = 'expired', updated_at = $1 WHERE id = $2 AND status = 'trial' AND trial_ends_at <= $1",
    )
    .bind(now)
    .bind(id.as_str())
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn due_trials(db: &Db, now: i64) -> Result<Vec<TenantId>, StoreError> {
    ids(db, "SELECT id FROM tenants WHERE status = 'trial' AND trial_ends_at <= $1", now).await
}

pub async fn due_purges(db: &Db, now: i64) -> Result<Vec<TenantId>, StoreError> {
    ids(db, "SELECT id FROM tenants WHERE deleted_at IS NOT NULL AND purged_at IS NULL AND purge_after <= $1", now)
        .await
}

pub async fn mark_purged(db: &Db, id: &TenantId, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE tenants SET purged_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.as_str())
        .execute(db.pool())
        .await?;
    Ok(())
}

async fn ids(db: &Db, sql: &str, now: i64) -> Result<Vec<TenantId>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(sql).bind(now).fetch_all(db.pool()).await?;
    rows.into_iter()
        .map(|(id,)| id.parse().map_err(|e: anno_tenancy::IdError| StoreError::Other(e.to_string())))
        .collect()
}
