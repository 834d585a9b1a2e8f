//! The usage ledger: records of units delivered arrive on the `usage` stream
//! (written by whoever delivered the pages, in the same step that counted them
//! against the quotas) and are stored once each, by id, with a daily roll-up by
//! key. `GET /v1/usage` and the admin view read it.

use crate::TenantState;
use crate::store;
use anno_api::token::Caller;
use anno_bus::{Entry, Handler};
use anno_errors::{ApiError, ApiPath, ApiResult};
use anno_limits::{Limits, UsageRecord, Windows};
use anno_store::{Db, StoreError};
use anno_tenancy::{Scope, TenantId, now_ms, rfc3339};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `YYYY-MM-DD` (UTC) of a time in milliseconds.
fn day(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day())
}

/// Stores records not stored before; returns each tenant's months touched.
pub async fn store(db: &Db, records: &[UsageRecord]) -> Result<Vec<(TenantId, String)>, StoreError> {
    let mut tx = db.pool().begin().await?;
    let mut touched = Vec::new();
    for r in records {
        let units = i64::try_from(r.units).unwrap_or(i64::MAX);
        let inserted = sqlx::query(
            "INSERT INTO usage_records (id, tenant_id, key_id, units, at, source) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&r.id)
        .bind(r.tenant_id.as_str())
        .bind(r.key_id.as_deref())
        .bind(units)
        .bind(r.at)
        .bind(&r.source)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            continue;
        }
        sqlx::query(
            "INSERT INTO usage_daily (tenant_id, day, key_id, units) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, day, key_id) DO UPDATE SET units = usage_daily.units + excluded.units",
        )
        .bind(r.tenant_id.as_str())
        .bind(day(r.at))
        .bind(r.key_id.as_deref().unwrap_or(""))
        .bind(units)
        .execute(&mut *tx)
        .await?;
        let month = Windows::at_ms(r.at).month;
        if !touched.iter().any(|(t, m)| t == &r.tenant_id && m == &month) {
            touched.push((r.tenant_id.clone(), month));
        }
    }
    tx.commit().await?;
    Ok(touched)
}

/// Units of a tenant from `since` (inclusive) to `until` (exclusive), by day prefix.
async fn units_in_days(db: &Db, tenant: &TenantId, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT key_id, CAST(SUM(units) AS BIGINT) FROM usage_daily WHERE tenant_id = $1 AND day LIKE $2 GROUP BY key_id",
    )
    .bind(tenant.as_str())
    .bind(format!("{prefix}%"))
    .fetch_all(db.pool())
    .await?;
    Ok(rows)
}

async fn units_since(db: &Db, tenant: &TenantId, since_ms: i64) -> Result<u64, StoreError> {
    let (units,): (Option<i64>,) =
        sqlx::query_as("SELECT CAST(SUM(units) AS BIGINT) FROM usage_records WHERE tenant_id = $1 AND at >= $2")
            .bind(tenant.as_str())
            .bind(since_ms)
            .fetch_one(db.pool())
            .await?;
    Ok(u64::try_from(units.unwrap_or(0)).unwrap_or(0))
}

/// Starts storing what arrives on the usage stream; after each batch, the
/// month counters are raised to the ledger where they know less.
pub fn consume(db: Db, bus: &anno_bus::Bus, limits: Option<Limits>) -> tokio::task::JoinHandle<()> {
    let consumer = format!("tenant-{}", anno_tenancy::new_id("c"));
    let handler: Handler = Arc::new(move |entries: Vec<Entry>| {
        let (db, limits) = (db.clone(), limits.clone());
        Box::pin(async move {
            let mut records = Vec::with_capacity(entries.len());
            for e in &entries {
                match serde_json::from_str::<UsageRecord>(&e.payload) {
                    Ok(r) => records.push(r),
                    // Retrying cannot mend it: logged and passed over.
                    Err(err) => tracing::error!(error = %err, entry = %e.id, "an unreadable usage record"),
                }
            }
            let touched = store(&db, &records).await?;
            if let Some(limits) = limits {
                for (tenant, month) in touched {
                    let (units, _) = month_units(&db, &tenant, &month).await?;
                    limits.reconcile_month(&tenant, &month, units).await;
                }
            }
            Ok(())
        })
    });
    bus.consume(anno_limits::USAGE_STREAM, "ledger", &consumer, handler)
}

async fn month_units(db: &Db, tenant: &TenantId, month: &str) -> Result<(u64, Vec<(String, i64)>), StoreError> {
    let by_key = units_in_days(db, tenant, month).await?;
    let total = by_key.iter().map(|(_, u)| u64::try_from(*u).unwrap_or(0)).sum();
    Ok((total, by_key))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    tenant_id: TenantId,
    /// The rule units are counted by.
    unit: &'static str,
    windows: Vec<UsageWindow>,
    /// This month's units by API key (`null`: not by a key).
    by_key: Vec<KeyUsage>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageWindow {
    window: &'static str,
    start: String,
    resets_at: String,
    used: u64,
    /// `null` when the plan sets no limit.
    limit: Option<u64>,
    remaining: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyUsage {
    key_id: Option<String>,
    units: u64,
}

pub const UNIT_RULE: &str = "one unit per page delivered; failed or refused requests cost nothing";

async fn usage_of(state: &TenantState, tenant: &TenantId) -> ApiResult<Json<Usage>> {
    let db = &state.inner.db;
    let record = store::find(db, tenant).await?.ok_or_else(|| ApiError::not_found("Tenant"))?;
    let limits = record.limits();
    let now = now_ms();
    let w = Windows::at_ms(now);
    let minute_start = w.minute * 60_000;
    let today = day(now);
    let day_start = now - now.rem_euclid(86_400_000);
    let month_start = now + w.month_reset.as_millis() as i64 - w.month_length.as_millis() as i64;
    let minute = units_since(db, tenant, minute_start).await?;
    let day_units: u64 =
        units_in_days(db, tenant, &today).await?.iter().map(|(_, u)| u64::try_from(*u).unwrap_or(0)).sum();
    let (month, by_key) = month_units(db, tenant, &w.month).await?;
    let window = |window, start: i64, reset: i64, used: u64, limit: Option<u64>| UsageWindow {
        window,
        start: rfc3339(start),
        resets_at: rfc3339(reset),
        used,
        limit,
        remaining: limit.map(|l| l.saturating_sub(used)),
    };
    let mut by_key: BTreeMap<Option<String>, u64> =
        by_key.into_iter().map(|(k, u)| ((!k.is_empty()).then_some(k), u64::try_from(u).unwrap_or(0))).collect();
    by_key.retain(|_, u| *u > 0);
    Ok(Json(Usage {
        tenant_id: tenant.clone(),
        unit: UNIT_RULE,
        windows: vec![
            window("minute", minute_start, minute_start + 60_000, minute, Some(u64::from(limits.units_per_minute))),
            window("day", day_start, day_start + 86_400_000, day_units, None),
            window("month", month_start, now + w.month_reset.as_millis() as i64, month, limits.units_per_month),
        ],
        by_key: by_key.into_iter().map(|(key_id, units)| KeyUsage { key_id, units }).collect(),
    }))
}

/// `GET /v1/usage`: the calling tenant's usage.
pub async fn own(State(state): State<TenantState>, caller: Caller) -> ApiResult<Json<Usage>> {
    let tenant = caller.tenant(Scope::UsageRead)?.tenant_id;
    usage_of(&state, &tenant).await
}

/// `GET /v1/admin/tenants/{id}/usage`.
pub async fn admin(
    State(state): State<TenantState>,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
) -> ApiResult<Json<Usage>> {
    caller.require_admin()?;
    usage_of(&state, &id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day(1_798_761_570_250), "2026-12-31");
        assert_eq!(day(1_798_761_600_000), "2027-01-01");
    }
}
