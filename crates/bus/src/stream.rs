//! Durable streams: records a service must not lose (units used, audit events)
//! travel from the replica that produced them to the one service that stores them.
//!
//! Distributed, a stream is a Redis stream read by a consumer group: an entry is
//! acknowledged and deleted only after the handler stored it, and entries a dead
//! consumer left pending are claimed by a live one. In process, a stream is an
//! unbounded queue. Delivery is at least once either way: handlers store entries
//! idempotently (by the id the producer put in the payload).

use crate::Bus;
use futures::future::BoxFuture;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use serde::de::DeserializeOwned;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One record on a stream.
#[derive(Clone, Default)]
pub struct Entry {
    pub id: String,
    /// The record as JSON: always from Redis; in process, empty when the
    /// producer handed the record over as it is (see [`Entry::value`]).
    pub payload: String,
    /// In process only: the record itself, not encoded at all.
    pub value: Option<Arc<dyn Any + Send + Sync>>,
}

impl Entry {
    /// An entry carrying JSON.
    pub fn json(id: impl Into<String>, payload: impl Into<String>) -> Entry {
        Entry { id: id.into(), payload: payload.into(), value: None }
    }

    /// The record: the one handed over in process, or read from the JSON.
    pub fn decode<T: DeserializeOwned + Clone + 'static>(&self) -> serde_json::Result<T> {
        match self.value.as_ref().and_then(|value| value.downcast_ref::<T>()) {
            Some(value) => Ok(value.clone()),
            None => serde_json::from_str(&self.payload),
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("payload", &self.payload)
            .field("value", &self.value.as_ref().map(|_| ".."))
            .finish()
    }
}

/// Stores a batch of entries; an error leaves them to be handed over again.
pub type Handler = Arc<dyn Fn(Vec<Entry>) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// The field of a Redis stream entry that holds the payload.
pub const FIELD: &str = "p";

/// Most entries a consumer's handler is given at once.
pub const BATCH: usize = 200;
/// How long a consumer that got less than a full batch waits for more before
/// handing it over: storing costs about the same per batch however small, so
/// a few milliseconds of delay make the store's work per entry far smaller
/// when entries trickle in.
const LINGER: Duration = Duration::from_millis(25);
/// A pending entry idle this long belongs to a consumer presumed dead.
const CLAIM_IDLE_MS: u64 = 30_000;

#[derive(Default)]
pub(crate) struct LocalStreams {
    queues: Mutex<HashMap<String, LocalQueue>>,
}

struct LocalQueue {
    tx: mpsc::UnboundedSender<Entry>,
    rx: Option<mpsc::UnboundedReceiver<Entry>>,
    next: u64,
}

impl LocalStreams {
    fn with<T>(&self, stream: &str, f: impl FnOnce(&mut LocalQueue) -> T) -> T {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = queues.get_mut(stream) {
            return f(queue);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        f(queues.entry(stream.to_owned()).or_insert(LocalQueue { tx, rx: Some(rx), next: 0 }))
    }
}

impl Bus {
    /// The Redis key of a stream, for scripts that append to it atomically with
    /// other writes. `None` in process.
    pub fn stream_key(&self, stream: &str) -> Option<String> {
        self.inner.redis.as_ref().map(|r| format!("{}:stream:{stream}", r.namespace))
    }

    /// Appends a payload to a stream.
    pub async fn append(&self, stream: &str, payload: &str) -> anyhow::Result<()> {
        match &self.inner.redis {
            Some(redis) => {
                let mut conn = redis.conn.clone();
                let key = format!("{}:stream:{stream}", redis.namespace);
                redis::cmd("XADD").arg(key).arg("*").arg(FIELD).arg(payload).query_async::<String>(&mut conn).await?;
            }
            None => self.append_local(stream, payload),
        }
        Ok(())
    }

    /// Appends payloads to a stream in order, in one round trip.
    pub async fn append_many(&self, stream: &str, payloads: &[String]) -> anyhow::Result<()> {
        match &self.inner.redis {
            Some(redis) => {
                let mut conn = redis.conn.clone();
                let key = format!("{}:stream:{stream}", redis.namespace);
                let mut pipe = redis::pipe();
                for payload in payloads {
                    pipe.cmd("XADD").arg(&key).arg("*").arg(FIELD).arg(payload).ignore();
                }
                pipe.query_async::<()>(&mut conn).await?;
            }
            None => {
                for payload in payloads {
                    self.append_local(stream, payload);
                }
            }
        }
        Ok(())
    }

    /// Appends to the in-process queue of a stream (what [`Bus::append`] does
    /// when there is no Redis); callers that wrote the entry by script use it
    /// only in process.
    pub fn append_local(&self, stream: &str, payload: impl Into<String>) {
        self.push_local(stream, payload.into(), None);
    }

    /// Appends a record to the in-process queue of a stream as it is, with no
    /// JSON made of it: consumers read it with [`Entry::decode`]. Only for a
    /// bus without Redis (see [`Bus::stream_key`]).
    pub fn append_value<T: Any + Send + Sync>(&self, stream: &str, value: T) {
        self.push_local(stream, String::new(), Some(Arc::new(value)));
    }

    fn push_local(&self, stream: &str, payload: String, value: Option<Arc<dyn Any + Send + Sync>>) {
        self.inner.streams.with(stream, |q| {
            q.next += 1;
            // The receiver lives as long as the bus; a closed queue means the
            // process is stopping.
            let _ = q.tx.send(Entry { id: q.next.to_string(), payload, value });
        });
    }

    /// Hands every entry of `stream` to `handler`, as member `consumer` of
    /// `group`, until the returned task is aborted. In process a stream has one
    /// consumer; a second call for it returns a task that ends at once.
    pub fn consume(&self, stream: &str, group: &str, consumer: &str, handler: Handler) -> JoinHandle<()> {
        match &self.inner.redis {
            Some(redis) => {
                let key = format!("{}:stream:{stream}", redis.namespace);
                tokio::spawn(consume_redis(redis.client.clone(), key, group.to_owned(), consumer.to_owned(), handler))
            }
            None => match self.inner.streams.with(stream, |q| q.rx.take()) {
                Some(rx) => tokio::spawn(consume_local(rx, handler)),
                None => {
                    tracing::error!(stream, "a stream in process has one consumer; ignoring a second");
                    tokio::spawn(async {})
                }
            },
        }
    }
}

/// Waits for an entry, then lets more gather for `linger`, up to `max` in
/// `batch`; 0 when the queue closed empty. It sleeps while they gather:
/// waiting on the queue instead would wake the task for every entry.
pub async fn next_batch<T>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    batch: &mut Vec<T>,
    max: usize,
    linger: Duration,
) -> usize {
    if rx.recv_many(batch, max).await == 0 {
        return 0;
    }
    if batch.len() < max {
        tokio::time::sleep(linger).await;
        while batch.len() < max {
            match rx.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
    }
    batch.len()
}

async fn consume_local(mut rx: mpsc::UnboundedReceiver<Entry>, handler: Handler) {
    let mut batch = Vec::with_capacity(BATCH);
    while next_batch(&mut rx, &mut batch, BATCH, LINGER).await > 0 {
        let mut backoff = Duration::from_millis(50);
        // Retried until stored: the queue is the only copy.
        while let Err(e) = handler(batch.clone()).await {
            tracing::warn!(error = %e, "storing stream entries failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        batch.clear();
    }
}

async fn consume_redis(client: redis::Client, key: String, group: String, consumer: String, handler: Handler) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match consume_session(&client, &key, &group, &consumer, &handler).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, stream = %key, "consuming a stream failed; reconnecting"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One connection's worth of consuming. Blocking reads get their own
/// connection: a blocked command would hold up everything multiplexed on it.
async fn consume_session(
    client: &redis::Client,
    key: &str,
    group: &str,
    consumer: &str,
    handler: &Handler,
) -> anyhow::Result<()> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(10));
    let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
    let created: redis::RedisResult<String> =
        redis::cmd("XGROUP").arg("CREATE").arg(key).arg(group).arg("0").arg("MKSTREAM").query_async(&mut conn).await;
    if let Err(e) = created {
        if e.code() != Some("BUSYGROUP") {
            return Err(e.into());
        }
    }
    // First what this consumer took and did not acknowledge before a restart.
    let mut pending = true;
    let mut last_claim = tokio::time::Instant::now() - Duration::from_secs(3600);
    loop {
        let mut entries = Vec::new();
        if last_claim.elapsed() >= Duration::from_millis(CLAIM_IDLE_MS / 2) {
            last_claim = tokio::time::Instant::now();
            let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(key)
                .arg(group)
                .arg(consumer)
                .arg(CLAIM_IDLE_MS)
                .arg("0-0")
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut conn)
                .await?;
            entries.extend(claimed.claimed.iter().filter_map(entry));
        }
        if entries.is_empty() {
            let (id, block) = if pending { ("0", None) } else { (">", Some(2_000)) };
            entries = read_group(&mut conn, key, group, consumer, id, BATCH, block).await?;
            if pending && entries.is_empty() {
                pending = false;
                continue;
            }
            if !pending && !entries.is_empty() && entries.len() < BATCH {
                tokio::time::sleep(LINGER).await;
                entries.extend(read_group(&mut conn, key, group, consumer, ">", BATCH - entries.len(), None).await?);
            }
        }
        if entries.is_empty() {
            continue;
        }
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        match handler(entries).await {
            Ok(()) => {
                redis::pipe()
                    .cmd("XACK")
                    .arg(key)
                    .arg(group)
                    .arg(&ids)
                    .ignore()
                    .cmd("XDEL")
                    .arg(key)
                    .arg(&ids)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, stream = %key, "storing stream entries failed; they stay pending");
                pending = true;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// `XREADGROUP` of up to `count` entries after `id` (`0`: this consumer's
/// pending ones; `>`: new ones), waiting up to `block` ms for one.
async fn read_group(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    group: &str,
    consumer: &str,
    id: &str,
    count: usize,
    block: Option<usize>,
) -> redis::RedisResult<Vec<Entry>> {
    let options = StreamReadOptions::default().group(group, consumer).count(count);
    let options = match block {
        Some(ms) => options.block(ms),
        None => options,
    };
    let reply: Option<StreamReadReply> =
        redis::cmd("XREADGROUP").arg(&options).arg("STREAMS").arg(key).arg(id).query_async(conn).await?;
    Ok(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).filter_map(|id| entry(&id)).collect())
}

fn entry(id: &StreamId) -> Option<Entry> {
    let payload = match id.map.get(FIELD)? {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok()?,
        redis::Value::SimpleString(s) => s.clone(),
        _ => return None,
    };
    Some(Entry::json(id.id.clone(), payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{redis_available, redis_url};

    fn collector() -> (Handler, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handler: Handler = Arc::new(move |entries: Vec<Entry>| {
            let tx = tx.clone();
            Box::pin(async move {
                for e in entries {
                    let _ = tx.send(e.payload);
                }
                Ok(())
            })
        });
        (handler, rx)
    }

    async fn take(rx: &mut mpsc::UnboundedReceiver<String>, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        while got.len() < n {
            let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("entries within 10 s");
            got.push(next.expect("the consumer is running"));
        }
        got
    }

    #[tokio::test]
    async fn in_process_entries_appended_before_the_consumer_starts_are_delivered_in_order() {
        let bus = Bus::in_process();
        bus.append("usage", "one").await.unwrap();
        bus.append("usage", "two").await.unwrap();
        let (handler, mut rx) = collector();
        let _task = bus.consume("usage", "ledger", "c1", handler);
        bus.append("usage", "three").await.unwrap();
        assert_eq!(take(&mut rx, 3).await, ["one", "two", "three"]);
    }

    #[derive(Clone, Debug, PartialEq, serde::Deserialize)]
    struct Record {
        n: u32,
    }

    #[tokio::test]
    async fn in_process_records_go_over_as_they_are_and_json_beside_them_still_reads() {
        let bus = Bus::in_process();
        bus.append_value("audit", Record { n: 1 });
        bus.append("audit", r#"{"n":2}"#).await.unwrap();
        // A record of another type is not taken for this one.
        bus.append_value("audit", 3_u8);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handler: Handler = Arc::new(move |entries: Vec<Entry>| {
            let tx = tx.clone();
            Box::pin(async move {
                for e in entries {
                    let _ = tx.send((e.payload.clone(), e.decode::<Record>().ok()));
                }
                Ok(())
            })
        });
        let _task = bus.consume("audit", "store", "c1", handler);
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap());
        }
        assert_eq!(got[0], (String::new(), Some(Record { n: 1 })), "no JSON was made of it");
        assert_eq!(got[1], (r#"{"n":2}"#.to_owned(), Some(Record { n: 2 })));
        assert_eq!(got[2], (String::new(), None));
    }

    #[tokio::test]
    async fn in_process_a_failing_handler_gets_the_same_entries_again() {
        let bus = Bus::in_process();
        let failures = Arc::new(std::sync::atomic::AtomicU32::new(2));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handler: Handler = Arc::new(move |entries: Vec<Entry>| {
            let (tx, failures) = (tx.clone(), failures.clone());
            Box::pin(async move {
                if failures
                    .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
                        n.checked_sub(1)
                    })
                    .is_ok()
                {
                    anyhow::bail!("store down");
                }
                for e in entries {
                    let _ = tx.send(e.payload);
                }
                Ok(())
            })
        });
        bus.append("audit", "a").await.unwrap();
        let _task = bus.consume("audit", "store", "c1", handler);
        assert_eq!(take(&mut rx, 1).await, ["a"]);
    }

    #[tokio::test]
    async fn append_many_keeps_the_order_in_process_and_in_redis() {
        let sent: Vec<String> = (0..450).map(|n| format!("e{n}")).collect();
        let mut buses = vec![Bus::in_process()];
        if redis_available().await {
            let namespace = format!("anno-stream-test-{}-{}", std::process::id(), crate::tests::nanos());
            buses.push(Bus::redis(&redis_url(), &namespace).await.unwrap());
        }
        for bus in buses {
            bus.append_many("audit", &sent[..300]).await.unwrap();
            let (handler, mut rx) = collector();
            let _task = bus.consume("audit", "store", "c1", handler);
            bus.append_many("audit", &sent[300..]).await.unwrap();
            assert_eq!(take(&mut rx, sent.len()).await, sent);
            if let Some((mut conn, _)) = bus.redis_connection() {
                let _: () =
                    redis::cmd("DEL").arg(bus.stream_key("audit").unwrap()).query_async(&mut conn).await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn redis_entries_left_by_a_dead_consumer_are_delivered_to_the_next() {
        if !redis_available().await {
            return;
        }
        let namespace = format!("anno-stream-test-{}-{}", std::process::id(), crate::tests::nanos());
        let producer = Bus::redis(&redis_url(), &namespace).await.unwrap();
        for n in 0..5 {
            producer.append("usage", &format!("u{n}")).await.unwrap();
        }
        // A consumer that takes the entries and dies before storing them.
        let dead: Handler = Arc::new(|_| Box::pin(async { futures::future::pending::<anyhow::Result<()>>().await }));
        let task = producer.consume("usage", "ledger", "dead", dead);
        tokio::time::sleep(Duration::from_millis(500)).await;
        task.abort();
        // A consumer restarting under the same name picks up its own pending entries.
        let (handler, mut rx) = collector();
        let _live = producer.consume("usage", "ledger", "dead", handler);
        let mut got = take(&mut rx, 5).await;
        got.sort();
        assert_eq!(got, ["u0", "u1", "u2", "u3", "u4"]);
        producer.append("usage", "u5").await.unwrap();
        assert_eq!(take(&mut rx, 1).await, ["u5"]);
        // Stored entries are acknowledged and removed.
        let (mut conn, _) = producer.redis_connection().unwrap();
        let key = producer.stream_key("usage").unwrap();
        let mut left = u64::MAX;
        for _ in 0..50 {
            left = redis::cmd("XLEN").arg(&key).query_async(&mut conn).await.unwrap();
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(left, 0);
        let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
    }
}
