//! Following the configuration: each tenant's `audit.export` lives in the
//! config service, and the exports here are kept to what it says. The config
//! service announces every change on the bus; notices can be lost, so the
//! change counter is also read every interval, and the full list is fetched
//! (as the platform's own service identity) whenever the counter moved.

use crate::export::ExportKind;
use crate::store::AuditStore;
use anno_api::auth::ServiceIdentity;
use anno_api::config::{AuditExports, ConfigClient};
use anno_bus::{Bus, BusMessage};
use anno_store::StoreError;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;

/// Where the exports' settings come from.
#[derive(Clone)]
pub struct ConfigSource {
    pub client: ConfigClient,
    /// What the exporter acts as when it asks: no tenant's request is behind it.
    pub identity: ServiceIdentity,
}

/// Keeps the stored exports to the configuration.
pub(crate) struct Follower {
    pub store: AuditStore,
    pub source: ConfigSource,
    /// Wakes the exporter when an export changed.
    pub wake: Arc<Notify>,
}

impl Follower {
    /// Brings the exports up to date now, then whenever a notice arrives or
    /// the change counter moved.
    pub async fn run(self, bus: &Bus, interval: Duration) {
        let mut notices = bus.subscribe();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut synced: Option<i64> = None;
        loop {
            let forced = tokio::select! {
                message = notices.recv() => match message {
                    Ok(BusMessage::Event { channel, .. }) if channel.starts_with("config:") => true,
                    Ok(BusMessage::Event { .. }) => continue,
                    Ok(BusMessage::Resync) | Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                },
                _ = ticker.tick() => false,
            };
            if let (false, Some(seen)) = (forced, synced) {
                match self.source.client.sequence().await {
                    Ok(current) if current.seq == seen => continue,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the config change counter failed");
                        continue;
                    }
                }
            }
            match self.sync().await {
                Ok(seq) => synced = Some(seq),
                Err(e) => tracing::warn!(error = %e, "following the audit export settings failed; retrying"),
            }
        }
    }

    /// Fetches every tenant's setting and applies it; the change number the
    /// list is current to.
    pub async fn sync(&self) -> Result<i64, String> {
        let token = self.source.identity.token().await.map_err(|e| e.to_string())?;
        let exports = self.source.client.audit_exports(&token).await.map_err(|e| e.to_string())?;
        let seq = exports.seq;
        if self.apply(exports).await.map_err(|e| e.to_string())? {
            self.wake.notify_one();
        }
        Ok(seq)
    }

    /// Sets what the list names and removes what it no longer does; true when
    /// anything changed.
    async fn apply(&self, list: AuditExports) -> Result<bool, StoreError> {
        let mut changed = false;
        let mut named = HashSet::new();
        for item in &list.exports {
            let url = match item.export.kind {
                ExportKind::Webhook => item.export.url.as_deref(),
                ExportKind::File => None,
            };
            if self.store.set_export(&item.tenant_id, item.export.kind, url).await? {
                tracing::info!(tenant.id = %item.tenant_id, kind = item.export.kind.as_str(), "audit export set");
                changed = true;
            }
            named.insert(item.tenant_id.clone());
        }
        for tenant in self.store.exporting().await? {
            if !named.contains(&tenant) && self.store.delete_export(&tenant).await? {
                tracing::info!(tenant.id = %tenant, "audit export removed");
                changed = true;
            }
        }
        Ok(changed)
    }
}
