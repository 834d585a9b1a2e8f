//! The service side of the trail: the consumer that stores what the gateways
//! record, the exporter (following each tenant's `audit.export` setting), and
//! the API (`/v1/audit`, `/v1/audit/export`, `/v1/admin/audit`). Hosted by the
//! process that runs the tenant service.

use crate::chain::{AuditRecord, Chain};
use crate::export::{Export, Exporter};
use crate::follow::{ConfigSource, Follower};
use crate::recorder::STREAM;
use crate::store::{AuditStore, ListFilter};
use crate::storer::Storer;
use crate::webhook::{AllowList, WebhookClient};
use anno_api::server::{Limits, stack};
use anno_api::token::{Caller, TokenVerifier};
use anno_api::{Page, PageQuery, page_from_rows};
use anno_bus::{Bus, Entry, Handler};
use anno_errors::{ApiError, ApiQuery, ApiResult};
use anno_fetch::Resolver;
use anno_store::{Db, StoreError};
use anno_tenancy::{Scope, parse_rfc3339};
use axum::extract::{FromRef, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The consumer group that stores audit events.
pub const GROUP: &str = "audit-store";

/// How exports run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where file exports are written (`<dir>/<tenant id>.jsonl`); none: tenants
    /// cannot choose the file sink.
    pub file_sink_dir: Option<PathBuf>,
    /// `host:port` origins a webhook may use although private, over http too
    /// (`fetch.allowed_private_hosts`).
    pub allowed_private_hosts: Vec<String>,
    /// How often due exports are looked for, besides when events arrive.
    pub export_interval: Duration,
    /// Longest a webhook delivery may take.
    pub webhook_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            file_sink_dir: None,
            allowed_private_hosts: Vec::new(),
            export_interval: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct AuditState {
    inner: Arc<Inner>,
}

struct Inner {
    store: AuditStore,
    verifier: TokenVerifier,
    settings: Settings,
    /// Wakes the exporter.
    wake: Arc<Notify>,
}

impl FromRef<AuditState> for TokenVerifier {
    fn from_ref(state: &AuditState) -> TokenVerifier {
        state.inner.verifier.clone()
    }
}

/// The background tasks of the trail; dropping this stops them.
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The running trail: its routes and its tasks.
pub struct Audit {
    /// `/v1/audit…` and `/v1/admin/audit`, with the middleware stack but
    /// without health routes or fallbacks: merge it into a finished router.
    pub router: Router,
    pub background: Background,
    state: AuditState,
}

impl Audit {
    /// Starts keeping the exports to each tenant's `audit.export` setting.
    /// Without it no export is ever set: the setting lives in the config service.
    pub fn follow_config(&mut self, bus: &Bus, source: ConfigSource) {
        let inner = &self.state.inner;
        let follower = Follower { store: inner.store.clone(), source, wake: Arc::clone(&inner.wake) };
        let (bus, interval) = (bus.clone(), inner.settings.export_interval);
        self.background.tasks.push(tokio::spawn(async move { follower.run(&bus, interval).await }));
    }
}

/// Starts the trail over a migrated database: the consumer of the `audit`
/// stream, the exporter, and the routes.
pub fn start(db: Db, bus: &Bus, verifier: TokenVerifier, settings: Settings) -> anyhow::Result<Audit> {
    start_with_resolver(db, bus, verifier, settings, Arc::new(anno_fetch::SystemResolver))
}

/// [`start`] with the resolver webhooks are checked and reached through.
pub fn start_with_resolver(
    db: Db,
    bus: &Bus,
    verifier: TokenVerifier,
    settings: Settings,
    resolver: Arc<dyn Resolver>,
) -> anyhow::Result<Audit> {
    let store = AuditStore::new(db);
    let allow = AllowList::new(&settings.allowed_private_hosts);
    let client = WebhookClient::new(allow, resolver, settings.webhook_timeout).map_err(anyhow::Error::msg)?;
    let wake = Arc::new(Notify::new());
    let exporter = Exporter { store: store.clone(), client, file_dir: settings.file_sink_dir.clone() };
    let storer = Storer::start(store.clone())?;
    let tasks = vec![
        consume(bus, storer, Arc::clone(&wake)),
        tokio::spawn(exporter.run(Arc::clone(&wake), settings.export_interval)),
    ];
    let state = AuditState { inner: Arc::new(Inner { store, verifier, settings, wake }) };
    Ok(Audit { router: router(state.clone()), background: Background { tasks }, state })
}

/// Stores every batch of the `audit` stream, on the storer's thread;
/// unreadable entries are logged and dropped rather than retried for ever.
pub fn consume(bus: &Bus, storer: Storer, wake: Arc<Notify>) -> JoinHandle<()> {
    let handler: Handler = Arc::new(move |entries: Vec<Entry>| {
        let (storer, wake) = (storer.clone(), Arc::clone(&wake));
        Box::pin(async move {
            let grown = storer.store(entries).await?;
            if grown.iter().any(|chain| chain.tenant().is_some()) {
                wake.notify_one();
            }
            Ok(())
        })
    });
    bus.consume(STREAM, GROUP, &consumer_name(), handler)
}

/// This replica's name in the consumer group: the pod name when there is one.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "anno".to_owned());
    format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
}

pub fn router(state: AuditState) -> Router {
    let routes = Router::new()
        .route("/v1/audit", get(list))
        .route("/v1/audit/export", get(get_export))
        .route("/v1/audit/export/secret", post(roll_secret))
        .route("/v1/admin/audit", get(list_admin))
        .with_state(state);
    stack("audit", routes, Limits::default())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
    since: Option<String>,
    until: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
    since: Option<String>,
    until: Option<String>,
    /// A tenant id, or `platform` for calls without a tenant.
    tenant: Option<String>,
}

fn time_param(name: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    value
        .map(|v| {
            parse_rfc3339(v)
                .ok_or_else(|| ApiError::bad_request("invalid_query", format!("{name}: must be an RFC 3339 timestamp")))
        })
        .transpose()
}

async fn page(
    state: &AuditState,
    chain: Option<Chain>,
    cursor: Option<String>,
    limit: Option<u32>,
    since: Option<&str>,
    until: Option<&str>,
) -> ApiResult<Page<AuditRecord>> {
    let page = PageQuery { cursor, limit };
    let filter = ListFilter {
        chain,
        after: page.cursor.clone(),
        since_ms: time_param("since", since)?,
        until_ms: time_param("until", until)?,
        limit: page.limit() + 1,
    };
    let rows = state.inner.store.list(&filter).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::bad_request("invalid_query", "cursor: not an event of this trail".to_owned()),
        e => e.into(),
    })?;
    Ok(page_from_rows(rows, page.limit(), |r| r.event.id.clone()))
}

/// `GET /v1/audit`: the caller's tenant's events, oldest first.
async fn list(
    State(state): State<AuditState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    let tenant = caller.tenant(Scope::AuditRead)?;
    let chain = Some(Chain::Tenant(tenant.tenant_id));
    Ok(Json(page(&state, chain, q.cursor, q.limit, q.since.as_deref(), q.until.as_deref()).await?))
}

/// `GET /v1/admin/audit`: every chain's events, or one chain's (`?tenant=`).
async fn list_admin(
    State(state): State<AuditState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AdminListQuery>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    caller.require_admin()?;
    let chain = q
        .tenant
        .as_deref()
        .map(|t| {
            Chain::parse(t).ok_or_else(|| {
                ApiError::bad_request("invalid_query", "tenant: must be a tenant id or `platform`".to_owned())
            })
        })
        .transpose()?;
    Ok(Json(page(&state, chain, q.cursor, q.limit, q.since.as_deref(), q.until.as_deref()).await?))
}

/// `GET /v1/audit/export`: how the tenant's export (set by `audit.export` in
/// its configuration) is doing. The signing secret is shown to a caller that
/// may also manage keys.
async fn get_export(State(state): State<AuditState>, caller: Caller) -> ApiResult<Json<Export>> {
    let tenant = caller.tenant(Scope::AuditRead)?;
    let row = state.inner.store.export(&tenant.tenant_id).await?.ok_or_else(|| ApiError::not_found("Export"))?;
    let secret = row.secret.as_ref().filter(|_| tenant.has(Scope::KeysWrite)).map(|s| s.expose().to_owned());
    Ok(Json(Export { signing_secret: secret, ..row.to_api() }))
}

/// `POST /v1/audit/export/secret`: a new signing secret for the tenant's
/// webhook, in effect for the next delivery. Needs `keys:write` (it makes a
/// secret) and `audit:read`.
async fn roll_secret(State(state): State<AuditState>, caller: Caller) -> ApiResult<Json<Export>> {
    let tenant = caller.tenant(Scope::KeysWrite)?;
    if !tenant.has(Scope::AuditRead) {
        return Err(ApiError::insufficient_scope(Scope::AuditRead.as_str()));
    }
    let row =
        state.inner.store.roll_secret(&tenant.tenant_id).await?.ok_or_else(|| ApiError::not_found("Webhook export"))?;
    tracing::info!(tenant.id = %tenant.tenant_id, "audit webhook secret rolled");
    let secret = row.secret.as_ref().map(|s| s.expose().to_owned());
    Ok(Json(Export { signing_secret: secret, ..row.to_api() }))
}
