//! The tenant service: tenants, plans, onboarding, trial expiry and the purge of
//! deleted tenants' data after their retention period.

mod handlers;
mod plans;
mod store;
mod tasks;
mod usage;

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

pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../migrations/0001_init.sql") },
    Migration { version: 2, name: "usage", sql: include_str!("../migrations/0002_usage.sql") },
];

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
    /// Stores the usage stream into the ledger; stopped with the service.
    ledger: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ledger.abort();
    }
}

impl FromRef<TenantState> for TokenVerifier {
    fn from_ref(state: &TenantState) -> TokenVerifier {
        state.inner.verifier.clone()
    }
}

impl TenantState {
    /// Seeds the default plans (the schema must be migrated), and starts the
    /// periodic sweep and the usage ledger. `limits` are the counters the
    /// ledger reconciles the month with.
    pub async fn new(
        db: Db,
        bus: Bus,
        auth: AuthClient,
        verifier: TokenVerifier,
        limits: Option<anno_limits::Limits>,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        plans::seed(&db).await?;
        let ledger = usage::consume(db.clone(), &bus, limits);
        let state = TenantState { inner: Arc::new(Inner { db, bus, auth, verifier, settings, ledger }) };
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
        .route("/v1/admin/tenants/{tenant_id}/usage", get(usage::admin))
        .route("/v1/usage", get(usage::own))
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
