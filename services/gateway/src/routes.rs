//! The public API's route table: each route names the service that owns it and
//! what a caller needs to reach it.

use crate::authn::{Authenticated, is_admin};
use crate::{GatewayState, SERVICE, idempotency, limit, proxy};
use anno_api::gateway::{Me, MeCredential, MeTenant};
use anno_api::server::{Limits, Readiness, finish};
use anno_api::transport::Transport;
use anno_errors::ApiError;
use anno_tenancy::Scope;
use axum::Router;
use axum::extract::{RawPathParams, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use http::header;
use sha2::{Digest, Sha256};

/// A slot outlives the longest request by this much before it lapses by itself
/// (a gateway that died cannot give it back).
const SLOT_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Upstream {
    Auth,
    Tenant,
    Config,
    Core,
}

#[derive(Clone, Copy, Debug)]
enum Access {
    /// No credential needed (login).
    Public,
    /// The platform admin key.
    Admin,
    /// A tenant's key or user holding this scope.
    Scoped(Scope),
    /// Any tenant credential.
    AnyTenant,
}

/// What a successful change through a route makes stale in this gateway's
/// caches. The gateway that carried the change forgets at once; the other
/// replicas hear of it over the bus.
#[derive(Clone, Copy, Debug)]
enum Stale {
    /// The `{id}` key or user.
    Credential,
    /// The `{id}` tenant.
    Tenant,
    /// Every tenant (a plan changed).
    AllTenants,
}

#[derive(Clone, Copy)]
struct Route {
    upstream: Upstream,
    access: Access,
    stale: Option<Stale>,
    /// A POST here creates something: `Idempotency-Key` applies.
    idempotent: bool,
}

/// The routes whose POST creates something.
const IDEMPOTENT: [&str; 3] = ["/v1/crawl", "/v1/keys", "/v1/admin/tenants"];

/// The public routes, in one table.
type Row = (&'static str, MethodFilter, Option<Upstream>, Access, Option<Stale>);

fn table() -> Vec<Row> {
    use Access::{Admin, AnyTenant, Public, Scoped};
    use Scope as S;
    use Stale::{AllTenants, Credential, Tenant};
    use Upstream as U;
    let (get, post, patch, put, delete) =
        (MethodFilter::GET, MethodFilter::POST, MethodFilter::PATCH, MethodFilter::PUT, MethodFilter::DELETE);
    vec![
        ("/v1/me", get, None, AnyTenant, None),
        ("/v1/auth/login", post, Some(U::Auth), Public, None),
        ("/v1/keys", get, Some(U::Auth), Scoped(S::KeysRead), None),
        ("/v1/keys", post, Some(U::Auth), Scoped(S::KeysWrite), None),
        ("/v1/keys/{id}", get, Some(U::Auth), Scoped(S::KeysRead), None),
        ("/v1/keys/{id}", delete, Some(U::Auth), Scoped(S::KeysWrite), Some(Credential)),
        ("/v1/keys/{id}/rotate", post, Some(U::Auth), Scoped(S::KeysWrite), Some(Credential)),
        ("/v1/users", get, Some(U::Auth), Scoped(S::KeysRead), None),
        ("/v1/users", post, Some(U::Auth), Scoped(S::KeysWrite), None),
        ("/v1/users/{id}", delete, Some(U::Auth), Scoped(S::KeysWrite), Some(Credential)),
        ("/v1/admin/tenants", get.or(post), Some(U::Tenant), Admin, None),
        ("/v1/admin/tenants/{id}", get.or(patch).or(delete), Some(U::Tenant), Admin, Some(Tenant)),
        ("/v1/admin/tenants/{id}/users", post, Some(U::Tenant), Admin, None),
        ("/v1/admin/tenants/{id}/usage", get, Some(U::Tenant), Admin, None),
        ("/v1/usage", get, Some(U::Tenant), Scoped(S::UsageRead), None),
        ("/v1/admin/plans", get, Some(U::Tenant), Admin, None),
        ("/v1/admin/plans/{plan}", put, Some(U::Tenant), Admin, Some(AllTenants)),
        ("/v1/content/{*rest}", post.or(get), Some(U::Core), Scoped(S::ContentFetch), None),
        ("/v1/crawl", post.or(get), Some(U::Core), Scoped(S::ContentCrawl), None),
        ("/v1/crawl/{*rest}", get.or(post).or(delete), Some(U::Core), Scoped(S::ContentCrawl), None),
        ("/v1/config", get, Some(U::Config), Scoped(S::ConfigRead), None),
        ("/v1/config", patch, Some(U::Config), Scoped(S::ConfigWrite), None),
        ("/v1/flags", get, Some(U::Config), Scoped(S::ConfigRead), None),
        ("/ofrep/v1/evaluate/flags", post, Some(U::Config), Scoped(S::ConfigRead), None),
        ("/ofrep/v1/evaluate/flags/{key}", post, Some(U::Config), Scoped(S::ConfigRead), None),
        ("/v1/admin/config", get.or(put), Some(U::Config), Admin, None),
        ("/v1/admin/config/history", get, Some(U::Config), Admin, None),
        ("/v1/admin/config/plans/{plan}", get.or(put), Some(U::Config), Admin, None),
        ("/v1/admin/tenants/{id}/config", get.or(put), Some(U::Config), Admin, None),
        ("/v1/admin/tenants/{id}/config/history", get, Some(U::Config), Admin, None),
        ("/v1/admin/tenants/{id}/config/rollback", post, Some(U::Config), Admin, None),
        ("/v1/admin/flags", get, Some(U::Config), Admin, None),
        ("/v1/admin/flags/{key}", get.or(put).or(delete), Some(U::Config), Admin, None),
        ("/v1/audit", get, Some(U::Tenant), Scoped(S::AuditRead), None),
        ("/v1/audit/export", get, Some(U::Tenant), Scoped(S::AuditRead), None),
        ("/v1/audit/export/secret", post, Some(U::Tenant), Scoped(S::KeysWrite), None),
        ("/v1/admin/audit", get, Some(U::Tenant), Admin, None),
    ]
}

pub fn router(state: GatewayState) -> Router {
    let mut routes: Router<GatewayState> = Router::new();
    for (path, methods, upstream, access, stale) in table() {
        let handler = match upstream {
            Some(upstream) => {
                let route = Route { upstream, access, stale, idempotent: IDEMPOTENT.contains(&path) };
                on(methods, move |state: State<GatewayState>, params: RawPathParams, request: Request| {
                    pass(state, route, params, request)
                })
            }
            None => on(methods, me),
        };
        routes = routes.route(path, handler);
    }
    let limits = Limits { timeout: state.settings.request_timeout, max_body_bytes: state.settings.max_body_bytes };
    let audit = crate::audit::Layer::new(&state.bus, &state.settings.trusted_proxies);
    let routes = routes.with_state(state.clone());
    let readiness = Readiness::new(move || {
        let state = state.clone();
        async move {
            state.bus.ping().await.map_err(|e| e.to_string())?;
            let upstreams = &state.upstreams;
            for (name, transport) in [
                ("auth", &upstreams.auth),
                ("tenant", &upstreams.tenant),
                ("config", &upstreams.config),
                ("core", &upstreams.core),
            ] {
                let request = http::Request::builder()
                    .uri("/ready")
                    .body(axum::body::Body::empty())
                    .map_err(|e| e.to_string())?;
                let response = proxy::forward(transport, request, None).await;
                if !response.status().is_success() {
                    return Err(format!("{name} is not ready"));
                }
            }
            Ok(())
        }
    });
    // Outermost: every call is audited with the answer the client got.
    audit.wrap(finish(SERVICE, routes, readiness, limits))
}

/// The credential of a request: `Authorization: Bearer …` or `X-API-Key`.
fn credential(request: &Request) -> Option<&str> {
    let headers = request.headers();
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty());
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty())
}

fn authenticate_request<'a>(
    state: &'a GatewayState,
    request: &Request,
) -> impl std::future::Future<Output = Result<Authenticated, ApiError>> + Send + 'a {
    let credential = credential(request).map(str::to_owned);
    async move {
        let credential = credential.ok_or_else(ApiError::unauthorized)?;
        state.authn.authenticate(&credential).await
    }
}

/// Checks what the route needs, then forwards.
async fn pass(State(state): State<GatewayState>, route: Route, params: RawPathParams, request: Request) -> Response {
    let caller = match route.access {
        Access::Public => None,
        access => match authenticate_request(&state, &request).await {
            Ok(a) => match authorize(&a, access) {
                Ok(()) => Some(a),
                Err(e) => return with_caller(e.into_response(), a),
            },
            Err(e) => return e.into_response(),
        },
    };
    let bearer = caller.as_ref().and_then(|a| a.verified.bearer.clone());
    // Only calls that deliver pages (content, and starting a crawl) are
    // metered: quotas and concurrency apply to them.
    let metered = matches!(route.upstream, Upstream::Core)
        && request.method() == http::Method::POST
        && (request.uri().path().starts_with("/v1/content/") || request.uri().path() == "/v1/crawl");
    let verdict = match &caller {
        Some(caller) => match admit(&state, caller, metered, state.settings.request_timeout + SLOT_MARGIN).await {
            Ok(verdict) => verdict,
            Err(refused) => return with_caller(refused, caller.clone()),
        },
        None => None,
    };
    // Which tenant this is for, so a pool with tenant affinity keeps it on one core.
    let mut request = request;
    if let Some(tenant) = caller.as_ref().and_then(|a| a.tenant.as_ref()) {
        request.extensions_mut().insert(crate::upstream::Affinity(tenant.id.to_string()));
    }
    let transport: &Transport = match route.upstream {
        Upstream::Auth => &state.upstreams.auth,
        Upstream::Tenant => &state.upstreams.tenant,
        Upstream::Config => &state.upstreams.config,
        Upstream::Core => &state.upstreams.core,
    };
    let changes = request.method() != http::Method::GET;
    let (request, claim) = match idempotent(&state, route, caller.as_ref(), request).await {
        Ok(Idempotent::Forward(request, claim)) => (request, claim),
        Ok(Idempotent::Replay(response)) => return finish_call(response, verdict, caller),
        Err(e) => return finish_call(e.into_response(), verdict, caller),
    };
    let mut response = proxy::forward(transport, request, bearer).await;
    if let Some(claim) = claim {
        response = state.idempotency.finish(claim, response).await;
    }
    let response = finish_call(response, verdict, caller);
    if let (true, true, Some(stale)) = (changes, response.status().is_success(), route.stale) {
        let id = params.iter().next().map(|(_, value)| value.to_owned()).unwrap_or_default();
        match stale {
            Stale::Credential => state.authn.forget_credential(&id),
            Stale::Tenant => match id.parse() {
                Ok(tenant) => state.authn.forget_tenant(&tenant),
                Err(_) => state.authn.forget_all_tenants(),
            },
            Stale::AllTenants => state.authn.forget_all_tenants(),
        }
    }
    response
}

/// The limits a tenant's calls are held to: its plan's (with the overrides on
/// its record), then those of its effective configuration. Should the config
/// service be out of reach with nothing in memory, the plan's limits hold.
async fn admit(
    state: &GatewayState,
    caller: &Authenticated,
    metered: bool,
    slot_ttl: std::time::Duration,
) -> Result<Option<anno_limits::Verdict>, Response> {
    let Some(tenant) = &caller.tenant else { return Ok(None) };
    let tenant_limits = match state.config.get(&tenant.id, &caller.verified.token).await {
        Ok(config) => tenant.limits.with_overrides(&config.config.limits),
        Err(e) => {
            tracing::warn!(error = %e, tenant.id = %tenant.id, "the tenant's configuration is unavailable; its plan limits apply");
            tenant.limits.clone()
        }
    };
    limit::admit(&state.limits, caller, &tenant_limits, metered, slot_ttl).await
}

/// Finishes a response to a tenant's call: what it cost, the rate limit
/// fields, and who called.
fn finish_call(
    mut response: Response,
    verdict: Option<anno_limits::Verdict>,
    caller: Option<Authenticated>,
) -> Response {
    limit::units(&mut response);
    if let Some(verdict) = verdict {
        response = limit::finish(response, verdict);
    }
    match caller {
        Some(caller) => with_caller(response, caller),
        None => response,
    }
}

enum Idempotent {
    /// Forward the request, keeping its answer for the claimed key, if any.
    Forward(Request, Option<idempotency::Claim>),
    /// Answered before.
    Replay(Response),
}

/// Applies `Idempotency-Key` to a creating POST: claims the key for this
/// request, or replays the answer kept for it, or refuses a conflicting retry.
async fn idempotent(
    state: &GatewayState,
    route: Route,
    caller: Option<&Authenticated>,
    request: Request,
) -> Result<Idempotent, ApiError> {
    if !route.idempotent || request.method() != http::Method::POST {
        return Ok(Idempotent::Forward(request, None));
    }
    let Some(key) = idempotency::key_of(request.headers())? else {
        return Ok(Idempotent::Forward(request, None));
    };
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, state.settings.max_body_bytes)
        .await
        .map_err(|e| ApiError::bad_request("invalid_body", format!("reading the request body: {e}")))?;
    let digest = idempotency::digest(&parts.method, parts.uri.path(), &bytes);
    // Keys are the caller's tenant's (or the admin's): nobody replays another's answer.
    let tenant = caller.and_then(|a| a.tenant.as_ref()).map(|t| &t.id);
    let owner = caller.map(|a| a.verified.principal.id.as_str()).unwrap_or("anonymous");
    let scope = if tenant.is_some() { String::new() } else { format!("{owner}:") };
    let scoped = anno_tenancy::cache_key(tenant, "idem", &hex::encode(Sha256::digest(format!("{scope}{key}"))));
    let pending_for = state.settings.request_timeout + SLOT_MARGIN;
    match state.idempotency.begin(scoped, digest, pending_for).await? {
        idempotency::Begin::Replay(response) => Ok(Idempotent::Replay(response)),
        idempotency::Begin::Proceed(claim) => {
            Ok(Idempotent::Forward(Request::from_parts(parts, axum::body::Body::from(bytes)), Some(claim)))
        }
    }
}

/// Marks a response with who called, for the layers that record the call.
fn with_caller(mut response: Response, caller: Authenticated) -> Response {
    response.extensions_mut().insert(caller);
    response
}

fn authorize(a: &Authenticated, access: Access) -> Result<(), ApiError> {
    match access {
        Access::Public => Ok(()),
        Access::Admin if is_admin(a) => Ok(()),
        Access::Admin => Err(ApiError::insufficient_scope("admin")),
        Access::AnyTenant | Access::Scoped(_) if a.tenant.is_none() => Err(ApiError::new(
            http::StatusCode::FORBIDDEN,
            "tenant_required",
            "This call acts for a tenant: use a tenant's API key or access token.",
        )),
        Access::AnyTenant => Ok(()),
        Access::Scoped(scope) if a.verified.principal.scopes.contains(scope) => Ok(()),
        Access::Scoped(scope) => Err(ApiError::insufficient_scope(scope.as_str())),
    }
}

/// `GET /v1/me`: the calling tenant and credential.
async fn me(State(state): State<GatewayState>, request: Request) -> Response {
    let a =
        match authenticate_request(&state, &request).await.and_then(|a| authorize(&a, Access::AnyTenant).map(|()| a)) {
            Ok(a) => a,
            Err(e) => return e.into_response(),
        };
    let verdict = match admit(&state, &a, false, state.settings.request_timeout).await {
        Ok(verdict) => verdict,
        Err(refused) => return with_caller(refused, a),
    };
    let Some(tenant) = &a.tenant else { return ApiError::unauthorized().into_response() };
    let p = &a.verified.principal;
    let credential = MeCredential { id: p.id.clone(), name: p.name.clone(), scopes: p.scopes };
    let is_user = p.kind == anno_api::token::PrincipalKind::User;
    let body = Me {
        tenant: MeTenant {
            id: tenant.id.clone(),
            name: tenant.name.clone(),
            plan: tenant.plan,
            status: tenant.status,
            trial_ends_at: tenant.trial_ends_at.clone(),
            limits: tenant.limits.clone(),
            features: tenant.features.clone(),
        },
        key: (!is_user).then(|| credential.clone()),
        user: is_user.then_some(credential),
    };
    finish_call(axum::Json(body).into_response(), verdict, Some(a))
}
