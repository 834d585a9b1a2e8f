//! Embedded, numbered migrations; applied once each, in order, under a lock.

use crate::{Backend, Db, StoreError};
use sha2::{Digest, Sha256};
use sqlx::{Acquire, Executor};

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
    /// Applies the migrations not yet applied. Refuses to run when an applied
    /// migration's text changed since, which would leave schemas diverging.
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<usize, StoreError> {
        let mut conn = self.pool.acquire().await?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .await?;
        if self.backend() == Backend::Postgres {
            // Replicas starting together take turns; the lock is per schema.
            conn.execute("SELECT pg_advisory_lock(hashtext(current_schema()))").await?;
        }
        let result = apply(&mut conn, migrations).await;
        if self.backend() == Backend::Postgres {
            conn.execute("SELECT pg_advisory_unlock(hashtext(current_schema()))").await?;
        }
        result
    }
}

async fn apply(conn: &mut sqlx::AnyConnection, migrations: &[Migration]) -> Result<usize, StoreError> {
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, checksum FROM _migrations ORDER BY version").fetch_all(&mut *conn).await?;
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
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO _migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(&checksum)
            .bind(anno_tenancy::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
        count += 1;
    }
    Ok(count)
}
