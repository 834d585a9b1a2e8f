//! Feature flags: admin CRUD, evaluation for the caller (`/v1/flags`), and the
//! OpenFeature Remote Evaluation Protocol (`/ofrep/v1/...`).
//!
//! Flags target tenants: whatever `targetingKey` an OFREP request sends, the
//! tenant the credential belongs to is the one evaluated (and bucketed), with
//! its plan from its record; the request's other context attributes feed the
//! rules' attribute criteria.

use crate::State;
use crate::handlers::etagged;
use crate::store::{self, StoredFlag};
use anno_api::tenant::Tenant;
use anno_api::token::Caller;
use anno_errors::{ApiError, ApiJson, ApiPath, ApiResult, FieldError};
use anno_flags::{
    Evaluation, EvaluationContext, FlagDefinition, OfrepBulk, OfrepBulkFailure, OfrepError, OfrepRequest, OfrepSuccess,
    evaluate_all,
};
use anno_tenancy::Scope;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus::IntCounterVec;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

type S = AxumState<State>;

/// `anno_flag_evaluations_total{flag, variant}`: exposures, counted where a
/// caller is told a value (`/v1/flags`, OFREP).
fn exposures() -> &'static IntCounterVec {
    static METRIC: OnceLock<IntCounterVec> = OnceLock::new();
    METRIC.get_or_init(|| {
        anno_telemetry::counter_vec(
            "anno_flag_evaluations_total",
            "Flag evaluations returned to callers, by flag and variant (experiment exposures).",
            &["flag", "variant"],
        )
    })
}

fn expose(key: &str, evaluation: &Evaluation) {
    exposures().with_label_values(&[key, evaluation.variant.as_deref().unwrap_or("none")]).inc();
}

fn context(tenant: &Tenant, attributes: Map<String, Value>) -> EvaluationContext {
    let mut ctx = EvaluationContext::new(tenant.id.as_str()).with_plan(tenant.plan.as_str());
    ctx.attributes = attributes;
    ctx.attributes.insert("domain".into(), Value::String(tenant.domain.clone()));
    ctx.attributes.insert("status".into(), Value::String(tenant.status.as_str().into()));
    ctx
}

impl State {
    async fn definitions(&self) -> ApiResult<BTreeMap<String, FlagDefinition>> {
        Ok(self.inner.store.flags().await?.into_iter().map(|f| (f.key, f.definition)).collect())
    }

    /// Every flag's value for a tenant, as the gateway and core keep it.
    pub(crate) async fn flag_values(&self, tenant: &Tenant) -> ApiResult<BTreeMap<String, Value>> {
        let definitions = self.definitions().await?;
        Ok(evaluate_all(&definitions, &context(tenant, Map::new())).into_iter().map(|(k, e)| (k, e.value)).collect())
    }

    async fn caller_tenant(&self, caller: &Caller) -> ApiResult<Tenant> {
        let ctx = caller.tenant(Scope::ConfigRead)?;
        self.tenant(caller, &ctx.tenant_id).await
    }
}

/// `GET /v1/admin/flags`.
pub async fn list(state: S, caller: Caller) -> ApiResult<Json<Vec<StoredFlag>>> {
    caller.require_admin()?;
    Ok(Json(state.inner.store.flags().await?))
}

/// `GET /v1/admin/flags/{key}`.
pub async fn get(state: S, caller: Caller, ApiPath(key): ApiPath<String>) -> ApiResult<Json<StoredFlag>> {
    caller.require_admin()?;
    let flags = state.inner.store.flags().await?;
    flags.into_iter().find(|f| f.key == key).map(Json).ok_or_else(|| ApiError::not_found("Flag"))
}

/// `PUT /v1/admin/flags/{key}`: creates or replaces a flag.
pub async fn put(
    state: S,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<StoredFlag>> {
    caller.require_admin()?;
    let definition: FlagDefinition = serde_json::from_value(body)
        .map_err(|e| ApiError::invalid_fields(vec![FieldError { path: "$".into(), message: e.to_string() }]))?;
    definition.validate(&key).map_err(|errors| {
        ApiError::invalid_fields(errors.into_iter().map(|e| FieldError { path: e.path, message: e.message }).collect())
    })?;
    let (version, seq) = state
        .inner
        .store
        .put_flag(&key, Some(&definition), &caller.claims.sub)
        .await?
        .ok_or_else(|| ApiError::internal("a flag write stored nothing"))?;
    state.announce(seq, &store::flag_scope(&key), None).await;
    let stored = state.inner.store.flags().await?.into_iter().find(|f| f.key == key && f.version == version);
    stored.map(Json).ok_or_else(|| ApiError::conflict("flag_changed", "The flag changed again meanwhile; read it."))
}

/// `DELETE /v1/admin/flags/{key}`.
pub async fn delete(state: S, caller: Caller, ApiPath(key): ApiPath<String>) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let (_, seq) =
        state.inner.store.put_flag(&key, None, &caller.claims.sub).await?.ok_or_else(|| ApiError::not_found("Flag"))?;
    state.announce(seq, &store::flag_scope(&key), None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// One flag's value for the caller, in `/v1/flags`.
#[derive(Serialize)]
pub struct FlagValue {
    #[serde(flatten)]
    evaluation: Evaluation,
}

#[derive(Serialize)]
pub struct FlagValues {
    flags: BTreeMap<String, FlagValue>,
}

/// `GET /v1/flags`: every flag evaluated for the caller's tenant.
pub async fn evaluate_own(state: S, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let tenant = state.caller_tenant(&caller).await?;
    let definitions = state.definitions().await?;
    let flags = evaluate_all(&definitions, &context(&tenant, Map::new()))
        .into_iter()
        .map(|(key, evaluation)| {
            expose(&key, &evaluation);
            (key, FlagValue { evaluation })
        })
        .collect();
    Ok(etagged(&headers, &FlagValues { flags }))
}

fn ofrep_status(code: anno_flags::OfrepErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn ofrep_one(state: S, caller: Caller, ApiPath(key): ApiPath<String>, body: Bytes) -> ApiResult<Response> {
    let tenant = state.caller_tenant(&caller).await?;
    let request = match OfrepRequest::parse(&body) {
        Ok(request) => request,
        Err(e) => {
            let error = OfrepError::from_request(&key, &e);
            return Ok((ofrep_status(error.error_code), Json(error)).into_response());
        }
    };
    let definitions = state.definitions().await?;
    let Some(definition) = definitions.get(&key) else {
        let error = OfrepError::flag_not_found(&key);
        return Ok((ofrep_status(error.error_code), Json(error)).into_response());
    };
    let evaluation = definition.evaluate(&key, &context(&tenant, request.attributes));
    expose(&key, &evaluation);
    Ok(Json(OfrepSuccess::new(&key, &evaluation)).into_response())
}

/// `POST /ofrep/v1/evaluate/flags`: every flag, with an `ETag` so a provider
/// polling with `If-None-Match` gets `304` while nothing changed.
pub async fn ofrep_bulk(state: S, caller: Caller, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let tenant = state.caller_tenant(&caller).await?;
    let request = match OfrepRequest::parse(&body) {
        Ok(request) => request,
        Err(e) => {
            let failure = OfrepBulkFailure::from(&e);
            return Ok((ofrep_status(failure.error_code), Json(failure)).into_response());
        }
    };
    let definitions = state.definitions().await?;
    let evaluations = evaluate_all(&definitions, &context(&tenant, request.attributes));
    for (key, evaluation) in &evaluations {
        expose(key, evaluation);
    }
    Ok(etagged(&headers, &OfrepBulk::from_evaluations(evaluations)))
}
