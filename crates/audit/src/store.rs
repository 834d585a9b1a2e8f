//! The audit store: events at the end of their chains, read back by tenant or
//! for admins, and verified link by link.

use crate::chain::{self, AuditRecord, Break, Chain, Fault, GENESIS, Verifier};
use crate::event::{Actor, ActorKind, AuditEvent, Timestamp};
use anno_store::{Backend, Db, Migration, StoreError};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The schema (Postgres) or file (SQLite) the trail lives in.
pub const SCHEMA: &str = "audit";

pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../migrations/0001_init.sql") },
    Migration { version: 2, name: "chain_order", sql: include_str!("../migrations/0002_chain_order.sql") },
];

pub(crate) const COLUMNS: &str = "id, chain, seq, time_ms, actor_kind, actor_id, method, route, path, status, latency_ms, \
     client_ip, user_agent, request_id, request_digest, request_bytes, response_digest, response_bytes, prev_hash, hash";

/// Values bound per stored row: [`COLUMNS`] and `stored_at`.
pub(crate) const INSERT_COLUMNS: usize = 21;
/// Rows per `INSERT` at most (a statement size, see [`is_statement_size`]),
/// well within the bind limits of SQLite (32,766) and Postgres (65,535).
const INSERT_ROWS: usize = 256;

/// Rows read per query while verifying.
const VERIFY_PAGE: i64 = 500;

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// One chain; all when none (admins).
    pub chain: Option<Chain>,
    /// Events after this one (the cursor, an event id): in id order across
    /// chains, in chain (seq) order within one.
    pub after: Option<String>,
    /// From this time on (inclusive).
    pub since_ms: Option<i64>,
    /// Before this time (exclusive).
    pub until_ms: Option<i64>,
    /// Rows to return; callers ask for one more than a page to learn there is more.
    pub limit: u32,
}

/// What verifying one chain found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainReport {
    pub chain: String,
    /// Events checked before the first broken link (all, when intact).
    pub events: i64,
    pub broken: Option<Break>,
}

/// What verifying one chain or all found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub chains: Vec<ChainReport>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.chains.iter().all(|c| c.broken.is_none())
    }

    pub fn events(&self) -> i64 {
        self.chains.iter().map(|c| c.events).sum()
    }
}

#[derive(Clone, Debug)]
pub struct AuditStore {
    db: Db,
}

enum Bind {
    Text(String),
    Int(i64),
}

pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl AuditStore {
    /// The store over a migrated database (see [`MIGRATIONS`]).
    pub fn new(db: Db) -> Self {
        AuditStore { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Stores the events not stored yet, each at the end of its chain, in one
    /// transaction. Storing an event again changes nothing (at-least-once
    /// delivery). Each chain's head row is locked while it grows, so several
    /// consumers may store at once. Returns the chains that grew.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn append(&self, events: Vec<AuditEvent>) -> Result<Vec<Chain>, StoreError> {
        let by_chain = by_chain(events);
        if by_chain.is_empty() {
            return Ok(Vec::new());
        }
        let now = anno_tenancy::now_ms();
        let backend = self.db.backend();
        // Every list in a statement is padded to a size from a short series
        // (repeats change nothing), so the statements are few and prepared once
        // per connection rather than once per batch size.
        let names: Vec<&str> = by_chain.keys().map(Chain::as_str).collect();
        let names = padded(&names);
        let mut tx = self.db.pool().begin().await?;
        // New chains' heads first: writing first takes SQLite's write lock
        // before anything is read.
        let mut params = Params::new(backend);
        let rows = names.iter().map(|_| format!("({}, 0, {}, {})", params.next(), params.next(), params.next()));
        let sql = format!(
            "INSERT INTO audit_chains (chain, seq, hash, updated_at) VALUES {} ON CONFLICT (chain) DO NOTHING",
            rows.collect::<Vec<_>>().join(", ")
        );
        let mut query = sqlx::query(&sql);
        for name in &names {
            query = query.bind(*name).bind(GENESIS).bind(now);
        }
        query.execute(&mut *tx).await?;
        // The heads, locked in chain order (Postgres): every consumer takes
        // them in the same order.
        let lock = if backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!(
            "SELECT chain, seq, hash FROM audit_chains WHERE chain IN ({}) ORDER BY chain{lock}",
            Params::new(backend).list(names.len())
        );
        let mut query = sqlx::query_as::<_, (String, i64, String)>(&sql);
        for name in &names {
            query = query.bind(*name);
        }
        let heads: HashMap<String, (i64, String)> =
            query.fetch_all(&mut *tx).await?.into_iter().map(|(chain, seq, hash)| (chain, (seq, hash))).collect();
        let ids: Vec<&str> = by_chain.values().flatten().map(|e| e.id.as_str()).collect();
        let ids = padded(&ids);
        let sql = format!("SELECT id FROM audit_events WHERE id IN ({})", Params::new(backend).list(ids.len()));
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let stored: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().map(|(id,)| id).collect();
        let records = extend(by_chain, &heads, &stored)?;
        let rows: Vec<(&str, &AuditRecord)> =
            records.iter().flat_map(|(chain, records)| records.iter().map(move |r| (chain.as_str(), r))).collect();
        let mut rest = rows.as_slice();
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(chunk_size(rest.len()));
            insert(&mut tx, backend, chunk, now).await?;
            rest = after;
        }
        let heads: Vec<(&str, &AuditRecord)> =
            records.iter().filter_map(|(chain, records)| Some((chain.as_str(), records.last()?))).collect();
        if !heads.is_empty() {
            let heads = padded(&heads);
            let mut params = Params::new(backend);
            let at = params.next();
            let rows: Vec<String> = heads.iter().map(|_| params.row(3)).collect();
            let sql = format!(
                "UPDATE audit_chains SET seq = v.column2, hash = v.column3, updated_at = {at} \
                 FROM (VALUES {}) AS v WHERE audit_chains.chain = v.column1",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(now);
            for (chain, last) in &heads {
                query = query.bind(*chain).bind(last.seq).bind(last.hash.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(records.into_iter().map(|(chain, _)| chain).collect())
    }

    /// One chain's events in chain order, or every chain's in id (time)
    /// order; oldest first. Within a chain the cursor is read as the event's
    /// place in it, so an event stored after a page was read comes on a
    /// later page even when its id sorts earlier (ids are made where calls
    /// are served, seqs where events are stored). A cursor that is not an
    /// event of the chain is [`StoreError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        let mut condition = |sql: &str, bind: Bind| {
            binds.push(bind);
            conditions.push(format!("{sql} ${}", binds.len()));
        };
        let order = match &filter.chain {
            Some(chain) => {
                condition("chain =", Bind::Text(chain.as_str().to_owned()));
                if let Some(after) = &filter.after {
                    let seq: Option<(i64,)> =
                        sqlx::query_as("SELECT seq FROM audit_events WHERE id = $1 AND chain = $2")
                            .bind(after.as_str())
                            .bind(chain.as_str())
                            .fetch_optional(self.db.pool())
                            .await?;
                    let (seq,) = seq.ok_or(StoreError::NotFound)?;
                    condition("seq >", Bind::Int(seq));
                }
                "seq"
            }
            None => {
                if let Some(after) = &filter.after {
                    condition("id >", Bind::Text(after.clone()));
                }
                "id"
            }
        };
        if let Some(since) = filter.since_ms {
            condition("time_ms >=", Bind::Int(since));
        }
        if let Some(until) = filter.until_ms {
            condition("time_ms <", Bind::Int(until));
        }
        let filter_sql =
            if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let sql =
            format!("SELECT {COLUMNS} FROM audit_events{filter_sql} ORDER BY {order} LIMIT {}", filter.limit.max(1));
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(n) => query.bind(n),
            };
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.iter().map(|row| decode(row).map_err(StoreError::Other)).collect()
    }

    /// A chain's events after `after_seq`, in seq order (for exports).
    pub async fn records_after(
        &self,
        chain: &Chain,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(chain.as_str())
        .bind(after_seq)
        .bind(i64::from(limit.max(1)))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(|row| decode(row).map_err(StoreError::Other)).collect()
    }

    /// `(seq, hash)` of a chain's last event; none before its first.
    pub async fn head(&self, chain: &Chain) -> Result<Option<(i64, String)>, StoreError> {
        let head = sqlx::query_as("SELECT seq, hash FROM audit_chains WHERE chain = $1")
            .bind(chain.as_str())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(head)
    }

    /// Verifies one chain, or every chain there is.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, chain: Option<&Chain>) -> Result<VerifyReport, StoreError> {
        let names = match chain {
            Some(chain) => vec![chain.as_str().to_owned()],
            None => {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT chain FROM audit_chains UNION SELECT DISTINCT chain FROM audit_events ORDER BY 1",
                )
                .fetch_all(self.db.pool())
                .await?;
                rows.into_iter().map(|(name,)| name).collect()
            }
        };
        let mut report = VerifyReport::default();
        for name in names {
            report.chains.push(self.verify_chain(&name).await?);
        }
        Ok(report)
    }

    /// Reads the head and every link of one chain in one snapshot, so that
    /// events stored meanwhile are neither half-seen nor taken for tampering.
    async fn verify_chain(&self, name: &str) -> Result<ChainReport, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        if self.db.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        }
        let head: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_chains WHERE chain = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let mut verifier = Verifier::new(name);
        let mut after = 0_i64;
        let broken = 'walk: loop {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM audit_events WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ))
            .bind(name)
            .bind(after)
            .bind(VERIFY_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break verifier.finish(head.as_ref().map(|(seq, hash)| (*seq, hash.as_str()))).err();
            }
            for row in &rows {
                let seq: i64 = row.try_get("seq")?;
                let record = match decode(row) {
                    Ok(record) => record,
                    Err(_) => {
                        let id = row.try_get::<String, _>("id").ok();
                        break 'walk Some(Break { seq, event_id: id, fault: Fault::Unreadable });
                    }
                };
                if let Err(broken) = verifier.check(&record) {
                    break 'walk Some(broken);
                }
                after = seq;
            }
        };
        tx.rollback().await?;
        Ok(ChainReport { chain: name.to_owned(), events: verifier.events(), broken })
    }
}

/// A batch's events by chain, each once (a redelivered event may come twice),
/// ordered by chain name: every consumer locks heads in the same order.
pub(crate) fn by_chain(events: Vec<AuditEvent>) -> BTreeMap<Chain, Vec<AuditEvent>> {
    let mut seen = HashSet::new();
    let mut by_chain: BTreeMap<Chain, Vec<AuditEvent>> = BTreeMap::new();
    for event in events {
        if seen.insert(event.id.clone()) {
            by_chain.entry(Chain::of(&event)).or_default().push(event);
        }
    }
    by_chain
}

/// The events not `stored` yet linked onto their chains' `heads` (chain
/// name → seq and hash); the chains without any are left out.
pub(crate) fn extend(
    by_chain: BTreeMap<Chain, Vec<AuditEvent>>,
    heads: &HashMap<String, (i64, String)>,
    stored: &HashSet<String>,
) -> Result<Vec<(Chain, Vec<AuditRecord>)>, StoreError> {
    let mut records = Vec::new();
    for (chain, events) in by_chain {
        let fresh: Vec<AuditEvent> = events.into_iter().filter(|e| !stored.contains(&e.id)).collect();
        if fresh.is_empty() {
            continue;
        }
        let Some((seq, hash)) = heads.get(chain.as_str()) else {
            return Err(StoreError::Other(format!("the head of chain {} was not found", chain.as_str())));
        };
        let extended = chain::extend(chain.as_str(), (*seq, hash), fresh);
        records.push((chain, extended));
    }
    Ok(records)
}

/// Stores records with one `INSERT`.
async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    rows: &[(&str, &AuditRecord)],
    now: i64,
) -> Result<(), StoreError> {
    let mut params = Params::new(backend);
    let values: Vec<String> = rows.iter().map(|_| params.row(INSERT_COLUMNS)).collect();
    let sql = format!("INSERT INTO audit_events ({COLUMNS}, stored_at) VALUES {}", values.join(", "));
    let mut query = sqlx::query(&sql);
    for (chain, record) in rows {
        let e = &record.event;
        query = query
            .bind(e.id.as_str())
            .bind(*chain)
            .bind(record.seq)
            .bind(e.time.ms())
            .bind(e.actor.kind.as_str())
            .bind(e.actor.id.clone())
            .bind(e.method.as_str())
            .bind(e.route.clone())
            .bind(e.path.as_str())
            .bind(i64::from(e.status))
            .bind(int(e.latency_ms))
            .bind(e.client_ip.clone())
            .bind(e.user_agent.clone())
            .bind(e.request_id.clone())
            .bind(e.request_digest.clone())
            .bind(int(e.request_bytes))
            .bind(e.response_digest.clone())
            .bind(int(e.response_bytes))
            .bind(record.prev_hash.as_str())
            .bind(record.hash.as_str())
            .bind(now);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Numbered placeholders (`$1`, `$2`, …) for Postgres, `?` for SQLite.
struct Params {
    backend: Backend,
    n: usize,
}

impl Params {
    fn new(backend: Backend) -> Self {
        Params { backend, n: 0 }
    }

    fn next(&mut self) -> String {
        self.n += 1;
        self.backend.placeholder(self.n)
    }

    /// `count` placeholders, comma-separated.
    fn list(&mut self, count: usize) -> String {
        (0..count).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }

    /// One row of `count` placeholders, in parentheses.
    fn row(&mut self, count: usize) -> String {
        format!("({})", self.list(count))
    }
}

/// The list lengths statements are made for: the powers of two, and a
/// consumer's full batch ([`anno_bus::BATCH`]), so that a full batch is one
/// `INSERT` and its ids one list.
fn is_statement_size(n: usize) -> bool {
    n.is_power_of_two() || n == anno_bus::BATCH
}

/// `items` with the last repeated up to the next statement size.
fn padded<T: Copy>(items: &[T]) -> Vec<T> {
    let mut out = items.to_vec();
    if let Some(&last) = items.last() {
        let size = (items.len()..).find(|&n| is_statement_size(n)).unwrap_or(items.len());
        out.resize(size, last);
    }
    out
}

/// How many of `left` rows the next `INSERT` takes: the largest statement
/// size that fits, at most [`INSERT_ROWS`].
fn chunk_size(left: usize) -> usize {
    (1..=left.clamp(1, INSERT_ROWS)).rev().find(|&n| is_statement_size(n)).unwrap_or(1)
}

/// A row back into a record; an error says which value could not be read.
fn decode(row: &AnyRow) -> Result<AuditRecord, String> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(|e| format!("{name}: {e}"));
    let optional = |name: &str| row.try_get::<Option<String>, _>(name).map_err(|e| format!("{name}: {e}"));
    let number = |name: &str| row.try_get::<i64, _>(name).map_err(|e| format!("{name}: {e}"));
    let unsigned = |name: &str| number(name).and_then(|n| u64::try_from(n).map_err(|e| format!("{name}: {e}")));
    let chain = text("chain")?;
    let chain = Chain::parse(&chain).ok_or_else(|| format!("chain: `{chain}` is not a chain"))?;
    let kind = text("actor_kind")?;
    let event = AuditEvent {
        id: text("id")?,
        time: Timestamp(number("time_ms")?),
        tenant_id: chain.tenant().cloned(),
        actor: Actor {
            kind: ActorKind::parse(&kind).ok_or_else(|| format!("actor_kind: `{kind}` is not an actor kind"))?,
            id: optional("actor_id")?,
        },
        method: text("method")?,
        route: optional("route")?,
        path: text("path")?,
        status: u16::try_from(number("status")?).map_err(|e| format!("status: {e}"))?,
        latency_ms: unsigned("latency_ms")?,
        client_ip: optional("client_ip")?,
        user_agent: optional("user_agent")?,
        request_id: optional("request_id")?,
        request_digest: optional("request_digest")?,
        request_bytes: unsigned("request_bytes")?,
        response_digest: optional("response_digest")?,
        response_bytes: unsigned("response_bytes")?,
    };
    Ok(AuditRecord { event, seq: number("seq")?, prev_hash: text("prev_hash")?, hash: text("hash")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_padded_to_a_statement_size_with_their_last_item() {
        assert_eq!(padded::<u8>(&[]), Vec::<u8>::new());
        assert_eq!(padded(&[1]), vec![1]);
        assert_eq!(padded(&[1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded(&[0; 100]).len(), 128);
        // A consumer's full batch is a size of its own.
        assert_eq!(padded(&[0; 150]).len(), anno_bus::BATCH);
        assert_eq!(padded(&[0; anno_bus::BATCH]).len(), anno_bus::BATCH);
        assert_eq!(padded(&[0; 300]).len(), 512);
    }

    #[test]
    fn inserts_take_the_largest_statement_size_that_fits() {
        let chunks = |mut left: usize| {
            let mut out = Vec::new();
            while left > 0 {
                out.push(chunk_size(left));
                left -= chunk_size(left);
            }
            out
        };
        assert_eq!(chunks(1), vec![1]);
        assert_eq!(chunks(200), vec![200]);
        assert_eq!(chunks(230), vec![200, 16, 8, 4, 2]);
        assert_eq!(chunks(100), vec![64, 32, 4]);
        assert_eq!(chunks(256), vec![256]);
        assert_eq!(chunks(600), vec![256, 256, 64, 16, 8]);
    }
}
