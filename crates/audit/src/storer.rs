//! Storing off the threads that serve calls.
//!
//! Linking events into their chains and writing them is the trail's heaviest
//! work: for every call, a SHA-256 link, a row bound and written. Done on the
//! runtime that serves calls, a batch of a few hundred events holds one of its
//! workers for a millisecond or two, and every call queued behind it waits
//! that long. The storer does it on a thread of its own, at a lower
//! scheduling priority: when a call and a batch both want a core, the call
//! gets it; idle cores still store at full speed. On SQLite the thread runs
//! the statements itself, on a connection of its own ([`crate::sqlite`]); on
//! Postgres it has a pool of its own, opened there.
//!
//! A busy enough host could leave that thread behind for good, and the
//! events waiting for it are held in memory. So when a batch's oldest event
//! has waited more than [`CATCH_UP`], batches are stored on the serving
//! runtime, at the calls' own priority, until one has waited less than
//! [`CAUGHT_UP`].

use crate::chain::Chain;
use crate::event::AuditEvent;
use crate::sqlite::Appender;
use crate::store::{AuditStore, SCHEMA};
use anno_bus::Entry;
use anno_store::{DatabaseTarget, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};

/// How much lower than the calls' threads storing runs: a `nice` value. A
/// step is about 1.25 times less CPU when both want the same core, so at 10
/// storing gets about a tenth of a call thread's share.
pub const PRIORITY: i32 = 10;

/// Past this wait (ms) for the oldest event of a batch, storing moves to
/// the serving runtime.
pub const CATCH_UP: i64 = 1_000;
/// Under this wait (ms) it moves back to its own thread.
pub const CAUGHT_UP: i64 = 200;

pub(crate) type Job = (Vec<Entry>, oneshot::Sender<Result<Vec<Chain>, StoreError>>);

/// What the storing thread writes through.
enum Own {
    /// SQLite: a connection it opens and runs itself.
    Connection(PathBuf),
    /// Postgres: a pool of its own, on a runtime of its own.
    Pool(tokio::runtime::Runtime, DatabaseTarget),
}

/// Hands batches of stream entries to the storing thread.
#[derive(Clone)]
pub struct Storer {
    jobs: mpsc::UnboundedSender<Job>,
    /// For catching up, on the runtime that calls [`Storer::store`].
    store: AuditStore,
    catching_up: Arc<AtomicBool>,
}

impl Storer {
    /// Starts the storing thread over the data `store` is on.
    pub fn start(store: AuditStore) -> std::io::Result<Storer> {
        let (jobs, rx) = mpsc::unbounded_channel();
        let catching_up = Arc::new(AtomicBool::new(false));
        let target = store.db().target().clone();
        let own = match target.sqlite_file(SCHEMA) {
            Some(file) => Own::Connection(file),
            None => Own::Pool(tokio::runtime::Builder::new_current_thread().enable_all().build()?, target),
        };
        let flag = Arc::clone(&catching_up);
        std::thread::Builder::new().name("audit-store".into()).spawn(move || {
            lower_priority();
            match own {
                Own::Connection(file) => serve_sqlite(&file, rx, &flag),
                Own::Pool(runtime, target) => runtime.block_on(serve(target, rx, flag)),
            }
        })?;
        Ok(Storer { jobs, store, catching_up })
    }

    /// Stores the events the entries carry (unreadable ones are logged and
    /// dropped). Returns the chains that grew.
    pub async fn store(&self, entries: Vec<Entry>) -> Result<Vec<Chain>, StoreError> {
        if self.is_catching_up() {
            return self.store_here(entries).await;
        }
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError((entries, _))) = self.jobs.send((entries, tx)) {
            // The thread is gone (it panicked): storing stays here from now on.
            tracing::error!("the audit storing thread has stopped; storing on the serving runtime");
            self.catching_up.store(true, Ordering::Relaxed);
            return self.store_here(entries).await;
        }
        // Dropped unanswered, the batch is handed over again, and then sent no more.
        rx.await.map_err(|_| StoreError::Unavailable("the audit storing thread stopped mid-batch".into()))?
    }

    async fn store_here(&self, entries: Vec<Entry>) -> Result<Vec<Chain>, StoreError> {
        let (grown, waited) = append(&self.store, &entries).await?;
        if waited < CAUGHT_UP && !self.jobs.is_closed() {
            tracing::info!(waited_ms = waited, "audit storing has caught up");
            self.catching_up.store(false, Ordering::Relaxed);
        }
        Ok(grown)
    }

    /// Whether batches are being stored on the serving runtime, to catch up.
    pub fn is_catching_up(&self) -> bool {
        self.catching_up.load(Ordering::Relaxed)
    }

    /// A storer whose thread is the caller: it is handed the jobs, and stops
    /// when it drops them.
    #[cfg(test)]
    pub(crate) fn on_channel(store: AuditStore) -> (Storer, mpsc::UnboundedReceiver<Job>) {
        let (jobs, rx) = mpsc::unbounded_channel();
        (Storer { jobs, store, catching_up: Arc::new(AtomicBool::new(false)) }, rx)
    }
}

/// Lowers the calling thread's priority (Linux keeps one per thread; threads
/// it starts inherit it). Where that is refused, storing runs as it is.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(None, PRIORITY) {
        tracing::debug!(error = %e, "the audit storing thread keeps its priority");
    }
}

/// Opens the store on first need (and again after failing to), then stores
/// each batch as it comes.
async fn serve(target: DatabaseTarget, mut jobs: mpsc::UnboundedReceiver<Job>, catching_up: Arc<AtomicBool>) {
    let mut store: Option<AuditStore> = None;
    while let Some((entries, reply)) = jobs.recv().await {
        let result = async {
            let opened = match store.take() {
                Some(opened) => opened,
                None => AuditStore::new(target.open(SCHEMA, 1).await?),
            };
            store = Some(opened.clone());
            let (grown, waited) = append(&opened, &entries).await?;
            check_pace(waited, &catching_up);
            Ok(grown)
        };
        let _ = reply.send(result.await);
    }
}

/// [`serve`] on SQLite: the thread runs the statements itself (see
/// [`crate::sqlite`]).
fn serve_sqlite(file: &Path, mut jobs: mpsc::UnboundedReceiver<Job>, catching_up: &AtomicBool) {
    let mut appender: Option<Appender> = None;
    while let Some((entries, reply)) = jobs.blocking_recv() {
        let mut store = || {
            let opened = match &mut appender {
                Some(opened) => opened,
                None => appender.insert(Appender::open(file)?),
            };
            let (events, waited) = read(&entries);
            let grown = opened.append(events);
            if grown.is_err() {
                // Opened again for the next batch: a broken connection stays broken.
                appender = None;
            }
            check_pace(waited, catching_up);
            grown
        };
        let _ = reply.send(store());
    }
}

/// Past [`CATCH_UP`], storing moves to the serving runtime.
fn check_pace(waited: i64, catching_up: &AtomicBool) {
    if waited > CATCH_UP {
        tracing::warn!(waited_ms = waited, "audit storing fell behind; catching up at full priority");
        catching_up.store(true, Ordering::Relaxed);
    }
}

/// Stores the events the entries carry (unreadable ones are logged and
/// dropped); returns the chains that grew, and how long (ms) the oldest
/// event had waited since its call ended.
async fn append(store: &AuditStore, entries: &[Entry]) -> Result<(Vec<Chain>, i64), StoreError> {
    let (events, waited) = read(entries);
    Ok((store.append(events).await?, waited))
}

/// The events the entries carry (unreadable ones are logged and dropped), and
/// how long (ms) the oldest had waited since its call ended.
fn read(entries: &[Entry]) -> (Vec<AuditEvent>, i64) {
    let events = decode(entries);
    let waited = waited_ms(&events);
    (events, waited)
}

/// How long (ms) the oldest of the events has waited since its call ended.
fn waited_ms(events: &[AuditEvent]) -> i64 {
    let now = anno_tenancy::now_ms();
    let ended = |e: &AuditEvent| e.time.ms().saturating_add(i64::try_from(e.latency_ms).unwrap_or(i64::MAX));
    events.iter().map(|e| now.saturating_sub(ended(e))).max().unwrap_or(0)
}

fn decode(entries: &[Entry]) -> Vec<AuditEvent> {
    entries
        .iter()
        .filter_map(|entry| match entry.decode() {
            Ok(event) => Some(event),
            Err(e) => {
                tracing::warn!(entry = %entry.id, error = %e, "dropping an unreadable audit entry");
                None
            }
        })
        .collect()
}
