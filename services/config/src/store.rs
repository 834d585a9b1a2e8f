//! The config service's tables: layers, their history, flags, and the
//! platform-wide change sequence.

use anno_flags::FlagDefinition;
use anno_store::{Db, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The scope of the platform base layer.
pub const PLATFORM: &str = "platform";
/// The scope whose row records the last flag change.
pub const FLAGS: &str = "flags";

pub fn plan_scope(plan: anno_tenancy::Plan) -> String {
    format!("plan:{plan}")
}

pub fn tenant_scope(tenant: &anno_tenancy::TenantId) -> String {
    format!("tenant:{tenant}")
}

/// The tenant a `tenant:<id>` scope names.
pub fn scope_tenant(scope: &str) -> Option<anno_tenancy::TenantId> {
    scope.strip_prefix("tenant:")?.parse().ok()
}

pub fn flag_scope(key: &str) -> String {
    format!("flag:{key}")
}

/// One layer as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub scope: String,
    pub version: i64,
    /// The change that made this version, in the platform-wide sequence.
    pub seq: i64,
    pub document: Value,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
}

impl Layer {
    /// A layer nobody has written: it sets nothing.
    pub fn empty(scope: &str) -> Layer {
        Layer {
            scope: scope.to_owned(),
            version: 0,
            seq: 0,
            document: Value::Object(Default::default()),
            updated_at: None,
            updated_by: None,
        }
    }
}

/// One version of a layer or flag.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub version: i64,
    pub seq: i64,
    /// `put`, `patch`, `rollback`, `delete`.
    pub action: String,
    pub document: Value,
    pub actor: String,
    pub at: String,
}

/// A flag as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredFlag {
    pub key: String,
    pub version: i64,
    pub definition: FlagDefinition,
    pub updated_at: String,
    pub updated_by: String,
}

#[derive(Clone)]
pub struct Store {
    db: Db,
}

fn parse(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("a stored document is not JSON: {e}")))
}

fn layer_row(
    (scope, version, seq, document, at, by): (String, i64, i64, String, i64, String),
) -> Result<Layer, StoreError> {
    Ok(Layer {
        scope,
        version,
        seq,
        document: parse(&document)?,
        updated_at: Some(anno_tenancy::rfc3339(at)),
        updated_by: Some(by),
    })
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// One version of a layer or flag, being written.
struct Change<'a> {
    scope: &'a str,
    version: i64,
    seq: i64,
    document: &'a str,
    actor: &'a str,
    at: i64,
}

impl Store {
    pub fn new(db: Db) -> Self {
        Store { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The number of the last change.
    pub async fn sequence(&self) -> Result<i64, StoreError> {
        let (seq,): (i64,) =
            sqlx::query_as("SELECT seq FROM config_sequence WHERE id = 1").fetch_one(self.db.pool()).await?;
        Ok(seq)
    }

    pub async fn layer(&self, scope: &str) -> Result<Option<Layer>, StoreError> {
        let row: Option<(String, i64, i64, String, i64, String)> = sqlx::query_as(
            "SELECT scope, version, seq, document, updated_at, updated_by FROM config_layers WHERE scope = $1",
        )
        .bind(scope)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(layer_row).transpose()
    }

    /// Several layers at once, by scope.
    pub async fn layers(&self, scopes: &[&str]) -> Result<BTreeMap<String, Layer>, StoreError> {
        let placeholders: Vec<String> = (1..=scopes.len()).map(|n| self.db.backend().placeholder(n)).collect();
        let sql = format!(
            "SELECT scope, version, seq, document, updated_at, updated_by FROM config_layers WHERE scope IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, i64, i64, String, i64, String)>(&sql);
        for scope in scopes {
            query = query.bind(*scope);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.into_iter().map(|row| layer_row(row).map(|l| (l.scope.clone(), l))).collect()
    }

    /// Every tenant's own layer.
    pub async fn tenant_layers(&self) -> Result<Vec<Layer>, StoreError> {
        let rows: Vec<(String, i64, i64, String, i64, String)> = sqlx::query_as(
            "SELECT scope, version, seq, document, updated_at, updated_by FROM config_layers \
             WHERE scope LIKE 'tenant:%' ORDER BY scope",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(layer_row).collect()
    }

    /// Takes the next number of the sequence; the row stays locked until the
    /// transaction ends, so changes are numbered in the order they commit.
    async fn next_seq(tx: &mut Tx) -> Result<i64, StoreError> {
        let (seq,): (i64,) = sqlx::query_as("UPDATE config_sequence SET seq = seq + 1 WHERE id = 1 RETURNING seq")
            .fetch_one(&mut **tx)
            .await?;
        Ok(seq)
    }

    async fn history(tx: &mut Tx, change: &Change<'_>, action: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO config_history (seq, scope, version, action, document, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(change.seq)
        .bind(change.scope)
        .bind(change.version)
        .bind(action)
        .bind(change.document)
        .bind(change.actor)
        .bind(change.at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn upsert_layer(tx: &mut Tx, change: &Change<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO config_layers (scope, version, seq, document, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (scope) DO UPDATE SET version = excluded.version, seq = excluded.seq, \
             document = excluded.document, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(change.scope)
        .bind(change.version)
        .bind(change.seq)
        .bind(change.document)
        .bind(change.at)
        .bind(change.actor)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Writes a layer's next version, computed by `change` from the current
    /// document (an empty object for a new layer) inside the transaction, so
    /// concurrent patches do not lose each other. `change` may refuse.
    pub async fn write<E: From<StoreError>>(
        &self,
        scope: &str,
        action: &str,
        actor: &str,
        change: impl FnOnce(&Value) -> Result<Value, E>,
    ) -> Result<Layer, E> {
        let mut tx = self.db.pool().begin().await.map_err(StoreError::from)?;
        // Taking the number first locks the sequence row: writers queue here.
        let seq = Self::next_seq(&mut tx).await?;
        let current: Option<(i64, String)> =
            sqlx::query_as("SELECT version, document FROM config_layers WHERE scope = $1")
                .bind(scope)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        let (version, document) = match current {
            Some((version, text)) => (version, parse(&text)?),
            None => (0, Value::Object(Default::default())),
        };
        let next = change(&document)?;
        let text = next.to_string();
        let at = anno_tenancy::now_ms();
        let written = Change { scope, version: version + 1, seq, document: &text, actor, at };
        Self::upsert_layer(&mut tx, &written).await?;
        Self::history(&mut tx, &written, action).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Layer {
            scope: scope.to_owned(),
            version: version + 1,
            seq,
            document: next,
            updated_at: Some(anno_tenancy::rfc3339(at)),
            updated_by: Some(actor.to_owned()),
        })
    }

    /// A layer's or flag's versions, newest first, before `before` (a version).
    pub async fn versions(
        &self,
        scope: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows: Vec<(i64, i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT version, seq, action, document, actor, at FROM config_history \
             WHERE scope = $1 AND version < $2 ORDER BY version DESC LIMIT $3",
        )
        .bind(scope)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter()
            .map(|(version, seq, action, document, actor, at)| {
                Ok(HistoryEntry {
                    version,
                    seq,
                    action,
                    document: parse(&document)?,
                    actor,
                    at: anno_tenancy::rfc3339(at),
                })
            })
            .collect()
    }

    /// One version of a layer.
    pub async fn version(&self, scope: &str, version: i64) -> Result<Option<Value>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT document FROM config_history WHERE scope = $1 AND version = $2")
                .bind(scope)
                .bind(version)
                .fetch_optional(self.db.pool())
                .await?;
        row.map(|(text,)| parse(&text)).transpose()
    }

    pub async fn flags(&self) -> Result<Vec<StoredFlag>, StoreError> {
        let rows: Vec<(String, String, i64, i64, String)> =
            sqlx::query_as("SELECT flag_key, definition, version, updated_at, updated_by FROM flags ORDER BY flag_key")
                .fetch_all(self.db.pool())
                .await?;
        rows.into_iter()
            .map(|(key, definition, version, at, by)| {
                let definition = serde_json::from_str(&definition)
                    .map_err(|e| StoreError::Other(format!("flag {key} is not a definition: {e}")))?;
                Ok(StoredFlag { key, version, definition, updated_at: anno_tenancy::rfc3339(at), updated_by: by })
            })
            .collect()
    }

    /// Creates or replaces a flag (`Some`), or deletes it (`None`); `None` back
    /// when there was nothing to delete. Returns the change's sequence number.
    pub async fn put_flag(
        &self,
        key: &str,
        definition: Option<&FlagDefinition>,
        actor: &str,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        let seq = Self::next_seq(&mut tx).await?;
        let current: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM flags WHERE flag_key = $1").bind(key).fetch_optional(&mut *tx).await?;
        let previous = match current {
            Some((v,)) => v,
            None => {
                // History keeps a deleted flag's versions: number on from them.
                let (v,): (i64,) =
                    sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM config_history WHERE scope = $1")
                        .bind(flag_scope(key))
                        .fetch_one(&mut *tx)
                        .await?;
                if definition.is_none() {
                    return Ok(None);
                }
                v
            }
        };
        let version = previous + 1;
        let at = anno_tenancy::now_ms();
        let (action, text) = match definition {
            Some(d) => ("put", serde_json::to_string(d).map_err(|e| StoreError::Other(e.to_string()))?),
            None => ("delete", "null".to_owned()),
        };
        match definition {
            Some(_) => {
                sqlx::query(
                    "INSERT INTO flags (flag_key, definition, version, seq, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (flag_key) DO UPDATE SET definition = excluded.definition, version = excluded.version, \
                     seq = excluded.seq, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                )
                .bind(key)
                .bind(&text)
                .bind(version)
                .bind(seq)
                .bind(at)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM flags WHERE flag_key = $1").bind(key).execute(&mut *tx).await?;
            }
        }
        let scope = flag_scope(key);
        Self::history(&mut tx, &Change { scope: &scope, version, seq, document: &text, actor, at }, action).await?;
        Self::upsert_layer(&mut tx, &Change { scope: FLAGS, version: seq, seq, document: "{}", actor, at }).await?;
        tx.commit().await?;
        Ok(Some((version, seq)))
    }
}
