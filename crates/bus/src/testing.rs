//! Test support: the Redis server tests use, from `ANNO_TEST_REDIS_URL`.

use std::time::Duration;

pub fn redis_url() -> String {
    std::env::var("ANNO_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// Whether Redis answers. Outside CI a test may skip when it does not; with
/// `CI=true` its absence fails the test.
pub async fn redis_available() -> bool {
    let check = async {
        let client = redis::Client::open(redis_url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    let why = match tokio::time::timeout(Duration::from_secs(5), check).await {
        Ok(Ok(_)) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".to_owned(),
    };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "CI=true and Redis is unavailable: {why}");
    eprintln!("skipping: Redis unavailable ({why})");
    false
}
