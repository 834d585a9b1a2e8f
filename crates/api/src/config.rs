//! The config service's contract: a tenant's effective configuration, the
//! notices the service publishes when anything changes, and the copy other
//! services keep in memory and bring up to date on the next request.

use crate::client::{CallError, ServiceClient};
use anno_bus::{Bus, BusMessage};
use anno_tenancy::{LimitOverrides, Plan, TenantId};
use http::Method;
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The channel a tenant's changes are announced on.
pub fn channel(tenant: &TenantId) -> String {
    format!("config:{tenant}")
}

/// The channel of changes that reach every tenant: the platform base, a plan's
/// layer, a flag.
pub const PLATFORM_CHANNEL: &str = "config:platform";

/// What a change notice says: the change's number in the platform-wide
/// sequence, so that a replica that sees a gap knows it missed one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigChange {
    pub seq: i64,
    /// `platform`, `plan:<name>`, `tenant:<id>` or `flag:<key>`.
    pub scope: String,
}

/// Extraction defaults: what a content request that does not say gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtractionDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_main_content: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_selectors: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_selectors: Option<Vec<String>>,
}

/// Which pages a tenant may fetch, and how it uses the cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchPolicy {
    /// When not empty, only these domains (and their subdomains) may be fetched.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// These domains and their subdomains are never fetched.
    #[serde(default)]
    pub blocked_domains: Vec<String>,
    /// Seconds a cached copy may be old when a request does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_max_age: Option<u64>,
    /// Whether public pages are shared with other tenants through the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_cache: Option<bool>,
}

impl FetchPolicy {
    /// Whether the policy lets the tenant fetch from `host`; the reason when not.
    pub fn check(&self, host: &str) -> Result<(), &'static str> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.blocked_domains.iter().any(|d| domain_matches(&host, d)) {
            return Err("blocked");
        }
        if !self.allowed_domains.is_empty() && !self.allowed_domains.iter().any(|d| domain_matches(&host, d)) {
            return Err("not allowed");
        }
        Ok(())
    }

    /// [`FetchPolicy::check`] as the answer a client gets: `403 domain_not_allowed`.
    pub fn allow(&self, host: &str) -> Result<(), anno_errors::ApiError> {
        self.check(host).map_err(|why| {
            anno_errors::ApiError::new(
                http::StatusCode::FORBIDDEN,
                "domain_not_allowed",
                format!("The tenant's fetch policy does not allow {host} ({why}); see `fetch` in GET /v1/config."),
            )
        })
    }
}

/// `example.com` covers `example.com` and every name under it, not `badexample.com`.
fn domain_matches(host: &str, domain: &str) -> bool {
    let domain = domain.trim_start_matches("*.").trim_end_matches('.');
    host.eq_ignore_ascii_case(domain)
        || host.len() > domain.len()
            && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
}

/// Where a tenant's audit events are shipped as they are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditExportKind {
    /// A signed `POST` to the tenant's HTTPS endpoint.
    Webhook,
    /// Lines appended to `<audit.file_sink_dir>/<tenant id>.jsonl`.
    File,
}

impl AuditExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditExportKind::Webhook => "webhook",
            AuditExportKind::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [AuditExportKind::Webhook, AuditExportKind::File].into_iter().find(|k| k.as_str() == s)
    }
}

/// The setting `audit.export`: only a tenant's own layer holds one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditExport {
    pub kind: AuditExportKind,
    /// The webhook's endpoint; only for `webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<AuditExport>,
}

/// `GET /internal/v1/config/audit-exports`: every tenant's export setting, for
/// the audit exporter (a service caller) to follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditExports {
    /// The sequence number read before the list: the list holds every change
    /// up to it (and maybe later ones).
    pub seq: i64,
    pub exports: Vec<TenantAuditExport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantAuditExport {
    pub tenant_id: TenantId,
    pub export: AuditExport,
}

/// The settings of the schema, typed: what services act on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub extraction: ExtractionDefaults,
    #[serde(default)]
    pub fetch: FetchPolicy,
    #[serde(default)]
    pub limits: LimitOverrides,
    #[serde(default)]
    pub audit: AuditSettings,
}

/// A tenant's configuration as every layer makes it, with the flags evaluated
/// for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveConfig {
    pub tenant_id: TenantId,
    pub plan: Plan,
    /// The sequence number of the last change to any of its layers.
    pub version: i64,
    pub config: Settings,
    /// Every flag's value for the tenant.
    #[serde(default)]
    pub flags: BTreeMap<String, Value>,
}

/// The platform-wide change counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub seq: i64,
}

/// Typed client of the config service.
#[derive(Clone)]
pub struct ConfigClient(pub ServiceClient);

impl ConfigClient {
    /// The effective configuration of the token's tenant.
    pub async fn effective(&self, token: &str) -> Result<EffectiveConfig, CallError> {
        self.0.call(Method::GET, "/internal/v1/config", Some(token), None::<&()>).await
    }

    /// Every tenant's audit export setting; `service_token` from
    /// [`crate::auth::ServiceIdentity`].
    pub async fn audit_exports(&self, service_token: &str) -> Result<AuditExports, CallError> {
        self.0.call(Method::GET, "/internal/v1/config/audit-exports", Some(service_token), None::<&()>).await
    }

    /// The number of the last change anywhere.
    pub async fn sequence(&self) -> Result<Sequence, CallError> {
        self.0.call(Method::GET, "/internal/v1/config/sequence", None, None::<&()>).await
    }
}

/// Effective configurations kept in memory, each dropped when a notice says it
/// changed. Notices can be lost (pub/sub keeps nothing; a replica may be
/// reconnecting), so a gap in their sequence, a reconnection, or the
/// counter read every `check_interval` having moved past the last notice seen
/// drops every copy: the next request of each tenant fetches its own again.
#[derive(Clone)]
pub struct ConfigCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    client: ConfigClient,
    entries: Cache<TenantId, Arc<EffectiveConfig>>,
    /// The last change this replica knows of, for whoever waits for one to arrive.
    seen: tokio::sync::watch::Sender<i64>,
    /// Bumped by every invalidation: a fetch that started before one must not
    /// store what it got.
    generation: AtomicU64,
}

impl ConfigCache {
    /// Starts following the bus and the counter; the tasks end with the cache.
    pub fn new(client: ConfigClient, bus: &Bus, check_interval: Duration) -> Self {
        let cache = ConfigCache {
            inner: Arc::new(CacheInner {
                client,
                // A ceiling in case everything else failed.
                entries: Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(300)).build(),
                seen: tokio::sync::watch::Sender::new(0),
                generation: AtomicU64::new(0),
            }),
        };
        tokio::spawn(follow_bus(bus.subscribe(), Arc::downgrade(&cache.inner)));
        tokio::spawn(check_sequence(Arc::downgrade(&cache.inner), check_interval));
        cache
    }

    /// The caller's effective configuration, from memory when it is current.
    pub async fn get(&self, tenant: &TenantId, token: &str) -> Result<Arc<EffectiveConfig>, CallError> {
        if let Some(hit) = self.inner.entries.get(tenant) {
            return Ok(hit);
        }
        let generation = self.inner.generation.load(Ordering::Acquire);
        let fetched = Arc::new(self.inner.client.effective(token).await?);
        if self.inner.generation.load(Ordering::Acquire) == generation {
            self.inner.entries.insert(tenant.clone(), Arc::clone(&fetched));
        }
        Ok(fetched)
    }

    /// The number of the last change this replica knows of, as it grows: the
    /// moment a change reaches this replica.
    pub fn watch_seen(&self) -> tokio::sync::watch::Receiver<i64> {
        self.inner.seen.subscribe()
    }
}

impl CacheInner {
    /// The number of the last change known here.
    fn seen(&self) -> i64 {
        *self.seen.borrow()
    }

    /// Records that changes up to `seq` are known here.
    fn saw(&self, seq: i64) {
        self.seen.send_if_modified(|seen| {
            let grew = seq > *seen;
            *seen = (*seen).max(seq);
            grew
        });
    }

    fn forget(&self, tenant: Option<&TenantId>) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        match tenant {
            Some(tenant) => self.entries.invalidate(tenant),
            None => self.entries.invalidate_all(),
        }
    }

    /// Applies a notice: drops the tenant it names (every tenant for a
    /// platform-wide change, or when notices were missed).
    fn notice(&self, change: &ConfigChange) {
        // Dropped first, announced after: whoever sees the number finds the copy gone.
        let before = self.seen();
        let missed = before != 0 && change.seq > before + 1;
        let tenant = change.scope.strip_prefix("tenant:").and_then(|id| id.parse::<TenantId>().ok());
        match tenant {
            Some(tenant) if !missed => self.forget(Some(&tenant)),
            _ => self.forget(None),
        }
        self.saw(change.seq);
    }
}

async fn follow_bus(mut rx: tokio::sync::broadcast::Receiver<BusMessage>, cache: std::sync::Weak<CacheInner>) {
    loop {
        let message = rx.recv().await;
        let Some(cache) = cache.upgrade() else { return };
        match message {
            Ok(BusMessage::Event { channel, payload }) if channel.starts_with("config:") => {
                match serde_json::from_str::<ConfigChange>(&payload) {
                    Ok(change) => cache.notice(&change),
                    Err(e) => tracing::warn!(error = %e, channel, "an unreadable config notice; dropping every copy"),
                }
            }
            Ok(BusMessage::Event { .. }) => {}
            Ok(BusMessage::Resync) | Err(RecvError::Lagged(_)) => cache.forget(None),
            Err(RecvError::Closed) => return,
        }
    }
}

async fn check_sequence(cache: std::sync::Weak<CacheInner>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(cache) = cache.upgrade() else { return };
        match cache.client.sequence().await {
            Ok(Sequence { seq }) => {
                let before = cache.seen();
                if seq > before {
                    if before != 0 {
                        tracing::info!(seq, before, "config changes were missed; dropping every copy");
                    }
                    cache.forget(None);
                    cache.saw(seq);
                }
            }
            Err(e) => tracing::debug!(error = %e, "reading the config sequence failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_cover_their_subdomains_only() {
        let policy = FetchPolicy {
            allowed_domains: vec!["example.com".into(), "*.docs.rs".into()],
            blocked_domains: vec!["secret.example.com".into()],
            ..Default::default()
        };
        assert_eq!(policy.check("example.com"), Ok(()));
        assert_eq!(policy.check("WWW.Example.com."), Ok(()));
        assert_eq!(policy.check("docs.rs"), Ok(()));
        assert_eq!(policy.check("serde.docs.rs"), Ok(()));
        assert_eq!(policy.check("badexample.com"), Err("not allowed"));
        assert_eq!(policy.check("a.secret.example.com"), Err("blocked"));
        let open = FetchPolicy { blocked_domains: vec!["evil.test".into()], ..Default::default() };
        assert_eq!(open.check("anything.org"), Ok(()));
        assert_eq!(open.check("evil.test"), Err("blocked"));
    }
}
