//! How much storing the audit trail costs: batches of events like the
//! gateway's (one per API call) appended to the audit store the way its
//! consumer appends them (each at the end of its tenant's hash chain, in one
//! transaction a batch), on SQLite in a scratch directory or on Postgres in a
//! database created for the run and dropped after. Every chain is verified at
//! the end, so the figures are of events really stored.
//!
//! In the embedded shape this work runs in the same process as the gateway,
//! so its CPU time per event is part of every call's cost.

use crate::bench::{ScratchDatabase, Stopwatch};
use anno_audit::{Actor, ActorKind, Appender, AuditEvent, AuditStore, BodyTally, MIGRATIONS, SCHEMA, Timestamp};
use anno_store::DatabaseTarget;
use anno_tenancy::TenantId;
use std::fmt;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct AuditArgs {
    /// Events to store and time (after a warm-up of ten full batches).
    #[arg(long, default_value_t = 60_000)]
    pub events: usize,
    /// Events per batch: what the consumer takes at once under load.
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// Batches of varying size, from a fifth of --batch to all of it, as a
    /// consumer sees when calls come in more slowly.
    #[arg(long)]
    pub vary: bool,
    /// Tenants the calls are spread over: one chain each.
    #[arg(long, default_value_t = 1)]
    pub tenants: usize,
    /// Store on this Postgres server (a database is created for the run and
    /// dropped after); SQLite in a scratch directory without it.
    #[arg(long, value_name = "URL")]
    pub postgres_url: Option<String>,
    /// On SQLite, store through the pool (the path of catching up) rather
    /// than the storing thread's own connection (what the storer does).
    #[arg(long)]
    pub pool: bool,
}

/// What the command prints.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditReport {
    pub backend: &'static str,
    /// Through the pool, or the storing thread's own connection (SQLite).
    pub path: &'static str,
    pub batches: usize,
    pub events: usize,
    pub elapsed: Duration,
    /// CPU time of this process (all its threads, SQLite's included) over the
    /// timed batches, when the platform reports it (Linux).
    pub cpu: Option<Duration>,
    /// Events the chains hold at the end, warm-up included, all verified.
    pub verified: i64,
}

impl AuditReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_event = |d: Duration| d.as_secs_f64() * 1e6 / self.events.max(1) as f64;
        writeln!(
            f,
            "audit storage, {} ({}): {} events in {} batches",
            self.backend, self.path, self.events, self.batches
        )?;
        writeln!(
            f,
            "  {:.0} events/s, {:.2} µs of wall time an event",
            self.events_per_second(),
            per_event(self.elapsed)
        )?;
        match self.cpu {
            Some(cpu) => writeln!(f, "  {:.2} µs of this process's CPU time an event", per_event(cpu))?,
            None => writeln!(f, "  CPU time: not reported on this platform")?,
        }
        if self.backend == "postgres" {
            writeln!(f, "  (the Postgres server's own time is in the wall time only)")?;
        }
        writeln!(f, "  {} events stored in all, every chain verified", self.verified)
    }
}

pub async fn run(args: &AuditArgs) -> anyhow::Result<AuditReport> {
    anyhow::ensure!(args.batch > 0 && args.tenants > 0, "--batch and --tenants must be at least 1");
    match &args.postgres_url {
        Some(server) => {
            let database = ScratchDatabase::create(server).await?;
            let result = match database.url() {
                Ok(url) => measure(args, DatabaseTarget::Postgres { url }, "postgres").await,
                Err(e) => Err(e),
            };
            database.drop().await;
            result
        }
        None => {
            let dir = std::env::temp_dir().join(format!("anno-bench-{}", anno_tenancy::new_id("audit")));
            let result = measure(args, DatabaseTarget::Sqlite { dir: dir.clone() }, "sqlite").await;
            let _ = std::fs::remove_dir_all(&dir);
            result
        }
    }
}

async fn measure(args: &AuditArgs, target: DatabaseTarget, backend: &'static str) -> anyhow::Result<AuditReport> {
    let db = target.open(SCHEMA, 2).await?;
    db.migrate(MIGRATIONS).await?;
    let store = AuditStore::new(db);
    let tenants: Vec<TenantId> = (0..args.tenants).map(|_| TenantId::generate()).collect();
    let mut calls = Calls { tenants: &tenants, n: 0 };
    // Made before the clock starts: only storing is timed.
    let warm_up: Vec<Vec<AuditEvent>> = (0..10).map(|_| calls.take(args.batch)).collect();
    let batches: Vec<Vec<AuditEvent>> = batch_sizes(args).into_iter().map(|size| calls.take(size)).collect();
    let (count, events) = (batches.len(), batches.iter().map(Vec::len).sum());
    let (path, elapsed, cpu) = match target.sqlite_file(SCHEMA).filter(|_| !args.pool) {
        // As the storing thread does: a connection of its own, on a thread of its own.
        Some(file) => {
            let timed = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let mut appender = Appender::open(&file)?;
                for batch in warm_up {
                    appender.append(batch)?;
                }
                let clock = Stopwatch::start();
                for batch in batches {
                    appender.append(batch)?;
                }
                Ok((clock.elapsed(), clock.cpu()))
            });
            let (elapsed, cpu) = timed.await??;
            ("the storing thread's connection", elapsed, cpu)
        }
        None => {
            for batch in warm_up {
                store.append(batch).await?;
            }
            let clock = Stopwatch::start();
            for batch in batches {
                store.append(batch).await?;
            }
            ("the pool", clock.elapsed(), clock.cpu())
        }
    };
    let report = store.verify(None).await?;
    anyhow::ensure!(report.is_intact(), "a chain did not verify: {report:?}");
    Ok(AuditReport { backend, path, batches: count, events, elapsed, cpu, verified: report.events() })
}

/// The sizes of the timed batches, adding up to `--events`.
fn batch_sizes(args: &AuditArgs) -> Vec<usize> {
    let smallest = (args.batch / 5).max(1);
    let mut sizes = Vec::new();
    let mut left = args.events;
    while left > 0 {
        let n = sizes.len();
        // A spread of sizes that repeats only now and then, as batch sizes do.
        let size = if args.vary { smallest + (n * 37) % (args.batch - smallest + 1) } else { args.batch };
        sizes.push(size.min(left));
        left -= size.min(left);
    }
    sizes
}

/// Calls like the gateway's: a key of one of the tenants reading its crawls.
struct Calls<'a> {
    tenants: &'a [TenantId],
    n: usize,
}

impl Calls<'_> {
    fn take(&mut self, count: usize) -> Vec<AuditEvent> {
        (0..count).map(|_| self.next_event()).collect()
    }

    fn next_event(&mut self) -> AuditEvent {
        self.n += 1;
        let tenant = &self.tenants[self.n % self.tenants.len()];
        let body = format!("{{\"data\":[],\"next\":null,\"n\":{}}}", self.n);
        let mut response = BodyTally::default();
        response.update(body.as_bytes());
        response.complete();
        AuditEvent {
            id: AuditEvent::new_id(),
            time: Timestamp::now(),
            tenant_id: Some(tenant.clone()),
            actor: Actor { kind: ActorKind::Key, id: Some(format!("key_{}", tenant.as_str())) },
            method: "GET".to_owned(),
            route: Some("/v1/crawl".to_owned()),
            path: "/v1/crawl".to_owned(),
            status: 200,
            latency_ms: (self.n % 7) as u64,
            client_ip: Some("203.0.113.7".to_owned()),
            user_agent: Some("anno-bench/1".to_owned()),
            request_id: Some(anno_tenancy::new_id("req")),
            request_digest: None,
            request_bytes: 0,
            response_digest: response.digest(),
            response_bytes: response.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(events: usize, batch: usize, vary: bool) -> AuditArgs {
        AuditArgs { events, batch, vary, tenants: 1, postgres_url: None, pool: false }
    }

    #[test]
    fn batches_add_up_to_the_events_asked_for() {
        assert_eq!(batch_sizes(&args(450, 200, false)), vec![200, 200, 50]);
        let varied = batch_sizes(&args(10_000, 200, true));
        assert_eq!(varied.iter().sum::<usize>(), 10_000);
        assert!(varied.iter().all(|&n| (1..=200).contains(&n)));
        assert!(varied[..varied.len() - 1].iter().all(|&n| n >= 40), "{varied:?}");
        let distinct: std::collections::BTreeSet<_> = varied.iter().collect();
        assert!(distinct.len() > 50, "sizes should vary: {distinct:?}");
    }
}
