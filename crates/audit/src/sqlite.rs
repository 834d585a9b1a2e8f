//! Appending to the trail on SQLite from the storing thread itself.
//!
//! Through the pool, every statement of a batch goes to a worker thread of
//! the driver and its answer comes back (two hand-offs between threads), and
//! every bound value is copied into an owned argument, made on one thread and
//! freed on the other: about 21 of them an event. Here the storing thread,
//! which has nothing else to do, runs SQLite itself, with statements prepared
//! once and values bound where they lie. The rows, the chain arithmetic and
//! the transaction are those of [`AuditStore::append`](crate::AuditStore::append),
//! which stays the path on Postgres and for catching up on the serving runtime.

use crate::chain::{Chain, GENESIS};
use crate::event::AuditEvent;
use crate::store::{COLUMNS, INSERT_COLUMNS, by_chain, extend, int};
use anno_store::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

/// A connection of the storing thread's own to the trail's SQLite file.
pub struct Appender {
    conn: Connection,
}

impl Appender {
    /// Opens the (migrated) trail at `path`.
    pub fn open(path: &Path) -> Result<Appender, StoreError> {
        let conn = Connection::open(path).map_err(error)?;
        // As the pool's connections: another connection writing waits, it does not fail.
        conn.execute_batch(anno_store::SQLITE_SETTINGS).map_err(error)?;
        Ok(Appender { conn })
    }

    /// Stores the events not stored yet, each at the end of its chain, in one
    /// transaction; returns the chains that grew.
    pub fn append(&mut self, events: Vec<AuditEvent>) -> Result<Vec<Chain>, StoreError> {
        let by_chain = by_chain(events);
        if by_chain.is_empty() {
            return Ok(Vec::new());
        }
        let now = anno_tenancy::now_ms();
        // Immediate: the write lock first, before anything is read.
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
        let mut heads = HashMap::new();
        {
            let mut create = tx
                .prepare_cached(
                    "INSERT INTO audit_chains (chain, seq, hash, updated_at) VALUES (?1, 0, ?2, ?3) \
                     ON CONFLICT (chain) DO NOTHING",
                )
                .map_err(error)?;
            let mut head = tx.prepare_cached("SELECT seq, hash FROM audit_chains WHERE chain = ?1").map_err(error)?;
            for chain in by_chain.keys() {
                create.execute(params![chain.as_str(), GENESIS, now]).map_err(error)?;
                let (seq, hash) = head
                    .query_row([chain.as_str()], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
                    .map_err(error)?;
                heads.insert(chain.as_str().to_owned(), (seq, hash));
            }
        }
        let mut stored = HashSet::new();
        {
            let mut exists = tx.prepare_cached("SELECT 1 FROM audit_events WHERE id = ?1").map_err(error)?;
            for event in by_chain.values().flatten() {
                if exists.query_row([event.id.as_str()], |_| Ok(())).optional().map_err(error)?.is_some() {
                    stored.insert(event.id.clone());
                }
            }
        }
        let records = extend(by_chain, &heads, &stored)?;
        {
            let mut insert = tx.prepare_cached(insert_sql()).map_err(error)?;
            let mut advance = tx
                .prepare_cached("UPDATE audit_chains SET seq = ?2, hash = ?3, updated_at = ?4 WHERE chain = ?1")
                .map_err(error)?;
            for (chain, records) in &records {
                for record in records {
                    let e = &record.event;
                    insert
                        .execute(params![
                            e.id,
                            chain.as_str(),
                            record.seq,
                            e.time.ms(),
                            e.actor.kind.as_str(),
                            e.actor.id,
                            e.method,
                            e.route,
                            e.path,
                            e.status,
                            int(e.latency_ms),
                            e.client_ip,
                            e.user_agent,
                            e.request_id,
                            e.request_digest,
                            int(e.request_bytes),
                            e.response_digest,
                            int(e.response_bytes),
                            record.prev_hash,
                            record.hash,
                            now,
                        ])
                        .map_err(error)?;
                }
                if let Some(last) = records.last() {
                    advance.execute(params![chain.as_str(), last.seq, last.hash, now]).map_err(error)?;
                }
            }
        }
        tx.commit().map_err(error)?;
        Ok(records.into_iter().map(|(chain, _)| chain).collect())
    }
}

/// One event's row: [`COLUMNS`] and `stored_at`.
fn insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let placeholders: Vec<String> = (1..=INSERT_COLUMNS).map(|n| format!("?{n}")).collect();
        format!("INSERT INTO audit_events ({COLUMNS}, stored_at) VALUES ({})", placeholders.join(", "))
    })
}

fn error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(e.to_string())
        }
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}
