//! Test support: real Postgres databases for tests, made and dropped per test.
//! Addresses come from the environment; in CI (`CI=true`) a missing server fails
//! the test instead of skipping it.

use sqlx::{Connection, Executor};
use std::time::Duration;

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// `ANNO_TEST_POSTGRES_URL`, by default the local server.
pub fn postgres_url() -> String {
    env_or("ANNO_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
}

/// Reports a missing backing service: a failure in CI, a skip elsewhere.
pub fn unavailable(what: &str, why: &str) -> bool {
    assert!(!in_ci(), "CI=true and {what} is unavailable: {why}");
    eprintln!("skipping: {what} unavailable ({why})");
    false
}

pub async fn postgres_available() -> bool {
    let check = async {
        let mut conn = sqlx::PgConnection::connect(&postgres_url()).await?;
        conn.execute("SELECT 1").await?;
        Ok::<_, sqlx::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(5), check).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => unavailable("Postgres", &e.to_string()),
        Err(_) => unavailable("Postgres", "timed out"),
    }
}

/// A throwaway database on the test server. Call [`TestDatabase::drop`] at the
/// end; databases left by runs that died are dropped an hour later.
pub struct TestDatabase {
    server_url: String,
    pub name: String,
}

impl TestDatabase {
    pub async fn create() -> Result<TestDatabase, sqlx::Error> {
        let server_url = postgres_url();
        let mut conn = sqlx::PgConnection::connect(&server_url).await?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let stale: Vec<(String,)> = sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'anno_test_%'")
            .fetch_all(&mut conn)
            .await?;
        for (name,) in stale {
            let created = name.split('_').nth(2).and_then(|s| s.parse::<u64>().ok()).unwrap_or(now);
            if created + 3600 < now {
                let _ = conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await;
            }
        }
        let name = format!("anno_test_{now}_{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await?;
        Ok(TestDatabase { server_url, name })
    }

    /// The URL of this database.
    pub fn url(&self) -> String {
        match url::Url::parse(&self.server_url) {
            Ok(mut url) => {
                url.set_path(&self.name);
                url.into()
            }
            Err(_) => self.server_url.clone(),
        }
    }

    pub async fn drop(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.server_url).await {
            let _ = conn.execute(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name).as_str()).await;
        }
    }
}
