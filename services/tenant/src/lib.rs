//! The tenant service: tenants, plans, onboarding, trial expiry and the purge of
//! deleted tenants' data after their retention period.

mod handlers;
mod plans;
mod store;
mod tasks;

use anno_api::auth::AuthClient;
use anno_api::server::{Limits, Readiness, finish};
use anno_api::token::TokenVerifier;
use anno_bus::Bus;
use anno_store::{Db, Migration};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE: &str = "tenant";

pub const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, name: "init", sql: include_str!("../migrations/0001_init.sql") }];

#[derive(Clone, Debug)]
pub struct Settings {
    pub trial_days: u32,
    /// How often trials are expired and deleted tenants purged.
    pub sweep_interval: Duration,
}

#[derive(Clone)]
pub struct TenantState {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    bus: Bus,
    auth: AuthClient,
    verifier: TokenVerifier,
    settings: Settings,
}

impl FromRef<TenantState> for TokenVerifier {
    fn from_ref(state: &TenantState) -> TokenVerifier {
        state.inner.verifier.clone()
    }
}

impl TenantState {
    /// Seeds the default plans (the schema must be migrated), and starts the periodic sweep.
    pub async fn new(
        db: Db,
        bus: Bus,
        auth: AuthClient,
        verifier: TokenVerifier,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        plans::seed(&db).await?;
        let state = TenantState { inner: Arc::new(Inner { db, bus, auth, verifier, settings }) };
        tasks::spawn_sweeper(Arc::downgrade(&state.inner));
        Ok(state)
    }

    /// Runs one sweep now: expires due trials, purges due deletions.
    pub async fn sweep(&self) -> anyhow::Result<()> {
        tasks::sweep(&self.inner).await
    }
}

pub fn router(state: TenantState) -> Router {
    let db = state.inner.db.clone();
    let bus = state.inner.bus.clone();
    let routes = Router::new()
        .route("/v1/admin/tenants", get(handlers::list).post(handlers::create))
        .route("/v1/admin/tenants/{tenant_id}", get(handlers::get).patch(handlers::update).delete(handlers::delete))
        .route("/v1/admin/tenants/{tenant_id}/users", post(handlers::create_user))
        .route("/v1/admin/plans", get(plans::list))
        .route("/v1/admin/plans/{plan}", put(plans::update))
        .route("/internal/v1/tenants/{tenant_id}", get(handlers::get_internal))
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
