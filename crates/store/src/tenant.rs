//! Pools onto tenants' own storage: the Postgres schema `tenant_<id>` or the
//! SQLite file `tenants/tenant_<id>.db`, opened on first use, migrated once, and
//! kept in a small least-recently-used cache.
//!
//! Storage is made at onboarding ([`Db::provision_tenant`]); this never makes it.
//! A tenant without storage (unknown, never onboarded, or purged) is
//! [`StoreError::NotFound`], which answers 404.

use crate::{Backend, DatabaseTarget, Db, Migration, StoreError, check_identifier, sqlite_url, with_search_path};
use anno_tenancy::{TenantId, tenant_schema};
use sqlx::Executor;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How tenant pools are sized and kept.
#[derive(Clone, Copy, Debug)]
pub struct TenantStoreSettings {
    /// Tenants whose pools are kept open; the least recently used is closed past this.
    pub capacity: usize,
    /// Connections per tenant pool.
    pub max_connections: u32,
    /// An unused connection is closed after this long.
    pub idle_timeout: Duration,
}

impl Default for TenantStoreSettings {
    fn default() -> Self {
        TenantStoreSettings { capacity: 64, max_connections: 2, idle_timeout: Duration::from_secs(60) }
    }
}

/// Opens (and caches) the [`Db`] of one tenant's own storage.
#[derive(Clone)]
pub struct TenantStores {
    inner: Arc<Inner>,
}

struct Inner {
    /// A pool of the platform's database, to ask whether a tenant's storage exists.
    platform: Db,
    migrations: Vec<Migration>,
    settings: TenantStoreSettings,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    tick: u64,
    entries: HashMap<TenantId, Entry>,
}

struct Entry {
    db: Arc<OnceCell<Db>>,
    used: u64,
}

impl std::fmt::Debug for TenantStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantStores").field("backend", &self.inner.platform.backend()).finish_non_exhaustive()
    }
}

impl TenantStores {
    /// Tenant storage on the same server (or data directory) as `platform`,
    /// migrated with `migrations` when first opened.
    pub fn new(platform: &Db, migrations: &[Migration]) -> Self {
        Self::with_settings(platform, migrations, TenantStoreSettings::default())
    }

    pub fn with_settings(platform: &Db, migrations: &[Migration], settings: TenantStoreSettings) -> Self {
        let inner =
            Inner { platform: platform.clone(), migrations: migrations.to_vec(), settings, cache: Mutex::default() };
        TenantStores { inner: Arc::new(inner) }
    }

    /// The tenant's own database, migrated. `NotFound` when the tenant has no storage.
    pub async fn open(&self, tenant: &TenantId) -> Result<Db, StoreError> {
        let cell = self.cell(tenant)?;
        let db = cell.get_or_try_init(|| self.connect(tenant)).await?;
        Ok(db.clone())
    }

    /// Closes the cached pool of a tenant, say when its storage is dropped.
    pub fn forget(&self, tenant: &TenantId) {
        if let Ok(mut cache) = self.inner.cache.lock() {
            cache.entries.remove(tenant);
        }
    }

    /// How many tenant pools are open.
    pub fn cached(&self) -> usize {
        self.inner.cache.lock().map(|c| c.entries.len()).unwrap_or(0)
    }

    /// The cache slot of a tenant, evicting the least recently used past capacity.
    fn cell(&self, tenant: &TenantId) -> Result<Arc<OnceCell<Db>>, StoreError> {
        let mut cache = self.inner.cache.lock().map_err(|_| StoreError::Other("tenant pool cache poisoned".into()))?;
        cache.tick += 1;
        let tick = cache.tick;
        let cell = {
            let entry = cache.entries.entry(tenant.clone()).or_insert_with(|| Entry { db: Arc::default(), used: 0 });
            entry.used = tick;
            entry.db.clone()
        };
        while cache.entries.len() > self.inner.settings.capacity.max(1) {
            let oldest = cache.entries.iter().filter(|(id, _)| *id != tenant).min_by_key(|(_, e)| e.used);
            let Some(oldest) = oldest.map(|(id, _)| id.clone()) else { break };
            // Handles still held elsewhere keep working; the pool closes with the last.
            cache.entries.remove(&oldest);
        }
        Ok(cell)
    }

    async fn connect(&self, tenant: &TenantId) -> Result<Db, StoreError> {
        let platform = &self.inner.platform;
        if !platform.tenant_storage_exists(tenant).await? {
            return Err(StoreError::NotFound);
        }
        let schema = tenant_schema(tenant);
        check_identifier(&schema)?;
        let target = platform.target.clone();
        let url = match &target {
            // `mode=rw`: a file removed meanwhile is an error, never a fresh empty file.
            DatabaseTarget::Sqlite { dir } => {
                sqlite_url(&dir.join("tenants").join(format!("{schema}.db"))).replace("mode=rwc", "mode=rw")
            }
            DatabaseTarget::Postgres { url } => with_search_path(url, &schema)?,
        };
        let backend = target.backend();
        let settings = self.inner.settings;
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .min_connections(0)
            // A broken connection fails its query and the pool replaces it; a
            // round trip before every checkout would cost every query one more.
            .test_before_acquire(false)
            .idle_timeout(Some(settings.idle_timeout))
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(AnyConnectOptions::from_str(&url)?)
            .await?;
        let db = Db { pool, target };
        db.migrate(&self.inner.migrations).await?;
        tracing::debug!(tenant.id = %tenant, "opened tenant storage");
        Ok(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestDatabase, postgres_available};

    const MIGRATIONS: &[Migration] = &[Migration {
        version: 1,
        name: "notes",
        sql: "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL);",
    }];

    async fn note(db: &Db, id: &str) {
        sqlx::query("INSERT INTO notes (id, body) VALUES ($1, $2)")
            .bind(id)
            .bind("x")
            .execute(db.pool())
            .await
            .unwrap();
    }

    async fn notes(db: &Db) -> Vec<String> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM notes ORDER BY id").fetch_all(db.pool()).await.expect("select");
        rows.into_iter().map(|r| r.0).collect()
    }

    async fn contract(target: &DatabaseTarget) {
        let platform = target.open("platform", 2).await.expect("open");
        let stores = TenantStores::with_settings(
            &platform,
            MIGRATIONS,
            TenantStoreSettings { capacity: 2, ..TenantStoreSettings::default() },
        );
        let (a, b, c) = (TenantId::generate(), TenantId::generate(), TenantId::generate());

        // Never creates storage for a tenant that was not provisioned.
        assert!(matches!(stores.open(&a).await, Err(StoreError::NotFound)));
        assert!(!platform.tenant_storage_exists(&a).await.unwrap(), "opening made no storage");

        for t in [&a, &b, &c] {
            platform.provision_tenant(t).await.expect("provision");
        }
        let db_a = stores.open(&a).await.expect("open a");
        note(&db_a, "a1").await;
        let db_b = stores.open(&b).await.expect("open b");
        note(&db_b, "b1").await;
        assert_eq!(notes(&db_a).await, ["a1"], "each tenant sees only its own rows");
        assert_eq!(notes(&db_b).await, ["b1"]);
        assert_eq!(notes(&stores.open(&a).await.unwrap()).await, ["a1"], "reopening finds the same storage");

        // Concurrent first opens migrate once and agree.
        let (x, y) = tokio::join!(stores.open(&c), stores.open(&c));
        note(&x.expect("open c"), "c1").await;
        assert_eq!(notes(&y.expect("open c again")).await, ["c1"]);
        assert!(stores.cached() <= 2, "the cache keeps at most its capacity");

        // A second set of stores (another replica, or after a restart) migrates nothing twice.
        let again = TenantStores::new(&platform, MIGRATIONS);
        assert_eq!(notes(&again.open(&b).await.expect("reopen b")).await, ["b1"]);

        // A purged tenant is gone, and is not brought back.
        platform.drop_tenant(&a).await.expect("drop");
        stores.forget(&a);
        assert!(matches!(stores.open(&a).await, Err(StoreError::NotFound)));
        assert!(!platform.tenant_storage_exists(&a).await.unwrap());
    }

    #[tokio::test]
    async fn tenant_stores_hold_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("anno-tenant-stores-{:016x}", rand::random::<u64>()));
        contract(&DatabaseTarget::Sqlite { dir: dir.clone() }).await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn tenant_stores_hold_on_postgres() {
        if !postgres_available().await {
            return;
        }
        let database = TestDatabase::create().await.expect("create a test database");
        contract(&DatabaseTarget::Postgres { url: database.url() }).await;
        database.drop().await;
    }
}
