//! The config service: layered tenant configuration (built-in defaults ←
//! platform base ← plan ← tenant), versioned with history and rollback;
//! feature flags and experiments, also over the OpenFeature Remote Evaluation
//! Protocol; and a notice on the bus for every change, which the gateway and
//! core act on at their next request.

mod flags;
mod handlers;
pub mod schema;
mod store;

use anno_api::server::{Limits, Readiness, finish};
use anno_api::tenant::TenantClient;
use anno_api::token::TokenVerifier;
use anno_bus::Bus;
use anno_store::{Db, Migration};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use std::sync::Arc;

pub use store::{HistoryEntry, Layer};

pub const SERVICE: &str = "config";

pub const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, name: "init", sql: include_str!("../migrations/0001_init.sql") }];

#[derive(Clone)]
pub struct State {
    inner: Arc<Inner>,
}

struct Inner {
    store: store::Store,
    bus: Bus,
    verifier: TokenVerifier,
    tenants: TenantClient,
}

impl FromRef<State> for TokenVerifier {
    fn from_ref(state: &State) -> TokenVerifier {
        state.inner.verifier.clone()
    }
}

impl State {
    /// Over a migrated database; `tenants` answers what plan a tenant is on.
    pub fn new(db: Db, bus: Bus, verifier: TokenVerifier, tenants: TenantClient) -> Self {
        State { inner: Arc::new(Inner { store: store::Store::new(db), bus, verifier, tenants }) }
    }
}

pub fn router(state: State) -> Router {
    let (db, bus) = (state.inner.store.db().clone(), state.inner.bus.clone());
    let routes = Router::new()
        .route("/v1/config", get(handlers::own).patch(handlers::patch_own))
        .route("/v1/admin/config", get(handlers::get_platform).put(handlers::put_platform))
        .route("/v1/admin/config/history", get(handlers::platform_history))
        .route("/v1/admin/config/plans/{plan}", get(handlers::get_plan).put(handlers::put_plan))
        .route("/v1/admin/tenants/{tenant_id}/config", get(handlers::get_tenant).put(handlers::put_tenant))
        .route("/v1/admin/tenants/{tenant_id}/config/history", get(handlers::tenant_history))
        .route("/v1/admin/tenants/{tenant_id}/config/rollback", post(handlers::rollback_tenant))
        .route("/v1/admin/flags", get(flags::list))
        .route("/v1/admin/flags/{key}", put(flags::put).get(flags::get).delete(flags::delete))
        .route("/v1/flags", get(flags::evaluate_own))
        .route("/ofrep/v1/evaluate/flags", post(flags::ofrep_bulk))
        .route("/ofrep/v1/evaluate/flags/{key}", post(flags::ofrep_one))
        .route("/internal/v1/config", get(handlers::internal))
        .route("/internal/v1/config/sequence", get(handlers::sequence))
        .route("/internal/v1/config/audit-exports", get(handlers::audit_exports))
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
