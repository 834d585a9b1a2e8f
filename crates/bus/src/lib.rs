//! Publish/subscribe between services: Redis pub/sub when distributed, a tokio
//! broadcast channel when everything runs in one process.
//!
//! Pub/sub may drop messages (a reconnect, a slow subscriber). Subscribers are told
//! so with [`BusMessage::Resync`] and must then rebuild whatever they derived from
//! the messages (drop caches, compare versions).

mod stream;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use stream::{BATCH, Entry, Handler, next_batch};

use futures::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusMessage {
    Event {
        channel: String,
        payload: String,
    },
    /// Messages may have been missed: rebuild derived state.
    Resync,
}

#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    local: broadcast::Sender<BusMessage>,
    redis: Option<RedisBus>,
    streams: stream::LocalStreams,
}

struct RedisBus {
    namespace: String,
    client: redis::Client,
    conn: redis::aio::ConnectionManager,
    listener: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(redis) = &self.redis {
            redis.listener.abort();
        }
    }
}

const CAPACITY: usize = 1024;

impl Bus {
    /// A bus for one process.
    pub fn in_process() -> Self {
        let (local, _) = broadcast::channel(CAPACITY);
        Bus { inner: Arc::new(Inner { local, redis: None, streams: Default::default() }) }
    }

    /// A bus over Redis. `namespace` prefixes every channel, so several
    /// installations (or test runs) can share one Redis.
    pub async fn redis(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        // Bounded everywhere: a Redis that is down is an error within seconds,
        // never a start-up or a publish that hangs.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_factor(100)
            .set_max_delay(1_000)
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2));
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            redis::aio::ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))??;
        let (local, _) = broadcast::channel(CAPACITY);
        let listener = tokio::spawn(listen(client.clone(), namespace.to_owned(), local.clone()));
        let redis = RedisBus { namespace: namespace.to_owned(), client, conn, listener };
        Ok(Bus { inner: Arc::new(Inner { local, redis: Some(redis), streams: Default::default() }) })
    }

    /// The Redis connection and namespace of the distributed shape, for other
    /// shared state (counters, caches) to use the same server.
    pub fn redis_connection(&self) -> Option<(redis::aio::ConnectionManager, &str)> {
        self.inner.redis.as_ref().map(|r| (r.conn.clone(), r.namespace.as_str()))
    }

    pub fn is_distributed(&self) -> bool {
        self.inner.redis.is_some()
    }

    /// Publishes a JSON payload on a channel (see `anno_tenancy::bus_channel`).
    pub async fn publish<T: Serialize + ?Sized>(&self, channel: &str, payload: &T) -> anyhow::Result<()> {
        let payload = serde_json::to_string(payload)?;
        match &self.inner.redis {
            None => {
                // No receivers is not an error: nobody needed to know.
                let _ = self.inner.local.send(BusMessage::Event { channel: channel.to_owned(), payload });
            }
            Some(redis) => {
                let mut conn = redis.conn.clone();
                let full = format!("{}:{channel}", redis.namespace);
                redis::cmd("PUBLISH").arg(full).arg(payload).query_async::<i64>(&mut conn).await?;
            }
        }
        Ok(())
    }

    /// Every message on every channel from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.inner.local.subscribe()
    }

    /// Readiness: Redis answers (always true in process).
    pub async fn ping(&self) -> anyhow::Result<()> {
        if let Some(redis) = &self.inner.redis {
            let mut conn = redis.conn.clone();
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
        }
        Ok(())
    }
}

/// Holds a pattern subscription on `{namespace}:*`, forwarding messages to local
/// subscribers; after every (re)connection it tells them to resynchronise.
async fn listen(client: redis::Client, namespace: String, local: broadcast::Sender<BusMessage>) {
    let prefix = format!("{namespace}:");
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(format!("{prefix}*")).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    let _ = local.send(BusMessage::Resync);
                    let mut stream = pubsub.on_message();
                    while let Some(msg) = stream.next().await {
                        let channel = msg.get_channel_name();
                        let Some(channel) = channel.strip_prefix(&prefix) else { continue };
                        match msg.get_payload::<String>() {
                            Ok(payload) => {
                                let _ = local.send(BusMessage::Event { channel: channel.to_owned(), payload });
                            }
                            Err(e) => tracing::warn!(error = %e, "dropping a bus message that is not text"),
                        }
                    }
                    tracing::warn!("bus subscription to Redis ended; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "subscribing on Redis failed"),
            },
            Err(e) => tracing::warn!(error = %e, "connecting to Redis for the bus failed"),
        }
        let _ = local.send(BusMessage::Resync);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{redis_available, redis_url};

    async fn next_event(rx: &mut broadcast::Receiver<BusMessage>) -> BusMessage {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a message within 5 s") {
                Ok(BusMessage::Resync) => continue,
                Ok(message) => return message,
                Err(e) => panic!("receiving: {e}"),
            }
        }
    }

    #[tokio::test]
    async fn redis_carries_events_between_replicas_within_a_namespace() {
        if !redis_available().await {
            return;
        }
        let namespace = format!("anno-bus-test-{:08x}", rand_suffix());
        let a = Bus::redis(&redis_url(), &namespace).await.unwrap();
        let b = Bus::redis(&redis_url(), &namespace).await.unwrap();
        let elsewhere = Bus::redis(&redis_url(), &format!("{namespace}-other")).await.unwrap();
        let mut rx_b = b.subscribe();
        let mut rx_other = elsewhere.subscribe();
        // Subscriptions are made in the background; the first message after each
        // (re)connection is a Resync.
        for rx in [&mut rx_b, &mut rx_other] {
            let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            assert_eq!(first, BusMessage::Resync);
        }
        a.publish("platform:auth", &serde_json::json!({"n": 1})).await.unwrap();
        assert_eq!(
            next_event(&mut rx_b).await,
            BusMessage::Event { channel: "platform:auth".into(), payload: r#"{"n":1}"#.into() }
        );
        assert!(a.ping().await.is_ok());
        // Another namespace hears nothing.
        assert!(tokio::time::timeout(Duration::from_millis(300), rx_other.recv()).await.is_err());
    }

    /// Managed Redis (ElastiCache with in-transit encryption) is `rediss://`:
    /// the client must be built with TLS, or such a URL is refused outright.
    #[test]
    fn tls_urls_are_understood() {
        let client = redis::Client::open("rediss://:token@redis.example:6379");
        assert!(client.is_ok(), "{:?}", client.err());
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_not_a_hang() {
        let started = std::time::Instant::now();
        assert!(Bus::redis("redis://127.0.0.1:1", "x").await.is_err());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    fn rand_suffix() -> u32 {
        std::process::id() ^ (crate::tests::nanos() as u32)
    }

    pub(crate) fn nanos() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    }

    #[tokio::test]
    async fn in_process_subscribers_receive_published_events() {
        let bus = Bus::in_process();
        let mut rx = bus.subscribe();
        bus.publish("platform:auth", &serde_json::json!({"type": "key.revoked"})).await.unwrap();
        assert_eq!(
            rx.recv().await.unwrap(),
            BusMessage::Event { channel: "platform:auth".into(), payload: r#"{"type":"key.revoked"}"#.into() }
        );
    }
}
