//! Tenant users and roles. Passwords are argon2id, hashed and checked on the
//! blocking pool; login hands out a short-lived access token the gateway accepts
//! like a key, carrying the role's scopes.

use crate::AuthState;
use anno_api::auth::{AUTH_TOPIC, AuthEvent, CreateUserRequest, LoginRequest, LoginResponse, User};
use anno_api::token::{ACCESS_AUDIENCE, Caller, PrincipalKind};
use anno_api::{Page, PageQuery, page_from_rows};
use anno_errors::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use anno_store::{Db, StoreError};
use anno_tenancy::{Role, Scope, TenantContext, TenantId, UserId, bus_channel, now_ms, rfc3339};
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHash};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

const MIN_PASSWORD: usize = 12;
const MAX_PASSWORD: usize = 256;

type UserRow = (String, String, String, Option<String>, String, String, i64);
const COLUMNS: &str = "id, tenant_id, email, name, role, password_hash, created_at";

pub struct UserRecord {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub created_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        let bad = |e: String| StoreError::Other(e);
        Ok(UserRecord {
            id: r.0.parse().map_err(|e: anno_tenancy::IdError| bad(e.to_string()))?,
            tenant_id: r.1.parse().map_err(|e: anno_tenancy::IdError| bad(e.to_string()))?,
            email: r.2,
            name: r.3,
            role: r.4.parse().map_err(bad)?,
            password_hash: r.5,
            created_at: r.6,
        })
    }
}

impl UserRecord {
    fn to_api(&self) -> User {
        User {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            scopes: self.role.scopes(),
            created_at: rfc3339(self.created_at),
        }
    }
}

pub async fn find_active(db: &Db, id: &str) -> Result<Option<UserRecord>, StoreError> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1 AND disabled_at IS NULL"))
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    row.map(UserRecord::try_from).transpose()
}

async fn find_by_email(db: &Db, tenant: &TenantId, email: &str) -> Result<Option<UserRecord>, StoreError> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND email = $2 AND disabled_at IS NULL"
    ))
    .bind(tenant.as_str())
    .bind(email)
    .fetch_optional(db.pool())
    .await?;
    row.map(UserRecord::try_from).transpose()
}

fn normalise_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid { Ok(email) } else { Err(ApiError::invalid_field("email", "must be an email address")) }
}

async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// Checks a password on the blocking pool. With no stored hash it still does the
/// work, so an unknown email takes as long as a wrong password.
async fn password_matches(password: String, stored: Option<String>) -> ApiResult<bool> {
    tokio::task::spawn_blocking(move || {
        let argon = Argon2::default();
        match stored.as_deref().map(PasswordHash::new) {
            Some(Ok(hash)) => argon.verify_password(password.as_bytes(), &hash).is_ok(),
            _ => {
                let salt = SaltString::generate(&mut OsRng);
                let _ = argon.hash_password(password.as_bytes(), &salt);
                false
            }
        }
    })
    .await
    .map_err(ApiError::internal)
}

async fn create_user(state: &AuthState, tenant: &TenantId, request: CreateUserRequest) -> ApiResult<User> {
    let email = normalise_email(&request.email)?;
    let length = request.password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(ApiError::invalid_field(
            "password",
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    let record = UserRecord {
        id: UserId::generate(),
        tenant_id: tenant.clone(),
        email,
        name: request.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
        role: request.role,
        password_hash: hash_password(request.password).await?,
        created_at: now_ms(),
    };
    let inserted = sqlx::query(
        "INSERT INTO users (id, tenant_id, email, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(record.id.as_str())
    .bind(tenant.as_str())
    .bind(&record.email)
    .bind(&record.name)
    .bind(record.role.as_str())
    .bind(&record.password_hash)
    .bind(record.created_at)
    .execute(state.db().pool())
    .await
    .map_err(StoreError::from);
    match inserted {
        Ok(_) => Ok(record.to_api()),
        Err(StoreError::Conflict(_)) => {
            Err(ApiError::conflict("user_exists", "A user with this email already exists."))
        }
        Err(e) => Err(e.into()),
    }
}

fn may_grant(ctx: &TenantContext, role: Role) -> ApiResult<()> {
    match role.scopes().iter().find(|s| !ctx.scopes.contains(*s)) {
        Some(missing) => Err(ApiError::insufficient_scope(missing.as_str())),
        None => Ok(()),
    }
}

/// `POST /v1/users`: needs `keys:write`, and may not grant more than the caller has.
pub async fn create(
    State(state): State<AuthState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let ctx = caller.tenant(Scope::KeysWrite)?;
    may_grant(&ctx, request.role)?;
    Ok((StatusCode::CREATED, Json(create_user(&state, &ctx.tenant_id, request).await?)))
}

/// `POST /internal/v1/tenants/{id}/users`: a platform admin adds a user (the
/// first owner); the tenant service checks the tenant first.
pub async fn admin_create(
    State(state): State<AuthState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<TenantId>,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    caller.require_admin()?;
    Ok((StatusCode::CREATED, Json(create_user(&state, &tenant, request).await?)))
}

/// `GET /v1/users`
pub async fn list(
    State(state): State<AuthState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    let ctx = caller.tenant(Scope::KeysRead)?;
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND id > $2 AND disabled_at IS NULL ORDER BY id LIMIT $3"
    ))
    .bind(ctx.tenant_id.as_str())
    .bind(page.cursor.as_deref().unwrap_or(""))
    .bind(i64::from(page.limit()) + 1)
    .fetch_all(state.db().pool())
    .await
    .map_err(StoreError::from)?;
    let users = rows.into_iter().map(|r| UserRecord::try_from(r).map(|u| u.to_api())).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(page_from_rows(users, page.limit(), |u| u.id.to_string())))
}

/// `DELETE /v1/users/{id}`: the user can no longer log in, and tokens already
/// given out stop working on every gateway.
pub async fn disable(
    State(state): State<AuthState>,
    caller: Caller,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let ctx = caller.tenant(Scope::KeysWrite)?;
    let done =
        sqlx::query("UPDATE users SET disabled_at = $1 WHERE tenant_id = $2 AND id = $3 AND disabled_at IS NULL")
            .bind(now_ms())
            .bind(ctx.tenant_id.as_str())
            .bind(&user_id)
            .execute(state.db().pool())
            .await
            .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found("User"));
    }
    let event = AuthEvent::KeyChanged { tenant_id: Some(ctx.tenant_id.clone()), key_id: user_id };
    if let Err(e) = state.inner.bus.publish(&bus_channel(None, AUTH_TOPIC), &event).await {
        tracing::warn!(error = %e, "publishing a user change failed");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/login`: the same 401 for an unknown email or a wrong password.
pub async fn login(
    State(state): State<AuthState>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let email = request.email.trim().to_lowercase();
    let user = find_by_email(state.db(), &request.tenant_id, &email).await?;
    let ok = password_matches(request.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let user = user.filter(|_| ok).ok_or_else(ApiError::unauthorized)?;
    let ttl = state.inner.settings.access_token_ttl;
    let (token, _) = state.inner.signer.sign(
        ACCESS_AUDIENCE,
        PrincipalKind::User,
        user.id.as_str(),
        Some(&user.tenant_id),
        user.role.scopes(),
        ttl,
        None,
    )?;
    Ok(Json(LoginResponse {
        access_token: token,
        token_type: "Bearer".to_owned(),
        expires_in: ttl.as_secs(),
        user: user.to_api(),
    }))
}
