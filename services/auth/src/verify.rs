//! `POST /internal/v1/verify`: the gateway asks who a credential belongs to and
//! gets an internal token for it. Every failure is the same 401.

use crate::AuthState;
use crate::credentials::{ADMIN_PREFIX, KEY_PREFIX, digest, digests_match, looks_like};
use crate::{admin, keys, users};
use anno_api::auth::{Principal, ServiceToken, ServiceTokenRequest, VerifyRequest, VerifyResponse};
use anno_api::token::{ACCESS_AUDIENCE, INTERNAL_AUDIENCE, PrincipalKind};
use anno_errors::{ApiError, ApiJson, ApiResult};
use anno_tenancy::{ScopeSet, now_ms};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};

pub async fn verify(
    State(state): State<AuthState>,
    ApiJson(request): ApiJson<VerifyRequest>,
) -> ApiResult<Json<VerifyResponse>> {
    let principal = resolve(&state, &request.credential).await?;
    let (token, token_expires_at_ms) = state.inner.signer.sign(
        INTERNAL_AUDIENCE,
        principal.kind,
        &principal.id,
        principal.tenant_id.as_ref(),
        principal.scopes,
        state.inner.settings.internal_token_ttl,
        principal.expires_at_ms,
    )?;
    Ok(Json(VerifyResponse { principal, token, token_expires_at_ms }))
}

/// `POST /internal/v1/service-token`: a token for one of the platform's own
/// services, which proves itself with the service secret. The token names the
/// service, carries no tenant and no scope: only routes that ask for a service
/// caller accept it.
pub async fn service_token(
    State(state): State<AuthState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ServiceTokenRequest>,
) -> ApiResult<Json<ServiceToken>> {
    let settings = &state.inner.settings;
    let expected = settings.service_secret.as_ref().ok_or_else(ApiError::unauthorized)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthorized)?;
    // Digests of equal length, compared in constant time: neither the length
    // nor any prefix of the secret shows in the time taken.
    let pepper = settings.pepper.expose();
    if !digests_match(&digest(pepper, given.trim()), &digest(pepper, expected.expose())) {
        return Err(ApiError::unauthorized());
    }
    let service = request.service.trim();
    let named =
        !service.is_empty() && service.len() <= 32 && service.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    if !named {
        return Err(ApiError::invalid_field("service", "must be a service name: lowercase letters and `-`"));
    }
    let subject = format!("service:{service}");
    let (token, token_expires_at_ms) = state.inner.signer.sign(
        INTERNAL_AUDIENCE,
        PrincipalKind::Service,
        &subject,
        None,
        ScopeSet::default(),
        settings.internal_token_ttl,
        None,
    )?;
    Ok(Json(ServiceToken { token, token_expires_at_ms }))
}

/// Who a credential belongs to, if it is valid now.
pub async fn resolve(state: &AuthState, credential: &str) -> ApiResult<Principal> {
    let pepper = state.inner.settings.pepper.expose();
    if looks_like(credential, KEY_PREFIX) {
        let wanted = digest(pepper, credential);
        let key = keys::find_by_digest(state.db(), &wanted).await?.ok_or_else(ApiError::unauthorized)?;
        let now = now_ms();
        let live =
            digests_match(&key.digest, &wanted) && key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now);
        if !live {
            return Err(ApiError::unauthorized());
        }
        if let Ok(mut pending) = state.inner.last_used.lock() {
            pending.insert(key.id.to_string(), now);
        }
        return Ok(Principal {
            kind: PrincipalKind::Key,
            id: key.id.to_string(),
            name: key.name,
            tenant_id: Some(key.tenant_id),
            scopes: key.scopes,
            expires_at_ms: key.expires_at,
        });
    }
    if credential.split('.').count() == 3 {
        let claims = state.inner.verifier.verify(credential, ACCESS_AUDIENCE).await?;
        let user = users::find_active(state.db(), &claims.sub).await?.ok_or_else(ApiError::unauthorized)?;
        if Some(&user.tenant_id) != claims.ten.as_ref() {
            return Err(ApiError::unauthorized());
        }
        return Ok(Principal {
            kind: PrincipalKind::User,
            id: user.id.to_string(),
            name: user.email.clone(),
            tenant_id: Some(user.tenant_id.clone()),
            scopes: user.role.scopes(),
            expires_at_ms: Some(claims.exp * 1000),
        });
    }
    // A generated admin key has its prefix; a configured one may be any long secret.
    if looks_like(credential, ADMIN_PREFIX) || credential.len() >= 24 {
        let id = admin::find(state.db(), &digest(pepper, credential)).await?.ok_or_else(ApiError::unauthorized)?;
        return Ok(Principal {
            kind: PrincipalKind::Admin,
            id,
            name: "platform admin".to_owned(),
            tenant_id: None,
            scopes: ScopeSet::default(),
            expires_at_ms: None,
        });
    }
    Err(ApiError::unauthorized())
}
