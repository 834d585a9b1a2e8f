//! The storage contract, run against SQLite and against Postgres.

use crate::testing::{TestDatabase, postgres_available};
use crate::{DatabaseTarget, Db, Migration, StoreError};
use anno_tenancy::TenantId;

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "things", sql: "CREATE TABLE things (id TEXT PRIMARY KEY, n BIGINT NOT NULL);" },
    Migration {
        version: 2,
        name: "more",
        sql: "ALTER TABLE things ADD COLUMN label TEXT; CREATE INDEX things_by_n ON things (n);",
    },
];

fn is_send<T: Send>(t: T) -> T {
    t
}

async fn contract(target: &DatabaseTarget) {
    let db = is_send(target.open("contract", 2)).await.expect("open");
    db.ping().await.expect("ping");
    assert_eq!(is_send(db.migrate(MIGRATIONS)).await.expect("migrate"), 2);
    assert_eq!(db.migrate(MIGRATIONS).await.expect("migrate again"), 0, "migrations apply once");

    sqlx::query("INSERT INTO things (id, n, label) VALUES ($1, $2, $3)")
        .bind("a")
        .bind(1_i64)
        .bind("first")
        .execute(db.pool())
        .await
        .expect("insert");
    let duplicate =
        sqlx::query("INSERT INTO things (id, n) VALUES ($1, $2)").bind("a").bind(2_i64).execute(db.pool()).await;
    assert!(
        matches!(StoreError::from(duplicate.unwrap_err()), StoreError::Conflict(_)),
        "unique violation is a conflict"
    );
    let missing =
        sqlx::query_as::<_, (String,)>("SELECT id FROM things WHERE id = $1").bind("zz").fetch_one(db.pool()).await;
    assert!(matches!(StoreError::from(missing.unwrap_err()), StoreError::NotFound));

    // An edited migration is refused rather than silently diverging.
    let edited = [MIGRATIONS[0], Migration { sql: "ALTER TABLE things ADD COLUMN other TEXT;", ..MIGRATIONS[1] }];
    assert!(matches!(db.migrate(&edited).await, Err(StoreError::Config(_))));

    // Each service's schema is its own.
    let other = target.open("contract_other", 1).await.expect("open another schema");
    assert!(
        sqlx::query("SELECT id FROM things").execute(other.pool()).await.is_err(),
        "tables do not leak across schemas"
    );

    // Tenant storage is made at onboarding and dropped at purge.
    let tenant = TenantId::generate();
    assert!(!db.tenant_storage_exists(&tenant).await.unwrap());
    is_send(db.provision_tenant(&tenant)).await.expect("provision");
    db.provision_tenant(&tenant).await.expect("provisioning twice is harmless");
    assert!(db.tenant_storage_exists(&tenant).await.unwrap());
    is_send(db.drop_tenant(&tenant)).await.expect("drop");
    assert!(!db.tenant_storage_exists(&tenant).await.unwrap());
    db.drop_tenant(&tenant).await.expect("dropping twice is harmless");
}

#[tokio::test]
async fn the_contract_holds_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("anno-store-{:016x}", rand::random::<u64>()));
    contract(&DatabaseTarget::Sqlite { dir: dir.clone() }).await;
    assert!(dir.join("contract.db").exists(), "each service has its own file");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_contract_holds_on_postgres() {
    if !postgres_available().await {
        return;
    }
    let database = TestDatabase::create().await.expect("create a test database");
    contract(&DatabaseTarget::Postgres { url: database.url() }).await;
    database.drop().await;
}

/// Managed Postgres (RDS) refuses plaintext: the pool speaks TLS when the URL
/// asks for it. The test server is Debian's, whose SSL is on.
#[tokio::test]
async fn postgres_is_reached_over_tls_when_the_url_requires_it() {
    if !postgres_available().await {
        return;
    }
    let database = TestDatabase::create().await.expect("create a test database");
    let url = format!("{}?sslmode=require", database.url());
    let db = DatabaseTarget::Postgres { url }.open("tls_check", 1).await.expect("a TLS connection");
    let (ssl,): (String,) =
        sqlx::query_as("SELECT CASE WHEN ssl THEN 'on' ELSE 'off' END FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(db.pool())
            .await
            .expect("the connection's TLS state");
    assert_eq!(ssl, "on");
    database.drop().await;
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_crash() {
    let target = DatabaseTarget::Postgres { url: "postgres://nobody@127.0.0.1:1/none".into() };
    match target.open("x", 1).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {:?}", other.map(|_: Db| ())),
    }
}

#[tokio::test]
async fn database_urls_choose_the_backend() {
    let dir = std::path::Path::new("/data");
    assert!(matches!(DatabaseTarget::new(None, dir).unwrap(), DatabaseTarget::Sqlite { .. }));
    assert!(matches!(DatabaseTarget::new(Some("postgres://h/db"), dir).unwrap(), DatabaseTarget::Postgres { .. }));
    assert!(DatabaseTarget::new(Some("mysql://h/db"), dir).is_err());
    let bad_schema = DatabaseTarget::new(Some("postgres://h/db"), dir).unwrap().open("Bad-Name", 1).await;
    assert!(matches!(bad_schema, Err(StoreError::Config(_))), "schema names are checked before any SQL");
}

/// SQLite is built without process-wide locks on every allocation and page
/// (see `.cargo/config.toml`): connections on threads of different priority
/// (the audit storer's and the calls') must not wait on one another there.
#[tokio::test]
async fn sqlite_connections_share_no_allocation_or_page_cache_lock() {
    let dir = std::env::temp_dir().join(format!("anno-store-options-{:016x}", rand::random::<u64>()));
    let db = DatabaseTarget::Sqlite { dir: dir.clone() }.open("options", 1).await.expect("open");
    let options: Vec<(String,)> = sqlx::query_as("PRAGMA compile_options").fetch_all(db.pool()).await.expect("options");
    let options: Vec<String> = options.into_iter().map(|(o,)| o).collect();
    assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
    assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
    db.pool().close().await;
    let _ = std::fs::remove_dir_all(dir);
}
