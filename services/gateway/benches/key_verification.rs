//! How long verifying a tenant API key takes at the gateway.
//!
//! Three cases, each a real key created through the auth service:
//!
//! - `cached`: [`anno_gateway::Authenticator::verify`] on a key it already
//!   verified once, so its moka cache answers (a SHA-256 of the key and a lookup).
//! - `uncached/sqlite`: what the gateway does on a cache miss — a call to the auth
//!   service's `POST /internal/v1/verify` (in process, as in the embedded
//!   platform), which digests the key, looks it up and signs an internal token;
//!   the auth database is SQLite in a temporary directory.
//! - `uncached/postgres`: the same against PostgreSQL, in a fresh database
//!   `anno_test_<time>_<random hex>` created for the run and dropped after it. The
//!   server is `ANNO_TEST_POSTGRES_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/postgres`); when it cannot be reached the
//!   case is skipped with a message, unless `CI=true`, where that is a failure.
//!
//! Run it with:
//!
//! ```text
//! cargo bench -p anno-gateway --bench key_verification
//! ```
//!
//! Criterion's usual arguments follow `--`, e.g. `-- uncached` for one group.

use anno_api::auth::AuthClient;
use anno_api::client::ServiceClient;
use anno_api::tenant::TenantClient;
use anno_api::transport::{self, Transport};
use anno_auth::AuthState;
use anno_bus::Bus;
use anno_store::testing::{self, TestDatabase};
use anno_store::{DatabaseTarget, Db};
use anno_tenancy::{Secret, TenantId};
use criterion::Criterion;
use std::time::Duration;

const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30)
        .configure_from_args();

    // SQLite: serves both the cached case and `uncached/sqlite`.
    let dir = std::env::temp_dir().join(format!("anno_bench_{}", random_hex()));
    let sqlite =
        runtime.block_on(Fixture::new(DatabaseTarget::Sqlite { dir: dir.clone() })).expect("setting up auth on SQLite");

    let authenticator = runtime.block_on(async {
        let tenant = TenantClient(ServiceClient::new("tenant", sqlite.transport.clone()));
        let settings = anno_gateway::Settings {
            verification_ttl: Duration::from_secs(30),
            tenant_ttl: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_body_bytes: 16 * 1024 * 1024,
            trusted_proxies: anno_audit::TrustedProxies::default(),
            config_check_interval: Duration::from_millis(500),
        };
        let authenticator = anno_gateway::Authenticator::new(sqlite.client.clone(), tenant, &sqlite.bus, &settings);
        authenticator.verify(&sqlite.key).await.expect("the first, uncached verification");
        authenticator
    });
    criterion.bench_function("cached", |b| {
        b.to_async(&runtime).iter(|| async {
            authenticator.verify(&sqlite.key).await.expect("a cached verification");
        })
    });

    let postgres = runtime.block_on(PostgresRun::start());

    {
        let mut group = criterion.benchmark_group("uncached");
        group.bench_function("sqlite", |b| {
            b.to_async(&runtime).iter(|| async {
                sqlite.client.verify(&sqlite.key).await.expect("verification on SQLite");
            })
        });
        if let Some(run) = &postgres {
            group.bench_function("postgres", |b| {
                b.to_async(&runtime).iter(|| async {
                    run.fixture.client.verify(&run.fixture.key).await.expect("verification on Postgres");
                })
            });
        }
        group.finish();
    }

    drop(authenticator);
    runtime.block_on(sqlite.close());
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
    if let Some(run) = postgres {
        runtime.block_on(run.finish());
    }
    criterion.final_summary();
}

/// The auth service on one database, with a tenant API key it issued.
struct Fixture {
    db: Db,
    bus: Bus,
    transport: Transport,
    client: AuthClient,
    /// The plaintext tenant API key.
    key: String,
}

impl Fixture {
    async fn new(target: DatabaseTarget) -> anyhow::Result<Self> {
        let db = target.open("auth", 4).await?;
        db.migrate(anno_auth::MIGRATIONS).await?;
        let bus = Bus::in_process();
        let settings = anno_auth::Settings {
            pepper: Secret::new("x".repeat(40)),
            admin_key: Some(Secret::new(ADMIN_KEY)),
            internal_token_ttl: Duration::from_secs(120),
            access_token_ttl: Duration::from_secs(900),
            last_used_flush: Duration::from_secs(5),
            service_secret: None,
        };
        let state = AuthState::new(db.clone(), bus.clone(), settings).await?;
        let transport = transport::in_process(anno_auth::router(state));
        let client = AuthClient(ServiceClient::new("auth", transport.clone()));
        let admin = client.verify(ADMIN_KEY).await?;
        let created = client.create_first_key(&admin.token, &TenantId::generate()).await?;
        Ok(Fixture { db, bus, transport, client, key: created.secret })
    }

    /// Closes the pool, so the database can be dropped.
    async fn close(self) {
        self.db.pool().close().await;
    }
}

/// A throwaway Postgres database and the auth service on it.
struct PostgresRun {
    database: TestDatabase,
    fixture: Fixture,
}

impl PostgresRun {
    /// Creates the database and sets up auth in it; `None` (after saying so) when
    /// Postgres is unreachable outside CI (with `CI=true` that is a failure).
    async fn start() -> Option<Self> {
        if !testing::postgres_available().await {
            println!("uncached/postgres: skipped (set ANNO_TEST_POSTGRES_URL to run it)");
            return None;
        }
        let database = TestDatabase::create().await.expect("creating the bench database");
        match Fixture::new(DatabaseTarget::Postgres { url: database.url() }).await {
            Ok(fixture) => Some(PostgresRun { database, fixture }),
            Err(e) => {
                database.drop().await;
                panic!("setting up auth on Postgres: {e:#}");
            }
        }
    }

    async fn finish(self) {
        self.fixture.close().await;
        self.database.drop().await;
    }
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}
