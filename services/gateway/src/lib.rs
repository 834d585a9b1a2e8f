//! The gateway: the only service facing clients. It authenticates keys and access
//! tokens (with a short cache that the bus keeps honest), authorizes by route
//! scope and tenant status, strips client-sent internal headers, and forwards to
//! the owning service with a short-lived internal token.

mod audit;
mod authn;
mod idempotency;
mod limit;
mod proxy;
mod routes;
pub mod upstream;

pub use authn::{Authenticated, Authenticator};
pub use routes::router;

use anno_api::auth::AuthClient;
use anno_api::config::{ConfigCache, ConfigClient};
use anno_api::tenant::TenantClient;
use anno_api::transport::Transport;
use anno_bus::Bus;
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE: &str = "gateway";

#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a verified credential is trusted without asking auth again. The
    /// bus cuts it short on revocation; this bounds a missed message.
    pub verification_ttl: Duration,
    /// How long a tenant's status and plan are cached; the bus cuts it short too.
    pub tenant_ttl: Duration,
    /// Longest a proxied request may take.
    pub request_timeout: Duration,
    /// Largest request body accepted; larger ones are refused with 413 before
    /// anything else happens.
    pub max_body_bytes: usize,
    /// Proxies whose `X-Forwarded-For` names the client in audit events.
    pub trusted_proxies: anno_audit::TrustedProxies,
    /// How often the config service's change counter is read, to catch a
    /// change notice the bus lost.
    pub config_check_interval: Duration,
}

/// Where each service is reached.
#[derive(Clone)]
pub struct Upstreams {
    pub auth: Transport,
    pub tenant: Transport,
    pub config: Transport,
    pub core: Transport,
}

/// What every route handler shares; cloned for each request (axum hands each
/// handler its own copy), so one reference count rather than a copy of each part.
#[derive(Clone)]
pub struct GatewayState(Arc<Shared>);

impl std::ops::Deref for GatewayState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    authn: Authenticator,
    upstreams: Upstreams,
    bus: Bus,
    limits: anno_limits::Limits,
    idempotency: idempotency::Idempotency,
    /// Tenants' effective configuration (their limit overrides), kept current
    /// by the config service's notices.
    config: ConfigCache,
    settings: Settings,
}

impl GatewayState {
    /// `limits` is shared with core when both run in one process: the units core
    /// charges are the ones the gateway checks.
    pub fn new(upstreams: Upstreams, bus: Bus, limits: anno_limits::Limits, settings: Settings) -> Self {
        let auth = AuthClient(anno_api::client::ServiceClient::new("auth", upstreams.auth.clone()));
        let tenant = TenantClient(anno_api::client::ServiceClient::new("tenant", upstreams.tenant.clone()));
        let authn = Authenticator::new(auth, tenant, &bus, &settings);
        let idempotency = idempotency::Idempotency::new(&bus);
        let config = ConfigClient(anno_api::client::ServiceClient::new("config", upstreams.config.clone()));
        let config = ConfigCache::new(config, &bus, settings.config_check_interval);
        GatewayState(Arc::new(Shared { authn, upstreams, bus, limits, idempotency, config, settings }))
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authn
    }
}
