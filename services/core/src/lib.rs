//! Anno core: fetch, extract, batch and crawl. This foundation holds its state, readiness and the internal-token check every request passes.

use anno_api::server::{Limits, Readiness, finish};
use anno_api::token::{Caller, TokenVerifier};
use anno_bus::Bus;
use anno_errors::ApiError;
use anno_store::Db;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::any;

pub const SERVICE: &str = "core";

#[derive(Clone)]
pub struct State {
    db: Db,
    bus: Bus,
    verifier: TokenVerifier,
}

impl FromRef<State> for TokenVerifier {
    fn from_ref(state: &State) -> TokenVerifier {
        state.verifier.clone()
    }
}

impl State {
    pub fn new(db: Db, bus: Bus, verifier: TokenVerifier) -> Self {
        Self { db, bus, verifier }
    }
}

/// Every request must carry a valid internal token; none reaches an endpoint
/// this service does not have.
async fn unknown_endpoint(_caller: Caller) -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "No such endpoint.")
}

pub fn router(state: State) -> Router {
    let (db, bus) = (state.db.clone(), state.bus.clone());
    let routes = Router::new()
        .route("/v1/{*rest}", any(unknown_endpoint))
        .route("/internal/{*rest}", any(unknown_endpoint))
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
