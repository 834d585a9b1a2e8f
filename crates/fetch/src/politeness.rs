//! Politeness: at most one request per host and interval, in this process or
//! across every replica through Redis.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Who keeps the next free slot of each host.
#[derive(Clone)]
pub enum HostCoordinator {
    /// This process only.
    Local,
    /// Shared by all replicas: an atomic script reserves the next slot in
    /// `{namespace}:host:{host}`. When Redis fails, the process falls back to its
    /// local slots (and logs a warning) rather than wait.
    Redis { conn: redis::aio::ConnectionManager, namespace: String },
}

impl std::fmt::Debug for HostCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostCoordinator::Local => f.write_str("Local"),
            HostCoordinator::Redis { namespace, .. } => f.debug_struct("Redis").field("namespace", namespace).finish(),
        }
    }
}

/// The outcome of asking for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Reserved; go after this wait.
    After(Duration),
    /// The wait would be longer than allowed; nothing was reserved.
    Busy(Duration),
}

/// The longest a Redis round trip may take before the local slots are used.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Reserves the host's next slot unless the wait exceeds the limit. Times come
/// from the Redis server's clock, so replicas agree.
static RESERVE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RESERVE_LUA));

const RESERVE_LUA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local wait = next_free - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {wait, 0} end
redis.call('SET', KEYS[1], now + wait + interval, 'PX', wait + interval)
return {wait, 1}
";

impl HostCoordinator {
    pub(crate) async fn reserve(&self, local: &LocalSlots, host: &str, interval: Duration, max_wait: Duration) -> Turn {
        let HostCoordinator::Redis { conn, namespace } = self else {
            return local.reserve(host, interval, max_wait);
        };
        let key = format!("{namespace}:host:{host}");
        let mut conn = conn.clone();
        let mut invocation = RESERVE_SCRIPT.key(key);
        invocation.arg(millis(interval).max(1)).arg(millis(max_wait));
        let call = invocation.invoke_async::<(u64, u8)>(&mut conn);
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok((wait, 1))) => Turn::After(Duration::from_millis(wait)),
            Ok(Ok((wait, _))) => Turn::Busy(Duration::from_millis(wait)),
            Ok(Err(error)) => {
                tracing::warn!(%error, "Redis failed to reserve a host slot; using this process's slots");
                local.reserve(host, interval, max_wait)
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = millis(REDIS_TIMEOUT),
                    "Redis timed out reserving a host slot; using this process's slots"
                );
                local.reserve(host, interval, max_wait)
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Past this many hosts, slots already in the past are dropped.
const PRUNE_AT: usize = 10_000;

/// Each host's next free instant, in this process.
#[derive(Default)]
pub(crate) struct LocalSlots {
    next: Mutex<HashMap<String, Instant>>,
}

impl LocalSlots {
    pub(crate) fn reserve(&self, host: &str, interval: Duration, max_wait: Duration) -> Turn {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let free_at = next.get(host).copied().unwrap_or(now).max(now);
        let wait = free_at - now;
        if wait > max_wait {
            return Turn::Busy(wait);
        }
        if next.len() >= PRUNE_AT {
            next.retain(|_, at| *at > now);
        }
        next.insert(host.to_owned(), free_at + interval);
        Turn::After(wait)
    }
}
