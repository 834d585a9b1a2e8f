//! Periodic work: expire trials past their end, purge deleted tenants' data after
//! their retention period. Safe to run on every replica at once.

use crate::{Inner, store};
use anno_api::tenant::{TENANTS_TOPIC, TenantEvent};
use anno_tenancy::{TenantId, bus_channel, now_ms};
use std::sync::Weak;

pub fn spawn_sweeper(inner: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            let period = match inner.upgrade() {
                Some(inner) => inner.settings.sweep_interval,
                None => return,
            };
            tokio::time::sleep(period).await;
            let Some(inner) = inner.upgrade() else { return };
            if let Err(e) = sweep(&inner).await {
                tracing::warn!(error = %e, "tenant sweep failed");
            }
        }
    });
}

pub async fn sweep(inner: &Inner) -> anyhow::Result<()> {
    let now = now_ms();
    for id in store::due_trials(&inner.db, now).await? {
        if store::expire_trial(&inner.db, &id, now).await? {
            tracing::info!(tenant.id = %id, "trial expired");
            announce(inner, &id).await;
        }
    }
    for id in store::due_purges(&inner.db, now).await? {
        inner.db.drop_tenant(&id).await?;
        store::mark_purged(&inner.db, &id, now).await?;
        tracing::info!(tenant.id = %id, "purged a deleted tenant's data");
    }
    Ok(())
}

/// Tells every gateway and service that the tenant changed.
pub async fn announce(inner: &Inner, id: &TenantId) {
    publish(inner, &TenantEvent::Changed { tenant_id: id.clone() }).await;
}

pub async fn announce_all(inner: &Inner) {
    publish(inner, &TenantEvent::PlansChanged).await;
}

async fn publish(inner: &Inner, event: &TenantEvent) {
    if let Err(e) = inner.bus.publish(&bus_channel(None, TENANTS_TOPIC), event).await {
        tracing::warn!(error = %e, "publishing a tenant change failed");
    }
}
