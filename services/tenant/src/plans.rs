//! Plans as data: seeded with the defaults, listed and edited by admins.

use crate::TenantState;
use anno_api::token::Caller;
use anno_errors::{ApiError, ApiJson, ApiPath, ApiResult};
use anno_store::{Db, StoreError};
use anno_tenancy::{Features, Limits, Plan, PlanCatalog, now_ms};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

pub async fn seed(db: &Db) -> Result<(), StoreError> {
    for plan in PlanCatalog::defaults() {
        sqlx::query("INSERT INTO plans (name, limits, features, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING")
            .bind(plan.plan.as_str())
            .bind(serde_json::to_string(&plan.limits).map_err(|e| StoreError::Other(e.to_string()))?)
            .bind(serde_json::to_string(&plan.features).map_err(|e| StoreError::Other(e.to_string()))?)
            .bind(now_ms())
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

pub fn decode(limits: &str, features: &str) -> Result<(Limits, Features), StoreError> {
    let bad = |e: serde_json::Error| StoreError::Other(e.to_string());
    Ok((serde_json::from_str(limits).map_err(bad)?, serde_json::from_str(features).map_err(bad)?))
}

async fn all(db: &Db) -> Result<Vec<PlanCatalog>, StoreError> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT name, limits, features FROM plans").fetch_all(db.pool()).await?;
    let mut plans = rows
        .into_iter()
        .map(|(name, limits, features)| {
            let plan: Plan = name.parse().map_err(StoreError::Other)?;
            let (limits, features) = decode(&limits, &features)?;
            Ok(PlanCatalog { plan, limits, features })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    plans.sort_by_key(|p| Plan::ALL.iter().position(|x| *x == p.plan));
    Ok(plans)
}

/// `GET /v1/admin/plans`
pub async fn list(State(state): State<TenantState>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    caller.require_admin()?;
    Ok(Json(serde_json::json!({ "data": all(&state.inner.db).await? })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanUpdate {
    limits: Limits,
    features: Features,
}

/// `PUT /v1/admin/plans/{plan}`: every tenant on the plan follows.
pub async fn update(
    State(state): State<TenantState>,
    caller: Caller,
    ApiPath(plan): ApiPath<Plan>,
    ApiJson(update): ApiJson<PlanUpdate>,
) -> ApiResult<Json<PlanCatalog>> {
    caller.require_admin()?;
    if update.features.iter().any(|f| f.trim().is_empty()) {
        return Err(ApiError::invalid_field("features", "feature names may not be empty"));
    }
    sqlx::query("UPDATE plans SET limits = $1, features = $2, updated_at = $3 WHERE name = $4")
        .bind(serde_json::to_string(&update.limits).map_err(ApiError::internal)?)
        .bind(serde_json::to_string(&update.features).map_err(ApiError::internal)?)
        .bind(now_ms())
        .bind(plan.as_str())
        .execute(state.inner.db.pool())
        .await
        .map_err(StoreError::from)?;
    crate::tasks::announce_all(&state.inner).await;
    Ok(Json(PlanCatalog { plan, limits: update.limits, features: update.features }))
}
