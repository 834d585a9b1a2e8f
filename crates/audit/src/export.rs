//! Exports: a tenant's events shipped, as they are stored, to its webhook or to
//! a JSON Lines file in a directory the operator chose, as the tenant's
//! configuration (`audit.export`) says. Delivery runs in a
//! background task, never on a request; each export remembers the last seq it
//! delivered, retries with backoff, and is held by one replica at a time
//! through a lease row.

use crate::chain::{AuditRecord, Chain};
use crate::store::AuditStore;
use crate::webhook::WebhookClient;
pub use anno_api::config::AuditExportKind as ExportKind;
use anno_store::StoreError;
use anno_tenancy::{Secret, TenantId, now_ms, rfc3339};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Events per delivery.
const BATCH: u32 = 100;
/// Deliveries per export per round, so one busy tenant cannot starve the others.
const BATCHES_PER_ROUND: usize = 10;
/// How long a replica holds an export while delivering it.
const LEASE_MS: i64 = 60_000;
/// Longest pause between retries of a failing export.
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1000;

/// A tenant's export as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    pub kind: ExportKind,
    pub url: Option<String>,
    /// What deliveries are signed with; shown only to a caller that may
    /// manage keys (`keys:write`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// The seq of the last event delivered; deliveries continue after it.
    pub delivered_seq: i64,
    pub last_delivered_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// Why the last attempt failed, while it is failing.
    pub last_error: Option<String>,
    /// Failed attempts in a row.
    pub failures: i64,
    /// When a failing export is tried again.
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The body of a webhook delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub tenant_id: TenantId,
    pub data: Vec<AuditRecord>,
}

/// One stored export setting.
#[derive(Clone, Debug)]
pub(crate) struct ExportRow {
    pub tenant: TenantId,
    pub generation: String,
    pub kind: ExportKind,
    pub url: Option<String>,
    pub secret: Option<Secret>,
    pub cursor_seq: i64,
    pub failures: i64,
    /// When a failing export is tried again.
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_delivered_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ExportRow {
    pub fn to_api(&self) -> Export {
        Export {
            kind: self.kind,
            url: self.url.clone(),
            signing_secret: None,
            delivered_seq: self.cursor_seq,
            last_delivered_at: self.last_delivered_at.map(rfc3339),
            last_attempt_at: self.last_attempt_at.map(rfc3339),
            last_error: self.last_error.clone(),
            failures: self.failures,
            next_attempt_at: (self.failures > 0).then(|| rfc3339(self.next_attempt_at)),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

const EXPORT_COLUMNS: &str = "tenant_id, generation, kind, url, secret, cursor_seq, failures, next_attempt_at, last_attempt_at, \
     last_delivered_at, last_error, created_at, updated_at";

fn decode(row: &AnyRow) -> Result<ExportRow, StoreError> {
    let bad = |e: String| StoreError::Other(format!("audit export: {e}"));
    let tenant: String = row.try_get("tenant_id")?;
    let kind: String = row.try_get("kind")?;
    Ok(ExportRow {
        tenant: tenant.parse().map_err(|e: anno_tenancy::IdError| bad(e.to_string()))?,
        generation: row.try_get("generation")?,
        kind: ExportKind::parse(&kind).ok_or_else(|| bad(format!("unknown kind `{kind}`")))?,
        url: row.try_get("url")?,
        secret: row.try_get::<Option<String>, _>("secret")?.map(Secret::new),
        cursor_seq: row.try_get("cursor_seq")?,
        failures: row.try_get("failures")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        last_delivered_at: row.try_get("last_delivered_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl AuditStore {
    /// Makes a tenant's export the one its configuration names. A changed
    /// setting starts afresh after the chain's current head, a webhook with a
    /// new signing secret; the same setting again changes nothing (replicas
    /// following the configuration may all apply it). True when it changed.
    pub(crate) async fn set_export(
        &self,
        tenant: &TenantId,
        kind: ExportKind,
        url: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let head = self.head(&Chain::Tenant(tenant.clone())).await?.map_or(0, |(seq, _)| seq);
        let secret = (kind == ExportKind::Webhook).then(crate::webhook::new_secret);
        let done = sqlx::query(
            "INSERT INTO audit_exports (tenant_id, generation, kind, url, secret, cursor_seq, failures, next_attempt_at, \
             lease_until, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, $7, $7) \
             ON CONFLICT (tenant_id) DO UPDATE SET generation = excluded.generation, kind = excluded.kind, \
             url = excluded.url, secret = excluded.secret, cursor_seq = excluded.cursor_seq, failures = 0, \
             next_attempt_at = 0, lease_until = 0, last_attempt_at = NULL, last_error = NULL, \
             updated_at = excluded.updated_at \
             WHERE audit_exports.kind <> excluded.kind OR audit_exports.url IS DISTINCT FROM excluded.url",
        )
        .bind(tenant.as_str())
        .bind(anno_tenancy::new_id("exp"))
        .bind(kind.as_str())
        .bind(url)
        .bind(secret)
        .bind(head)
        .bind(now)
        .execute(self.db().pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The tenants that have an export.
    pub(crate) async fn exporting(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT tenant_id FROM audit_exports").fetch_all(self.db().pool()).await?;
        Ok(rows.into_iter().filter_map(|(id,)| id.parse().ok()).collect())
    }

    /// Gives a tenant's webhook a new signing secret; the row after, or none
    /// when the tenant has no webhook.
    pub(crate) async fn roll_secret(&self, tenant: &TenantId) -> Result<Option<ExportRow>, StoreError> {
        let done =
            sqlx::query("UPDATE audit_exports SET secret = $1, updated_at = $2 WHERE tenant_id = $3 AND kind = $4")
                .bind(crate::webhook::new_secret())
                .bind(now_ms())
                .bind(tenant.as_str())
                .bind(ExportKind::Webhook.as_str())
                .execute(self.db().pool())
                .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.export(tenant).await
    }

    pub(crate) async fn export(&self, tenant: &TenantId) -> Result<Option<ExportRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {EXPORT_COLUMNS} FROM audit_exports WHERE tenant_id = $1"))
            .bind(tenant.as_str())
            .fetch_optional(self.db().pool())
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// True when there was an export to remove.
    pub(crate) async fn delete_export(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM audit_exports WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .execute(self.db().pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Exports with events to deliver, due now and held by no replica.
    async fn due_exports(&self, now: i64) -> Result<Vec<ExportRow>, StoreError> {
        let columns = EXPORT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM audit_exports e JOIN audit_chains c ON c.chain = e.tenant_id \
             WHERE c.seq > e.cursor_seq AND e.next_attempt_at <= $1 AND e.lease_until < $1 ORDER BY e.next_attempt_at"
        ))
        .bind(now)
        .fetch_all(self.db().pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Takes the export for this replica; false when another holds it or it changed.
    async fn lease_export(&self, row: &ExportRow, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE audit_exports SET lease_until = $1 WHERE tenant_id = $2 AND generation = $3 AND lease_until < $4",
        )
        .bind(now + LEASE_MS)
        .bind(row.tenant.as_str())
        .bind(&row.generation)
        .bind(now)
        .execute(self.db().pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a delivery; false when the export changed meanwhile (and this
    /// delivery should go no further).
    async fn export_delivered(&self, row: &ExportRow, cursor: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE audit_exports SET cursor_seq = $1, last_delivered_at = $2, last_attempt_at = $2, failures = 0, \
             last_error = NULL, next_attempt_at = 0 WHERE tenant_id = $3 AND generation = $4",
        )
        .bind(cursor)
        .bind(now)
        .bind(row.tenant.as_str())
        .bind(&row.generation)
        .execute(self.db().pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn export_failed(&self, row: &ExportRow, error: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let exponent = u32::try_from(row.failures.clamp(0, 20)).unwrap_or(20);
        let backoff = 1_000_i64.saturating_mul(1 << exponent).min(MAX_BACKOFF_MS);
        let error: String = error.chars().take(500).collect();
        sqlx::query(
            "UPDATE audit_exports SET failures = failures + 1, last_error = $1, last_attempt_at = $2, \
             next_attempt_at = $3 WHERE tenant_id = $4 AND generation = $5",
        )
        .bind(error)
        .bind(now)
        .bind(now + backoff)
        .bind(row.tenant.as_str())
        .bind(&row.generation)
        .execute(self.db().pool())
        .await?;
        Ok(())
    }

    async fn release_export(&self, row: &ExportRow) -> Result<(), StoreError> {
        sqlx::query("UPDATE audit_exports SET lease_until = 0 WHERE tenant_id = $1 AND generation = $2")
            .bind(row.tenant.as_str())
            .bind(&row.generation)
            .execute(self.db().pool())
            .await?;
        Ok(())
    }
}

/// Delivers due exports.
#[derive(Clone)]
pub(crate) struct Exporter {
    pub store: AuditStore,
    pub client: WebhookClient,
    pub file_dir: Option<PathBuf>,
}

impl Exporter {
    /// Runs rounds when woken (events were stored) or every `interval`.
    pub async fn run(self, wake: Arc<Notify>, interval: Duration) {
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "an audit export round failed");
            }
        }
    }

    /// Delivers what is due now; returns the exports it worked on.
    pub async fn round(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut worked = 0;
        for row in self.store.due_exports(now).await? {
            if !self.store.lease_export(&row, now).await? {
                continue;
            }
            worked += 1;
            let outcome = self.deliver(&row).await;
            self.store.release_export(&row).await?;
            outcome?;
        }
        Ok(worked)
    }

    async fn deliver(&self, row: &ExportRow) -> Result<(), StoreError> {
        let chain = Chain::Tenant(row.tenant.clone());
        let mut cursor = row.cursor_seq;
        for _ in 0..BATCHES_PER_ROUND {
            let records = self.store.records_after(&chain, cursor, BATCH).await?;
            let Some(last) = records.last().map(|r| r.seq) else { break };
            let sent = match row.kind {
                ExportKind::Webhook => self.post(row, records).await,
                ExportKind::File => self.append(row, records).await,
            };
            match sent {
                Ok(()) => {
                    cursor = last;
                    if !self.store.export_delivered(row, cursor).await? {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(tenant.id = %row.tenant, kind = row.kind.as_str(), error, "an audit export failed; it will be retried");
                    self.store.export_failed(row, &error).await?;
                    break;
                }
            }
        }
        Ok(())
    }

    async fn post(&self, row: &ExportRow, data: Vec<AuditRecord>) -> Result<(), String> {
        let (Some(url), Some(secret)) = (&row.url, &row.secret) else {
            return Err("the webhook has no URL or secret".to_owned());
        };
        let body = serde_json::to_vec(&Delivery { tenant_id: row.tenant.clone(), data }).map_err(|e| e.to_string())?;
        self.client.deliver(url, secret.expose(), now_ms() / 1000, body).await
    }

    async fn append(&self, row: &ExportRow, data: Vec<AuditRecord>) -> Result<(), String> {
        let dir = self.file_dir.clone().ok_or_else(|| "no file sink is configured (audit.file_sink_dir)".to_owned())?;
        let path = file_path(&dir, &row.tenant);
        let mut lines = Vec::new();
        for record in &data {
            serde_json::to_writer(&mut lines, record).map_err(|e| e.to_string())?;
            lines.push(b'\n');
        }
        tokio::task::spawn_blocking(move || append_lines(&path, &lines))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("writing the audit file failed: {e}"))
    }
}

/// The JSON Lines file of a tenant's export.
pub fn file_path(dir: &Path, tenant: &TenantId) -> PathBuf {
    dir.join(format!("{tenant}.jsonl"))
}

fn append_lines(path: &Path, lines: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(lines)?;
    file.sync_data()
}
