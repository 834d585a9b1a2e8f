//! The auth service's contract: API keys, users, login, verification, JWKS.

use crate::client::{CallError, ServiceClient};
use crate::token::PrincipalKind;
use anno_tenancy::now_ms;
use anno_tenancy::{KeyId, Role, ScopeSet, Secret, TenantId, UserId};
use http::Method;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An API key as listed: never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: KeyId,
    pub name: String,
    /// The first characters of the key, to recognise it (`anno_live_AbCd1234`).
    pub prefix: String,
    pub scopes: ScopeSet,
    pub status: KeyStatus,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

/// A key just created: the only response that ever carries the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret; shown once.
    #[serde(rename = "key")]
    pub secret: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub name: String,
    pub scopes: ScopeSet,
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// How long the old key keeps working; 0 ends it now.
    #[serde(default)]
    pub grace_period_seconds: u64,
}

/// A credential to verify: an API key, an admin key, or a user access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    pub credential: String,
}

/// Who a credential belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub kind: PrincipalKind,
    /// Key id, user id or admin key id.
    pub id: String,
    pub name: String,
    pub tenant_id: Option<TenantId>,
    pub scopes: ScopeSet,
    /// When the credential stops working (ms since the epoch), if it does.
    pub expires_at_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub principal: Principal,
    /// An internal token for this principal, to forward to services.
    pub token: String,
    pub token_expires_at_ms: i64,
}

/// `POST /internal/v1/service-token`: a platform service asks for a token of its
/// own, with the service secret as its bearer credential.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceTokenRequest {
    /// The asking service's name (`tenant`, `core`, …), the token's subject.
    pub service: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceToken {
    pub token: String,
    pub token_expires_at_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    pub role: Role,
    pub password: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub scopes: ScopeSet,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    pub tenant_id: TenantId,
    pub email: String,
    pub password: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub user: User,
}

/// Events the auth service publishes on `platform:auth`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AuthEvent {
    /// A key stopped working or its expiry moved: drop cached verifications.
    #[serde(rename = "key.changed", rename_all = "camelCase")]
    KeyChanged { tenant_id: Option<TenantId>, key_id: String },
}

pub const AUTH_TOPIC: &str = "auth";

/// Typed client of the auth service.
#[derive(Clone)]
pub struct AuthClient(pub ServiceClient);

impl AuthClient {
    pub async fn verify(&self, credential: &str) -> Result<VerifyResponse, CallError> {
        let body = VerifyRequest { credential: credential.to_owned() };
        self.0.call(Method::POST, "/internal/v1/verify", None, Some(&body)).await
    }

    pub async fn jwks(&self) -> Result<JwkSet, CallError> {
        self.0.call(Method::GET, "/internal/v1/jwks", None, None::<&()>).await
    }

    /// A token for a platform service, given the service secret.
    pub async fn service_token(&self, secret: &Secret, service: &str) -> Result<ServiceToken, CallError> {
        let body = ServiceTokenRequest { service: service.to_owned() };
        self.0.call(Method::POST, "/internal/v1/service-token", Some(secret.expose()), Some(&body)).await
    }

    /// Creates a user of a tenant, as a platform admin.
    pub async fn create_user(
        &self,
        admin_token: &str,
        tenant: &TenantId,
        request: &CreateUserRequest,
    ) -> Result<User, CallError> {
        let path = format!("/internal/v1/tenants/{tenant}/users");
        self.0.call(Method::POST, &path, Some(admin_token), Some(request)).await
    }

    /// Creates a tenant's first key, with every scope. `admin_token` is the
    /// calling admin's internal token.
    pub async fn create_first_key(&self, admin_token: &str, tenant: &TenantId) -> Result<CreatedKey, CallError> {
        let path = format!("/internal/v1/tenants/{tenant}/keys");
        self.0.call(Method::POST, &path, Some(admin_token), None::<&()>).await
    }
}

/// A platform service's own identity: what it acts as when no tenant's request
/// is behind a call (a background task reading a tenant's settings). Holds a
/// token from auth and asks for a new one shortly before it expires.
#[derive(Clone)]
pub struct ServiceIdentity {
    auth: AuthClient,
    service: String,
    secret: Secret,
    token: Arc<tokio::sync::Mutex<Option<ServiceToken>>>,
}

/// How long before its expiry a service token is replaced.
const RENEW_BEFORE_MS: i64 = 30_000;

impl ServiceIdentity {
    pub fn new(auth: AuthClient, service: &str, secret: Secret) -> Self {
        ServiceIdentity { auth, service: service.to_owned(), secret, token: Arc::default() }
    }

    /// A token valid for at least a little while yet.
    pub async fn token(&self) -> Result<String, CallError> {
        let mut held = self.token.lock().await;
        if let Some(token) = held.as_ref().filter(|t| t.token_expires_at_ms - RENEW_BEFORE_MS > now_ms()) {
            return Ok(token.token.clone());
        }
        let fresh = self.auth.service_token(&self.secret, &self.service).await?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }
}
