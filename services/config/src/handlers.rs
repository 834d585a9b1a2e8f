//! The configuration endpoints.

use crate::State;
use crate::schema;
use crate::store::{self, HistoryEntry, Layer, PLATFORM};
use anno_api::config::{
    AuditExport, AuditExports, ConfigChange, EffectiveConfig, PLATFORM_CHANNEL, Sequence, Settings, TenantAuditExport,
    channel,
};
use anno_api::tenant::Tenant;
use anno_api::token::Caller;
use anno_api::{Page, PageQuery};
use anno_errors::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use anno_tenancy::{Plan, Scope, TenantId};
use axum::Json;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

type S = AxumState<State>;

/// A JSON body with a strong `ETag`; `304 Not Modified` when the request's
/// `If-None-Match` names it.
pub(crate) fn etagged(request: &HeaderMap, body: &impl Serialize) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let tag = format!("\"{}\"", &hex::encode(Sha256::digest(&bytes))[..32]);
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*");
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

impl State {
    /// The tenant's record as the tenant service has it (its plan and limits);
    /// 404 for a tenant that does not exist or the caller may not see.
    pub(crate) async fn tenant(&self, caller: &Caller, id: &TenantId) -> ApiResult<Tenant> {
        self.inner.tenants.get(&caller.token, id).await.map_err(|e| e.pass_client_errors())
    }

    /// Every layer of a tenant's configuration merged, and its flags evaluated.
    pub(crate) async fn effective(&self, tenant: &Tenant) -> ApiResult<EffectiveConfig> {
        let (plan, own) = (store::plan_scope(tenant.plan), store::tenant_scope(&tenant.id));
        let layers = self.inner.store.layers(&[PLATFORM, &plan, &own, store::FLAGS]).await?;
        let mut document = schema::defaults();
        for scope in [PLATFORM, plan.as_str(), own.as_str()] {
            if let Some(layer) = layers.get(scope) {
                schema::merge(&mut document, &layer.document);
            }
        }
        let config: Settings = serde_json::from_value(document).map_err(ApiError::internal)?;
        let version = layers.values().map(|l| l.seq).max().unwrap_or(0);
        let flags = self.flag_values(tenant).await?;
        Ok(EffectiveConfig { tenant_id: tenant.id.clone(), plan: tenant.plan, version, config, flags })
    }

    /// Announces a change; replicas that miss the notice catch up by the sequence.
    pub(crate) async fn announce(&self, seq: i64, scope: &str, tenant: Option<&TenantId>) {
        let change = ConfigChange { seq, scope: scope.to_owned() };
        let channel = tenant.map_or_else(|| PLATFORM_CHANNEL.to_owned(), channel);
        if let Err(e) = self.inner.bus.publish(&channel, &change).await {
            tracing::warn!(error = %e, seq, "announcing a config change failed; replicas catch up by the sequence");
        }
    }

    async fn write_layer(
        &self,
        caller: &Caller,
        scope: &str,
        action: &str,
        tenant: Option<&TenantId>,
        change: impl FnOnce(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Layer> {
        let layer = self.inner.store.write(scope, action, &caller.claims.sub, change).await?;
        self.announce(layer.seq, scope, tenant).await;
        Ok(layer)
    }
}

/// A replacement layer, checked; `shared` for the platform and plan layers,
/// which may not hold a tenant's own settings.
fn replacement(document: &Value, shared: bool) -> ApiResult<Value> {
    if !document.is_object() {
        return Err(ApiError::invalid_field("$", "must be an object"));
    }
    let document = schema::normalize(document);
    schema::validate(&document).map_err(ApiError::invalid_fields)?;
    let misplaced = if shared { schema::tenant_only(&document) } else { Vec::new() };
    if !misplaced.is_empty() {
        return Err(ApiError::invalid_fields(misplaced));
    }
    Ok(document)
}

/// `GET /v1/config`: the caller's effective configuration.
pub async fn own(state: S, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let ctx = caller.tenant(Scope::ConfigRead)?;
    let tenant = state.tenant(&caller, &ctx.tenant_id).await?;
    Ok(etagged(&headers, &state.effective(&tenant).await?))
}

/// `PATCH /v1/config`: a merge patch on the tenant's own layer, within its plan.
pub async fn patch_own(state: S, caller: Caller, ApiJson(patch): ApiJson<Value>) -> ApiResult<Json<EffectiveConfig>> {
    let ctx = caller.tenant(Scope::ConfigWrite)?;
    if !patch.is_object() {
        return Err(ApiError::invalid_field("$", "must be an object (a JSON merge patch)"));
    }
    // Where the audit trail goes is for whoever may read it.
    if patch.get("audit").is_some() && !ctx.has(Scope::AuditRead) {
        return Err(ApiError::insufficient_scope(Scope::AuditRead.as_str()));
    }
    let tenant = state.tenant(&caller, &ctx.tenant_id).await?;
    let scope = store::tenant_scope(&tenant.id);
    state
        .write_layer(&caller, &scope, "patch", Some(&tenant.id), |current| {
            let mut next = current.clone();
            schema::apply_patch(&mut next, &patch);
            schema::validate(&next).map_err(ApiError::invalid_fields)?;
            let above = schema::above_plan(&next, &tenant.limits);
            if !above.is_empty() {
                let mut error = ApiError::new(
                    StatusCode::FORBIDDEN,
                    "exceeds_plan",
                    format!("The {} plan does not allow these limits; a tenant may only lower them.", tenant.plan),
                );
                error.errors = above;
                return Err(error);
            }
            Ok(next)
        })
        .await?;
    Ok(Json(state.effective(&tenant).await?))
}

/// `GET /internal/v1/config`: what the gateway and core keep of the caller's tenant.
pub async fn internal(state: S, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let id = caller.claims.ten.clone().ok_or_else(|| ApiError::insufficient_scope("tenant"))?;
    let tenant = state.tenant(&caller, &id).await?;
    Ok(etagged(&headers, &state.effective(&tenant).await?))
}

/// `GET /internal/v1/config/audit-exports`: every tenant's `audit.export`, for
/// the audit exporter. Only a platform service may ask.
pub async fn audit_exports(state: S, caller: Caller) -> ApiResult<Json<AuditExports>> {
    caller.require_service()?;
    let seq = state.inner.store.sequence().await?;
    let mut exports = Vec::new();
    for layer in state.inner.store.tenant_layers().await? {
        let Some(export) = layer.document.pointer("/audit/export") else { continue };
        let Some(tenant_id) = store::scope_tenant(&layer.scope) else { continue };
        match serde_json::from_value::<AuditExport>(export.clone()) {
            Ok(export) => exports.push(TenantAuditExport { tenant_id, export }),
            Err(e) => tracing::warn!(scope = %layer.scope, error = %e, "skipping an unreadable audit export setting"),
        }
    }
    Ok(Json(AuditExports { seq, exports }))
}

/// `GET /internal/v1/config/sequence`: the number of the last change. Carries
/// nothing but a count, so it needs no token: replicas ask it to notice
/// changes whose notice they missed.
pub async fn sequence(state: S) -> ApiResult<Json<Sequence>> {
    Ok(Json(Sequence { seq: state.inner.store.sequence().await? }))
}

async fn layer_or_empty(state: &State, scope: &str) -> ApiResult<Layer> {
    Ok(state.inner.store.layer(scope).await?.unwrap_or_else(|| Layer::empty(scope)))
}

/// `GET /v1/admin/config`: the platform base layer.
pub async fn get_platform(state: S, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    caller.require_admin()?;
    Ok(etagged(&headers, &layer_or_empty(&state, PLATFORM).await?))
}

/// `PUT /v1/admin/config`: replaces the platform base layer.
pub async fn put_platform(state: S, caller: Caller, ApiJson(document): ApiJson<Value>) -> ApiResult<Json<Layer>> {
    caller.require_admin()?;
    let document = replacement(&document, true)?;
    Ok(Json(state.write_layer(&caller, PLATFORM, "put", None, |_| Ok(document)).await?))
}

fn plan(name: &str) -> ApiResult<Plan> {
    name.parse().map_err(|_| ApiError::not_found("Plan"))
}

/// `GET /v1/admin/config/plans/{plan}`: a plan's layer.
pub async fn get_plan(
    state: S,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require_admin()?;
    Ok(etagged(&headers, &layer_or_empty(&state, &store::plan_scope(plan(&name)?)).await?))
}

/// `PUT /v1/admin/config/plans/{plan}`: replaces a plan's layer.
pub async fn put_plan(
    state: S,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(document): ApiJson<Value>,
) -> ApiResult<Json<Layer>> {
    caller.require_admin()?;
    let scope = store::plan_scope(plan(&name)?);
    let document = replacement(&document, true)?;
    Ok(Json(state.write_layer(&caller, &scope, "put", None, |_| Ok(document)).await?))
}

/// A tenant's own layer beside what every layer makes of it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantConfig {
    pub layer: Layer,
    pub effective: EffectiveConfig,
}

/// `GET /v1/admin/tenants/{id}/config`.
pub async fn get_tenant(
    state: S,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let tenant = state.tenant(&caller, &id).await?;
    let layer = layer_or_empty(&state, &store::tenant_scope(&id)).await?;
    Ok(etagged(&headers, &TenantConfig { layer, effective: state.effective(&tenant).await? }))
}

/// `PUT /v1/admin/tenants/{id}/config`: replaces the tenant's layer; limits
/// above the plan's are the admin's to grant.
pub async fn put_tenant(
    state: S,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
    ApiJson(document): ApiJson<Value>,
) -> ApiResult<Json<TenantConfig>> {
    caller.require_admin()?;
    let tenant = state.tenant(&caller, &id).await?;
    let document = replacement(&document, false)?;
    let scope = store::tenant_scope(&id);
    let layer = state.write_layer(&caller, &scope, "put", Some(&id), |_| Ok(document)).await?;
    Ok(Json(TenantConfig { layer, effective: state.effective(&tenant).await? }))
}

async fn history_page(state: &State, scope: &str, query: PageQuery) -> ApiResult<Json<Page<HistoryEntry>>> {
    let before = match &query.cursor {
        Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| ApiError::invalid_field("cursor", "not a cursor"))?),
        None => None,
    };
    let limit = query.limit();
    let rows = state.inner.store.versions(scope, before, limit + 1).await?;
    Ok(Json(anno_api::page_from_rows(rows, limit, |e| e.version.to_string())))
}

/// `GET /v1/admin/tenants/{id}/config/history`: newest first.
pub async fn tenant_history(
    state: S,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<HistoryEntry>>> {
    caller.require_admin()?;
    history_page(&state, &store::tenant_scope(&id), query).await
}

/// `GET /v1/admin/config/history`: the platform base layer's versions.
pub async fn platform_history(
    state: S,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<HistoryEntry>>> {
    caller.require_admin()?;
    history_page(&state, PLATFORM, query).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollback {
    pub version: i64,
}

/// `POST /v1/admin/tenants/{id}/config/rollback`: makes an earlier version
/// current again, as a new version.
pub async fn rollback_tenant(
    state: S,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
    ApiJson(rollback): ApiJson<Rollback>,
) -> ApiResult<Json<TenantConfig>> {
    caller.require_admin()?;
    let tenant = state.tenant(&caller, &id).await?;
    let scope = store::tenant_scope(&id);
    let document = state.inner.store.version(&scope, rollback.version).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "version_not_found",
            format!("The tenant has no version {}.", rollback.version),
        )
    })?;
    let layer = state.write_layer(&caller, &scope, "rollback", Some(&id), |_| Ok(document)).await?;
    Ok(Json(TenantConfig { layer, effective: state.effective(&tenant).await? }))
}
