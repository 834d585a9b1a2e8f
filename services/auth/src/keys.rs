//! API keys: tenant self-service (`/v1/keys`), the first key at onboarding, and the
//! queries behind them. Every query starts from the tenant.

use crate::AuthState;
use crate::credentials::{KEY_PREFIX, digest, generate, shown_prefix};
use anno_api::auth::{AUTH_TOPIC, ApiKey, AuthEvent, CreateKeyRequest, CreatedKey, KeyStatus, RotateKeyRequest};
use anno_api::token::Caller;
use anno_api::{Page, PageQuery, page_from_rows};
use anno_errors::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use anno_store::{Db, StoreError};
use anno_tenancy::{KeyId, Scope, ScopeSet, TenantId, bus_channel, now_ms, parse_rfc3339, rfc3339};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

/// Longest grace period a rotation may give the old key.
const MAX_GRACE_SECONDS: u64 = 7 * 24 * 3600;

pub struct KeyRecord {
    pub id: KeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    pub digest: String,
    pub scopes: ScopeSet,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

type KeyRow = (String, String, String, String, String, String, i64, Option<i64>, Option<i64>, Option<i64>);

const COLUMNS: &str = "id, tenant_id, name, prefix, digest, scopes, created_at, expires_at, revoked_at, last_used_at";

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self, StoreError> {
        Ok(KeyRecord {
            id: r.0.parse().map_err(|e: anno_tenancy::IdError| StoreError::Other(e.to_string()))?,
            tenant_id: r.1.parse().map_err(|e: anno_tenancy::IdError| StoreError::Other(e.to_string()))?,
            name: r.2,
            prefix: r.3,
            digest: r.4,
            scopes: ScopeSet::from_space_separated(&r.5).map_err(StoreError::Other)?,
            created_at: r.6,
            expires_at: r.7,
            revoked_at: r.8,
            last_used_at: r.9,
        })
    }
}

impl KeyRecord {
    fn to_api(&self) -> ApiKey {
        let status = if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now_ms()) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        };
        ApiKey {
            id: self.id.clone(),
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            scopes: self.scopes,
            status,
            created_at: rfc3339(self.created_at),
            expires_at: self.expires_at.map(rfc3339),
            last_used_at: self.last_used_at.map(rfc3339),
            revoked_at: self.revoked_at.map(rfc3339),
        }
    }
}

pub async fn find_by_digest(db: &Db, digest: &str) -> Result<Option<KeyRecord>, StoreError> {
    let row: Option<KeyRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE digest = $1"))
        .bind(digest)
        .fetch_optional(db.pool())
        .await?;
    row.map(KeyRecord::try_from).transpose()
}

async fn find(db: &Db, tenant: &TenantId, id: &str) -> Result<Option<KeyRecord>, StoreError> {
    let row: Option<KeyRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    row.map(KeyRecord::try_from).transpose()
}

async fn list_page(db: &Db, tenant: &TenantId, after: &str, limit: u32) -> Result<Vec<KeyRecord>, StoreError> {
    let rows: Vec<KeyRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(tenant.as_str())
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter().map(KeyRecord::try_from).collect()
}

/// Creates and stores a key; the plaintext is returned here and nowhere else.
async fn insert(
    db: &Db,
    pepper: &str,
    tenant: &TenantId,
    name: &str,
    scopes: ScopeSet,
    expires_at: Option<i64>,
    rotated_from: Option<&str>,
) -> Result<CreatedKey, StoreError> {
    let secret = generate(KEY_PREFIX);
    let record = KeyRecord {
        id: KeyId::generate(),
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        prefix: shown_prefix(&secret, KEY_PREFIX),
        digest: digest(pepper, &secret),
        scopes,
        created_at: now_ms(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, digest, scopes, created_at, expires_at, rotated_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(record.id.as_str())
    .bind(tenant.as_str())
    .bind(&record.name)
    .bind(&record.prefix)
    .bind(&record.digest)
    .bind(scopes.to_space_separated())
    .bind(record.created_at)
    .bind(expires_at)
    .bind(rotated_from)
    .execute(db.pool())
    .await?;
    Ok(CreatedKey { key: record.to_api(), secret })
}

pub async fn record_last_used(db: &Db, key_id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)")
        .bind(at)
        .bind(key_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

async fn announce(state: &AuthState, tenant: &TenantId, key_id: &str) {
    let event = AuthEvent::KeyChanged { tenant_id: Some(tenant.clone()), key_id: key_id.to_owned() };
    if let Err(e) = state.inner.bus.publish(&bus_channel(None, AUTH_TOPIC), &event).await {
        // The gateway's short cache lifetime bounds how long a missed event matters.
        tracing::warn!(error = %e, key.id = %key_id, "publishing a key change failed");
    }
}

fn validate_name(name: &str) -> ApiResult<()> {
    let len = name.trim().chars().count();
    if len == 0 || len > 100 {
        return Err(ApiError::invalid_field("name", "must be 1 to 100 characters"));
    }
    Ok(())
}

/// `POST /internal/v1/tenants/{id}/keys` (admin): a new tenant's first key, every scope.
pub async fn create_first(
    State(state): State<AuthState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<TenantId>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    caller.require_admin()?;
    let created =
        insert(state.db(), state.inner.settings.pepper.expose(), &tenant, "default", ScopeSet::all(), None, None)
            .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /v1/keys`
pub async fn list(
    State(state): State<AuthState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<ApiKey>>> {
    let ctx = caller.tenant(Scope::KeysRead)?;
    let rows = list_page(state.db(), &ctx.tenant_id, page.cursor.as_deref().unwrap_or(""), page.limit()).await?;
    let page = page_from_rows(rows.iter().map(KeyRecord::to_api).collect(), page.limit(), |k| k.id.to_string());
    Ok(Json(page))
}

/// `GET /v1/keys/{id}`
pub async fn get(
    State(state): State<AuthState>,
    caller: Caller,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<Json<ApiKey>> {
    let ctx = caller.tenant(Scope::KeysRead)?;
    let key = find(state.db(), &ctx.tenant_id, &key_id).await?.ok_or_else(|| ApiError::not_found("API key"))?;
    Ok(Json(key.to_api()))
}

/// `POST /v1/keys`: scopes may not exceed the caller's own.
pub async fn create(
    State(state): State<AuthState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let ctx = caller.tenant(Scope::KeysWrite)?;
    validate_name(&request.name)?;
    if request.scopes.is_empty() {
        return Err(ApiError::invalid_field("scopes", "must name at least one scope"));
    }
    if let Some(missing) = request.scopes.iter().find(|s| !ctx.scopes.contains(*s)) {
        return Err(ApiError::insufficient_scope(missing.as_str()));
    }
    let expires_at = match request.expires_at.as_deref() {
        None => None,
        Some(s) => match parse_rfc3339(s) {
            Some(at) if at > now_ms() => Some(at),
            Some(_) => return Err(ApiError::invalid_field("expiresAt", "must be in the future")),
            None => return Err(ApiError::invalid_field("expiresAt", "must be an RFC 3339 timestamp")),
        },
    };
    let created = insert(
        state.db(),
        state.inner.settings.pepper.expose(),
        &ctx.tenant_id,
        request.name.trim(),
        request.scopes,
        expires_at,
        None,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /v1/keys/{id}`: revokes at once, on every gateway within a second.
pub async fn revoke(
    State(state): State<AuthState>,
    caller: Caller,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let ctx = caller.tenant(Scope::KeysWrite)?;
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(ctx.tenant_id.as_str())
            .bind(&key_id)
            .execute(state.db().pool())
            .await
            .map_err(StoreError::from)?;
    if done.rows_affected() == 0 && find(state.db(), &ctx.tenant_id, &key_id).await?.is_none() {
        return Err(ApiError::not_found("API key"));
    }
    announce(&state, &ctx.tenant_id, &key_id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/keys/{id}/rotate`: a new key with the same name and scopes now; the
/// old one keeps working for the grace period.
pub async fn rotate(
    State(state): State<AuthState>,
    caller: Caller,
    ApiPath(key_id): ApiPath<String>,
    ApiJson(request): ApiJson<RotateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let ctx = caller.tenant(Scope::KeysWrite)?;
    if request.grace_period_seconds > MAX_GRACE_SECONDS {
        return Err(ApiError::invalid_field("gracePeriodSeconds", format!("must be at most {MAX_GRACE_SECONDS}")));
    }
    let old = find(state.db(), &ctx.tenant_id, &key_id).await?.ok_or_else(|| ApiError::not_found("API key"))?;
    let now = now_ms();
    if old.revoked_at.is_some() || old.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::conflict("key_inactive", "Only an active key can be rotated."));
    }
    if !old.scopes.is_subset_of(ctx.scopes) {
        return Err(ApiError::insufficient_scope(&old.scopes.to_space_separated()));
    }
    let created = insert(
        state.db(),
        state.inner.settings.pepper.expose(),
        &ctx.tenant_id,
        &old.name,
        old.scopes,
        old.expires_at,
        Some(old.id.as_str()),
    )
    .await?;
    let grace_ends = now + (request.grace_period_seconds as i64) * 1000;
    let ends = old.expires_at.map_or(grace_ends, |at| at.min(grace_ends));
    sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(ends)
        .bind(ctx.tenant_id.as_str())
        .bind(old.id.as_str())
        .execute(state.db().pool())
        .await
        .map_err(StoreError::from)?;
    announce(&state, &ctx.tenant_id, old.id.as_str()).await;
    Ok((StatusCode::CREATED, Json(created)))
}
