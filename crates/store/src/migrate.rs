//! Embedded, numbered migrations; applied once each, in order, under a lock.

use crate::{Backend, Db, StoreError};
use sha2::{Digest, Sha256};
use sqlx::Executor;

/// One migration, embedded with `include_str!`. Never edit one once released.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

impl Db {
    /// Applies the migrations not yet applied, all in one transaction. Refuses to
    /// run when an applied migration's text changed since, which would leave
    /// schemas diverging. Replicas starting together take turns (Postgres:
    /// a transaction-scoped advisory lock per schema; SQLite: the write lock).
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema()))").execute(&mut *tx).await?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS _migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let applied: Vec<(i64, String)> =
            sqlx::query_as("SELECT version, checksum FROM _migrations ORDER BY version").fetch_all(&mut *tx).await?;
        let mut count = 0;
        for migration in migrations {
            let checksum = migration.checksum();
            if let Some((_, stored)) = applied.iter().find(|(v, _)| *v == migration.version) {
                if *stored != checksum {
                    return Err(StoreError::Config(format!(
                        "migration {} ({}) changed after it was applied",
                        migration.version, migration.name
                    )));
                }
                continue;
            }
            // `Executor::execute` rather than `RawSql::execute`: its future is provably `Send`.
            (&mut *tx).execute(sqlx::raw_sql(migration.sql)).await?;
            sqlx::query("INSERT INTO _migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                .bind(migration.version)
                .bind(migration.name)
                .bind(&checksum)
                .bind(anno_tenancy::now_ms())
                .execute(&mut *tx)
                .await?;
            tracing::info!(version = migration.version, name = migration.name, "applied migration");
            count += 1;
        }
        tx.commit().await?;
        Ok(count)
    }
}
