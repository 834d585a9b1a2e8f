//! The database layer: one pool type for Postgres or SQLite, chosen by URL, a
//! migrations runner, tenant-scoped storage provisioning, and the mapping of
//! database failures to API errors.
//!
//! Each service owns its tables: in Postgres in its own schema (`auth`, `tenant`, …)
//! reached through `search_path`; embedded, in its own SQLite file under the data dir.
//! Queries are written once in the SQL both engines accept (`$n` placeholders,
//! `TEXT` and `BIGINT` columns, millisecond timestamps).

mod error;
mod migrate;
pub mod tenant;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use migrate::Migration;
pub use sqlx;

use anno_tenancy::{TenantId, tenant_schema};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The `n`th (from 1) bind parameter of a statement written at run time.
    /// SQLite gets anonymous `?`s: it looks a numbered parameter's name up in a
    /// list once per parameter, so binding a statement of thousands of `$n`
    /// costs the square of their number.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Backend::Postgres => format!("${n}"),
            Backend::Sqlite => "?".to_owned(),
        }
    }
}

/// Where services keep their data: a directory of SQLite files, or one Postgres database.
#[derive(Clone, Debug)]
pub enum DatabaseTarget {
    Sqlite { dir: PathBuf },
    Postgres { url: String },
}

impl DatabaseTarget {
    /// A Postgres URL when given, else SQLite files under `data_dir`.
    pub fn new(database_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        match database_url.filter(|u| !u.trim().is_empty()) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Self::Postgres { url: url.to_owned() })
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                Ok(Self::Sqlite { dir: PathBuf::from(path) })
            }
            Some(_) => anyhow::bail!("the database URL must start with postgres:// or sqlite://"),
            None => Ok(Self::Sqlite { dir: data_dir.to_owned() }),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The SQLite file of one service's schema; none on Postgres.
    pub fn sqlite_file(&self, schema: &str) -> Option<PathBuf> {
        match self {
            Self::Sqlite { dir } => Some(schema_file(dir, schema)),
            Self::Postgres { .. } => None,
        }
    }

    /// Opens the pool of one service's own schema (Postgres) or file (SQLite).
    pub async fn open(&self, schema: &str, max_connections: u32) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        check_identifier(schema)?;
        let url = match self {
            Self::Sqlite { dir } => {
                std::fs::create_dir_all(dir).map_err(StoreError::io)?;
                sqlite_url(&schema_file(dir, schema))
            }
            Self::Postgres { url } => {
                let mut conn = sqlx::AnyConnection::connect(url).await?;
                let exists: Option<(String,)> =
                    sqlx::query_as("SELECT schema_name::TEXT FROM information_schema.schemata WHERE schema_name = $1")
                        .bind(schema)
                        .fetch_optional(&mut conn)
                        .await?;
                if exists.is_none() {
                    conn.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str()).await?;
                }
                conn.close().await?;
                with_search_path(url, schema)?
            }
        };
        let backend = self.backend();
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .min_connections(0)
            // A broken connection fails its query and the pool replaces it; a
            // round trip before every checkout would cost every query one more.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(SQLITE_SETTINGS).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Db { pool, target: self.clone() })
    }
}

/// What every connection to a service's SQLite file runs first: the
/// write-ahead log, so readers never wait for the writer; commits that sync
/// at checkpoints only; and a writer that finds the file locked waits up to
/// 5 s rather than failing.
pub const SQLITE_SETTINGS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;";

/// Where a schema's SQLite file is, in the data directory.
fn schema_file(dir: &Path, schema: &str) -> PathBuf {
    dir.join(format!("{schema}.db"))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

fn with_search_path(url: &str, schema: &str) -> Result<String, StoreError> {
    let mut parsed = url::Url::parse(url).map_err(|e| StoreError::Config(e.to_string()))?;
    parsed.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));
    Ok(parsed.into())
}

/// Schema and file names are built from ids, but checked anyway before they reach SQL.
fn check_identifier(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { Ok(()) } else { Err(StoreError::Config(format!("`{name}` is not a valid schema name"))) }
}

/// A service's database: a pool and where it lives.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    target: DatabaseTarget,
}

impl Db {
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.target.backend()
    }

    /// Where the pool connects: to open another pool on the same data.
    pub fn target(&self) -> &DatabaseTarget {
        &self.target
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Creates the tenant's own storage: schema `tenant_<id>` in Postgres, or its
    /// own SQLite file under `tenants/`.
    pub async fn provision_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let schema = tenant_schema(tenant);
        check_identifier(&schema)?;
        match &self.target {
            DatabaseTarget::Postgres { .. } => {
                self.pool.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str()).await?;
            }
            DatabaseTarget::Sqlite { dir } => {
                let dir = dir.join("tenants");
                std::fs::create_dir_all(&dir).map_err(StoreError::io)?;
                let mut conn = sqlx::AnyConnection::connect(&sqlite_url(&dir.join(format!("{schema}.db")))).await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.close().await?;
            }
        }
        Ok(())
    }

    /// Whether the tenant's own storage exists.
    pub async fn tenant_storage_exists(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let schema = tenant_schema(tenant);
        match &self.target {
            DatabaseTarget::Postgres { .. } => {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT schema_name::TEXT FROM information_schema.schemata WHERE schema_name = $1")
                        .bind(&schema)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.is_some())
            }
            DatabaseTarget::Sqlite { dir } => Ok(dir.join("tenants").join(format!("{schema}.db")).exists()),
        }
    }

    /// Removes the tenant's own storage and everything in it.
    pub async fn drop_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let schema = tenant_schema(tenant);
        check_identifier(&schema)?;
        match &self.target {
            DatabaseTarget::Postgres { .. } => {
                self.pool.execute(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str()).await?;
            }
            DatabaseTarget::Sqlite { dir } => {
                let base = dir.join("tenants").join(format!("{schema}.db"));
                for suffix in ["", "-wal", "-shm"] {
                    let path = PathBuf::from(format!("{}{suffix}", base.display()));
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StoreError::io(e)),
                    }
                }
            }
        }
        Ok(())
    }
}
