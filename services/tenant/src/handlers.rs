//! `/v1/admin/tenants` and the internal read the gateway uses.

use crate::store::{self, TenantRecord};
use crate::{TenantState, tasks};
use anno_api::auth::{CreateUserRequest, User};
use anno_api::tenant::{CreateTenantRequest, CreateTenantResponse, Tenant, UpdateTenantRequest};
use anno_api::token::Caller;
use anno_api::{Page, PageQuery, page_from_rows};
use anno_errors::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, FieldError};
use anno_store::StoreError;
use anno_tenancy::{Plan, PlanCatalog, TenantId, TenantStatus, now_ms, parse_rfc3339};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn validate(request: &CreateTenantRequest) -> ApiResult<(String, String, String)> {
    let mut errors = Vec::new();
    let mut bad =
        |path: &str, message: &str| errors.push(FieldError { path: path.to_owned(), message: message.to_owned() });
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        bad("name", "must be 1 to 200 characters");
    }
    let domain = request.domain.trim().trim_end_matches('.').to_lowercase();
    if !is_domain(&domain) {
        bad("domain", "must be a domain name such as example.com");
    }
    let email = request.contact_email.trim().to_lowercase();
    if !is_email(&email) {
        bad("contactEmail", "must be an email address");
    }
    if errors.is_empty() { Ok((name, domain, email)) } else { Err(ApiError::invalid_fields(errors)) }
}

fn is_domain(domain: &str) -> bool {
    domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_email(email: &str) -> bool {
    email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && is_domain(domain))
}

/// `POST /v1/admin/tenants`: creates the tenant, its own storage and its first key.
pub async fn create(
    State(state): State<TenantState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTenantRequest>,
) -> ApiResult<(StatusCode, Json<CreateTenantResponse>)> {
    caller.require_admin()?;
    let (name, domain, contact_email) = validate(&request)?;
    let plan = request.plan.unwrap_or(Plan::Trial);
    let now = now_ms();
    let trial = plan == Plan::Trial;
    let id = TenantId::generate();
    let defaults = PlanCatalog::defaults()
        .into_iter()
        .find(|p| p.plan == plan)
        .ok_or_else(|| ApiError::internal("plan without defaults"))?;
    let record = TenantRecord {
        id: id.clone(),
        name,
        domain,
        contact_email,
        plan,
        status: if trial { TenantStatus::Trial } else { TenantStatus::Active },
        trial_ends_at: trial.then(|| now + i64::from(state.inner.settings.trial_days) * DAY_MS),
        limit_overrides: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        purge_after: None,
        // Not stored with the tenant: read back from the plan below.
        plan_limits: defaults.limits,
        plan_features: defaults.features,
    };
    match store::insert(&state.inner.db, &record).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict("tenant_exists", "A tenant with this domain already exists."));
        }
        Err(e) => return Err(e.into()),
    }
    let onboarded = async {
        state.inner.db.provision_tenant(&id).await.map_err(ApiError::from)?;
        state.inner.auth.create_first_key(&caller.token, &id).await.map_err(|e| e.into_api_error())
    }
    .await;
    let api_key = match onboarded {
        Ok(key) => key,
        Err(e) => {
            // Leave nothing half-made behind.
            let _ = state.inner.db.drop_tenant(&id).await;
            let _ = store::remove(&state.inner.db, &id).await;
            return Err(e);
        }
    };
    let tenant = load(&state, &id).await?;
    tracing::info!(tenant.id = %id, plan = plan.as_str(), "tenant onboarded");
    Ok((StatusCode::CREATED, Json(CreateTenantResponse { tenant, api_key })))
}

/// Reads a tenant, expiring its trial first when due.
async fn load_record(state: &TenantState, id: &TenantId) -> ApiResult<TenantRecord> {
    let record = store::find(&state.inner.db, id).await?.ok_or_else(|| ApiError::not_found("Tenant"))?;
    let now = now_ms();
    if record.status == TenantStatus::Trial && record.trial_ends_at.is_some_and(|at| at <= now) {
        if store::expire_trial(&state.inner.db, id, now).await? {
            tasks::announce(&state.inner, id).await;
        }
        return store::find(&state.inner.db, id).await?.ok_or_else(|| ApiError::not_found("Tenant"));
    }
    Ok(record)
}

async fn load(state: &TenantState, id: &TenantId) -> ApiResult<Tenant> {
    load_record(state, id).await.map(|r| r.to_api())
}

/// `GET /v1/admin/tenants/{id}`
pub async fn get(
    State(state): State<TenantState>,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
) -> ApiResult<Json<Tenant>> {
    caller.require_admin()?;
    Ok(Json(load(&state, &id).await?))
}

/// `GET /internal/v1/tenants/{id}`: a tenant's own view (or an admin's). Another
/// tenant's id answers 404.
pub async fn get_internal(
    State(state): State<TenantState>,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
) -> ApiResult<Json<Tenant>> {
    if !caller.may_access(&id) {
        return Err(ApiError::not_found("Tenant"));
    }
    Ok(Json(load(&state, &id).await?))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
    status: Option<TenantStatus>,
}

/// `GET /v1/admin/tenants`
pub async fn list(
    State(state): State<TenantState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Tenant>>> {
    caller.require_admin()?;
    let page = PageQuery { cursor: query.cursor, limit: query.limit };
    let rows = store::list(&state.inner.db, page.cursor.as_deref().unwrap_or(""), query.status, page.limit()).await?;
    let now = now_ms();
    let mut tenants = Vec::with_capacity(rows.len());
    for record in rows {
        let due = record.status == TenantStatus::Trial && record.trial_ends_at.is_some_and(|at| at <= now);
        tenants.push(if due { load(&state, &record.id).await? } else { record.to_api() });
    }
    Ok(Json(page_from_rows(tenants, page.limit(), |t| t.id.to_string())))
}

/// `PATCH /v1/admin/tenants/{id}`: plan (limits and features follow), status,
/// trial end, custom limits (enterprise), name and contact.
pub async fn update(
    State(state): State<TenantState>,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
    ApiJson(request): ApiJson<UpdateTenantRequest>,
) -> ApiResult<Json<Tenant>> {
    caller.require_admin()?;
    let mut t = load_record(&state, &id).await?;
    if t.status == TenantStatus::Deleted {
        return Err(ApiError::conflict("tenant_deleted", "A deleted tenant cannot be changed."));
    }
    let now = now_ms();
    let trial_days = i64::from(state.inner.settings.trial_days);
    if let Some(name) = &request.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ApiError::invalid_field("name", "must be 1 to 200 characters"));
        }
        t.name = name.to_owned();
    }
    if let Some(email) = &request.contact_email {
        let email = email.trim().to_lowercase();
        if !is_email(&email) {
            return Err(ApiError::invalid_field("contactEmail", "must be an email address"));
        }
        t.contact_email = email;
    }
    if let Some(plan) = request.plan {
        t.plan = plan;
        if plan == Plan::Trial {
            if t.status == TenantStatus::Active {
                t.status = TenantStatus::Trial;
                t.trial_ends_at = Some(t.trial_ends_at.unwrap_or(now + trial_days * DAY_MS));
            }
        } else {
            if matches!(t.status, TenantStatus::Trial | TenantStatus::Expired) {
                t.status = TenantStatus::Active;
            }
            t.trial_ends_at = None;
        }
        if plan != Plan::Enterprise {
            t.limit_overrides = None;
        }
    }
    if let Some(ends) = &request.trial_ends_at {
        if t.plan != Plan::Trial {
            return Err(ApiError::invalid_field("trialEndsAt", "only a tenant on the trial plan has a trial end"));
        }
        let at = parse_rfc3339(ends)
            .ok_or_else(|| ApiError::invalid_field("trialEndsAt", "must be an RFC 3339 timestamp"))?;
        t.trial_ends_at = Some(at);
        t.status = match t.status {
            TenantStatus::Suspended => TenantStatus::Suspended,
            _ if at <= now => TenantStatus::Expired,
            _ => TenantStatus::Trial,
        };
    }
    match request.status {
        None => {}
        Some(TenantStatus::Suspended) => t.status = TenantStatus::Suspended,
        // "Active" lifts a suspension; a trial returns to its trial or its expiry.
        Some(TenantStatus::Active) => {
            t.status = match (t.plan, t.trial_ends_at) {
                (Plan::Trial, Some(at)) if at <= now => TenantStatus::Expired,
                (Plan::Trial, _) => TenantStatus::Trial,
                _ => TenantStatus::Active,
            }
        }
        Some(_) => return Err(ApiError::invalid_field("status", "may be set to `active` or `suspended`")),
    }
    if let Some(limits) = request.limits {
        if limits.is_some() && t.plan != Plan::Enterprise {
            return Err(ApiError::invalid_field("limits", "custom limits are for enterprise tenants"));
        }
        t.limit_overrides = limits;
    }
    t.updated_at = now;
    store::save(&state.inner.db, &t).await?;
    tasks::announce(&state.inner, &id).await;
    Ok(Json(load(&state, &id).await?))
}

/// `DELETE /v1/admin/tenants/{id}`: refused from now on; data purged after the
/// plan's retention period.
pub async fn delete(
    State(state): State<TenantState>,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
) -> ApiResult<Json<Tenant>> {
    caller.require_admin()?;
    let mut t = load_record(&state, &id).await?;
    if t.status != TenantStatus::Deleted {
        let now = now_ms();
        t.status = TenantStatus::Deleted;
        t.deleted_at = Some(now);
        t.purge_after = Some(now + i64::from(t.limits().retention_days) * DAY_MS);
        t.updated_at = now;
        store::save(&state.inner.db, &t).await?;
        tasks::announce(&state.inner, &id).await;
        tracing::info!(tenant.id = %id, "tenant deleted");
    }
    Ok(Json(load(&state, &id).await?))
}

/// `POST /v1/admin/tenants/{id}/users`: adds a user (the first owner, say) to a
/// tenant that exists and is not deleted.
pub async fn create_user(
    State(state): State<TenantState>,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    caller.require_admin()?;
    let tenant = load_record(&state, &id).await?;
    if tenant.status == TenantStatus::Deleted {
        return Err(ApiError::conflict("tenant_deleted", "A deleted tenant cannot gain users."));
    }
    let user = state.inner.auth.create_user(&caller.token, &id, &request).await.map_err(|e| e.pass_client_errors())?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_emails_are_checked() {
        assert!(is_domain("example.com"));
        assert!(is_domain("a-b.example.co.uk"));
        for bad in ["", "localhost", "-a.com", "a..com", "exa mple.com", "a_b.com"] {
            assert!(!is_domain(bad), "{bad}");
        }
        assert!(is_email("ops@example.com"));
        assert!(!is_email("ops@localhost"));
        assert!(!is_email("@example.com"));
    }
}
