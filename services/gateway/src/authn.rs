//! Authentication and tenant status, cached briefly and invalidated over the bus:
//! a revoked key, a suspension or a plan change reaches every replica at once.

use crate::Settings;
use anno_api::auth::{AUTH_TOPIC, AuthClient, AuthEvent, Principal};
use anno_api::tenant::{TENANTS_TOPIC, Tenant, TenantClient, TenantEvent};
use anno_api::token::PrincipalKind;
use anno_bus::{Bus, BusMessage};
use anno_errors::ApiError;
use anno_tenancy::{TenantId, TenantStatus, bus_channel, now_ms, parse_rfc3339};
use http::{HeaderValue, StatusCode};
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// A credential auth vouched for, with the internal token to forward.
#[derive(Clone, Debug)]
pub struct Verified {
    pub principal: Principal,
    pub token: String,
    pub token_expires_at_ms: i64,
    /// `Bearer <token>`, made once: what every forwarded call carries.
    pub bearer: Option<HeaderValue>,
}

impl Verified {
    pub fn new(principal: Principal, token: String, token_expires_at_ms: i64) -> Self {
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).ok().map(|mut value| {
            // Kept out of `Debug` output and out of HTTP/2 header tables.
            value.set_sensitive(true);
            value
        });
        Verified { principal, token, token_expires_at_ms, bearer }
    }
}

/// The outcome of authenticating one request.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub verified: Arc<Verified>,
    pub tenant: Option<Arc<Tenant>>,
}

#[derive(Clone)]
pub struct Authenticator {
    auth: AuthClient,
    tenant: TenantClient,
    verifications: Cache<CredentialKey, Arc<Verified>>,
    tenants: Cache<TenantId, Arc<Tenant>>,
}

/// A cached token is not used in its last seconds, so it cannot expire in flight.
const TOKEN_MARGIN_MS: i64 = 10_000;

/// A credential's SHA-256: what verifications are cached under (never the
/// credential itself).
type CredentialKey = [u8; 32];

impl Authenticator {
    pub fn new(auth: AuthClient, tenant: TenantClient, bus: &Bus, settings: &Settings) -> Self {
        let authn = Authenticator {
            auth,
            tenant,
            verifications: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.verification_ttl)
                .support_invalidation_closures()
                .build(),
            tenants: Cache::builder().max_capacity(100_000).time_to_live(settings.tenant_ttl).build(),
        };
        tokio::spawn(follow_bus(bus.subscribe(), authn.verifications.clone(), authn.tenants.clone()));
        authn
    }

    /// Who is calling, and may their tenant use the platform now?
    pub async fn authenticate(&self, credential: &str) -> Result<Authenticated, ApiError> {
        let verified = self.verify(credential).await?;
        let tenant = match &verified.principal.tenant_id {
            Some(id) => Some(self.tenant(id, &verified.token).await?),
            None => None,
        };
        if let Some(tenant) = &tenant {
            anno_api::server::record_tenant(&tenant.id);
            check_status(tenant)?;
        }
        Ok(Authenticated { verified, tenant })
    }

    /// Verifies a credential, from the cache when it is still good.
    pub async fn verify(&self, credential: &str) -> Result<Arc<Verified>, ApiError> {
        let key: CredentialKey = Sha256::digest(credential.as_bytes()).into();
        let now = now_ms();
        if let Some(hit) = self.verifications.get(&key) {
            let live = hit.principal.expires_at_ms.is_none_or(|at| at > now)
                && hit.token_expires_at_ms - TOKEN_MARGIN_MS > now;
            if live {
                return Ok(hit);
            }
            self.verifications.invalidate(&key);
            if hit.principal.expires_at_ms.is_some_and(|at| at <= now) {
                return Err(ApiError::unauthorized());
            }
        }
        let answer = self.auth.verify(credential).await.map_err(|e| match e.status() {
            Some(StatusCode::UNAUTHORIZED) | Some(StatusCode::UNPROCESSABLE_ENTITY) | Some(StatusCode::BAD_REQUEST) => {
                ApiError::unauthorized()
            }
            _ => e.into_api_error(),
        })?;
        // The platform's own services never come in through the edge.
        if answer.principal.kind == PrincipalKind::Service {
            return Err(ApiError::unauthorized());
        }
        let verified = Arc::new(Verified::new(answer.principal, answer.token, answer.token_expires_at_ms));
        self.verifications.insert(key, verified.clone());
        Ok(verified)
    }

    /// Drops cached verifications of a key or user.
    pub fn forget_credential(&self, id: &str) {
        forget_credential(&self.verifications, id.to_owned());
    }

    pub fn forget_tenant(&self, id: &TenantId) {
        self.tenants.invalidate(id);
    }

    pub fn forget_all_tenants(&self) {
        self.tenants.invalidate_all();
    }

    async fn tenant(&self, id: &TenantId, token: &str) -> Result<Arc<Tenant>, ApiError> {
        if let Some(hit) = self.tenants.get(id) {
            return Ok(hit);
        }
        let tenant = self.tenant.get(token, id).await.map_err(|e| match e.status() {
            // The tenant is gone: its credentials are no good.
            Some(StatusCode::NOT_FOUND) | Some(StatusCode::UNAUTHORIZED) => ApiError::unauthorized(),
            _ => e.into_api_error(),
        })?;
        let tenant = Arc::new(tenant);
        self.tenants.insert(id.clone(), tenant.clone());
        Ok(tenant)
    }
}

/// Refuses tenants that may not use the platform now.
fn check_status(tenant: &Tenant) -> Result<(), ApiError> {
    let trial_over = || tenant.trial_ends_at.as_deref().and_then(parse_rfc3339).is_some_and(|at| at <= now_ms());
    match tenant.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Trial if !trial_over() => Ok(()),
        TenantStatus::Trial | TenantStatus::Expired => Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "trial_expired",
            "The trial has ended. Choose a plan to keep using Anno.",
        )),
        TenantStatus::Suspended => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "tenant_suspended", "This tenant is suspended. Contact support."))
        }
        TenantStatus::Deleted => Err(ApiError::unauthorized()),
    }
}

/// Applies auth and tenant events to the caches; on a possible loss of messages,
/// forgets everything.
async fn follow_bus(
    mut rx: tokio::sync::broadcast::Receiver<BusMessage>,
    verifications: Cache<CredentialKey, Arc<Verified>>,
    tenants: Cache<TenantId, Arc<Tenant>>,
) {
    let auth_channel = bus_channel(None, AUTH_TOPIC);
    let tenant_channel = bus_channel(None, TENANTS_TOPIC);
    loop {
        match rx.recv().await {
            Ok(BusMessage::Event { channel, payload }) if channel == auth_channel => {
                match serde_json::from_str::<AuthEvent>(&payload) {
                    Ok(AuthEvent::KeyChanged { key_id, .. }) => forget_credential(&verifications, key_id),
                    Err(e) => tracing::warn!(error = %e, "ignoring an unreadable auth event"),
                }
            }
            Ok(BusMessage::Event { channel, payload }) if channel == tenant_channel => {
                match serde_json::from_str::<TenantEvent>(&payload) {
                    Ok(TenantEvent::Changed { tenant_id }) => tenants.invalidate(&tenant_id),
                    Ok(TenantEvent::PlansChanged) => tenants.invalidate_all(),
                    Err(e) => tracing::warn!(error = %e, "ignoring an unreadable tenant event"),
                }
            }
            Ok(BusMessage::Event { .. }) => {}
            Ok(BusMessage::Resync) | Err(RecvError::Lagged(_)) => {
                verifications.invalidate_all();
                tenants.invalidate_all();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

fn forget_credential(verifications: &Cache<CredentialKey, Arc<Verified>>, id: String) {
    if verifications.invalidate_entries_if(move |_, v| v.principal.id == id).is_err() {
        verifications.invalidate_all();
    }
}

/// Whether a principal acts for a tenant (keys and users) or the platform.
pub fn is_admin(a: &Authenticated) -> bool {
    a.verified.principal.kind == PrincipalKind::Admin
}
