//! The auth service: API keys, tenant users and roles, the platform admin key, and
//! the internal tokens (EdDSA JWTs, keys published as JWKS) every service trusts.

mod admin;
mod credentials;
mod keys;
mod signing;
mod users;
mod verify;

pub use signing::Signer;

use anno_api::server::{Limits, Readiness, finish};
use anno_api::token::{KeySource, TokenVerifier};
use anno_bus::Bus;
use anno_store::{Db, Migration};
use anno_tenancy::Secret;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{delete, get, post};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub const SERVICE: &str = "auth";

pub const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, name: "init", sql: include_str!("../migrations/0001_init.sql") }];

/// What the auth service is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Keys API keys and admin keys are digested with (HMAC-SHA-256).
    pub pepper: Secret,
    /// The bootstrap admin secret; generated and printed once when unset.
    pub admin_key: Option<Secret>,
    pub internal_token_ttl: Duration,
    pub access_token_ttl: Duration,
    /// How often `lastUsedAt` is written back.
    pub last_used_flush: Duration,
    /// What the platform's own services prove themselves with to get a
    /// service token; none: no service token is given.
    pub service_secret: Option<Secret>,
}

#[derive(Clone)]
pub struct AuthState {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    bus: Bus,
    settings: Settings,
    signer: Signer,
    verifier: TokenVerifier,
    last_used: Mutex<HashMap<String, i64>>,
}

impl FromRef<AuthState> for TokenVerifier {
    fn from_ref(state: &AuthState) -> TokenVerifier {
        state.inner.verifier.clone()
    }
}

impl AuthState {
    /// Loads (or creates) the signing keys and the admin key, and starts
    /// the background writer of `lastUsedAt`.
    pub async fn new(db: Db, bus: Bus, settings: Settings) -> anyhow::Result<Self> {
        let signer = Signer::load(&db).await?;
        admin::bootstrap(&db, &settings).await?;
        let keys_db = db.clone();
        let verifier = TokenVerifier::new(KeySource::Local(Arc::new(move || {
            let db = keys_db.clone();
            Box::pin(async move { signing::published_jwks(&db).await.map_err(|e| e.to_string()) })
        })));
        let state =
            AuthState { inner: Arc::new(Inner { db, bus, settings, signer, verifier, last_used: Mutex::default() }) };
        spawn_last_used_writer(Arc::downgrade(&state.inner));
        Ok(state)
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Writes pending `lastUsedAt` values now.
    pub async fn flush_last_used(&self) {
        flush(&self.inner).await;
    }
}

fn spawn_last_used_writer(inner: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            let period = match inner.upgrade() {
                Some(inner) => inner.settings.last_used_flush,
                None => return,
            };
            tokio::time::sleep(period).await;
            let Some(inner) = inner.upgrade() else { return };
            flush(&inner).await;
        }
    });
}

async fn flush(inner: &Inner) {
    let pending: Vec<(String, i64)> = match inner.last_used.lock() {
        Ok(mut map) => map.drain().collect(),
        Err(_) => return,
    };
    for (key_id, at) in pending {
        if let Err(e) = keys::record_last_used(&inner.db, &key_id, at).await {
            tracing::warn!(error = %e, key.id = %key_id, "writing lastUsedAt failed");
        }
    }
}

/// The auth service's routes.
pub fn router(state: AuthState) -> Router {
    let db = state.inner.db.clone();
    let bus = state.inner.bus.clone();
    let routes = Router::new()
        .route("/internal/v1/verify", post(verify::verify))
        .route("/internal/v1/jwks", get(signing::jwks))
        .route("/internal/v1/service-token", post(verify::service_token))
        .route("/.well-known/jwks.json", get(signing::jwks))
        .route("/internal/v1/tenants/{tenant_id}/keys", post(keys::create_first))
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route("/v1/keys/{key_id}", get(keys::get).delete(keys::revoke))
        .route("/v1/keys/{key_id}/rotate", post(keys::rotate))
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/{user_id}", delete(users::disable))
        .route("/internal/v1/tenants/{tenant_id}/users", post(users::admin_create))
        .route("/v1/auth/login", post(users::login))
        .with_state(state);
    let readiness = Readiness::new(move || {
        let (db, bus) = (db.clone(), bus.clone());
        async move {
            db.ping().await.map_err(|e| e.to_string())?;
            bus.ping().await.map_err(|e| e.to_string())
        }
    });
    finish(SERVICE, routes, readiness, Limits::default())
}
