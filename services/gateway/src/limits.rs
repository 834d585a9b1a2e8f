//! Rate limits by GCRA (the generic cell rate algorithm): a key admits `burst`
//! requests at once and then one every `1/rate` seconds. Each key keeps only its
//! theoretical arrival time (TAT): the instant its bucket would be full again.
//!
//! Across replicas the TAT lives in Redis and is read and written by one Lua
//! script on the Redis clock, so replicas with skewed clocks agree. When Redis
//! fails or is slow, a [`Fallback`] decides, and the decision says `degraded`.
//!
//! Not wired into the request path yet.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest a check waits for Redis before the fallback decides.
const REDIS_TIMEOUT: Duration = Duration::from_millis(200);

/// The outcome of one check, with what the rate limit headers need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The burst: how many requests a full bucket admits at once.
    pub limit: u32,
    /// How many more unit-cost requests would be admitted right now.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset_after: Duration,
    /// When denied: how long until this request's cost would be admitted. `None`
    /// when denied because the cost exceeds the burst, which is never admitted.
    pub retry_after: Option<Duration>,
    /// Redis did not answer and the [`Fallback`] decided.
    pub degraded: bool,
}

/// What decides while Redis is unreachable or slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Deny everything.
    FailClosed,
    /// Each replica admits its share: rate and burst divided by `replicas`
    /// (at least 1 each), counted in this process only.
    LocalShare { replicas: u32 },
}

#[derive(Clone)]
pub enum Limiter {
    /// Counted in this process only.
    Local(LocalLimiter),
    /// Counted in Redis, shared by every replica using the same namespace.
    Redis {
        /// `None` when no connection could be made at start-up; every check
        /// then goes to the fallback.
        conn: Option<ConnectionManager>,
        namespace: String,
        fallback: Fallback,
        /// Counts for [`Fallback::LocalShare`].
        local: LocalLimiter,
    },
}

impl Limiter {
    pub fn local() -> Self {
        Limiter::Local(LocalLimiter::new())
    }

    /// A limiter over Redis. Connecting is bounded: if Redis cannot be reached
    /// within a few seconds the limiter still starts, and every check goes to the
    /// fallback until the process restarts.
    pub async fn redis(url: &str, namespace: &str, fallback: Fallback) -> Self {
        let conn = match connect(url).await {
            Ok(conn) => Some(conn),
            Err(e) => {
                tracing::error!(error = %e, "rate limits cannot reach Redis; the fallback decides every check");
                None
            }
        };
        Limiter::Redis { conn, namespace: namespace.to_owned(), fallback, local: LocalLimiter::new() }
    }

    /// Checks and, when admitted, consumes `cost` units of `key`'s bucket.
    /// `rate` is in requests per second; `rate`, `burst` and `cost` below 1 count as 1.
    pub async fn check(&self, key: &str, rate: u32, burst: u32, cost: u32) -> Decision {
        let (rate, burst, cost) = (rate.max(1), burst.max(1), cost.max(1));
        match self {
            Limiter::Local(local) => local.check(key, rate, burst, cost),
            Limiter::Redis { conn, namespace, fallback, local } => {
                let error = match conn {
                    Some(conn) => match check_redis(conn, namespace, key, rate, burst, cost).await {
                        Ok(decision) => return decision,
                        Err(e) => e,
                    },
                    None => "no connection".to_owned(),
                };
                tracing::warn!(error = %error, "rate limit check in Redis failed; the fallback decides");
                match fallback {
                    Fallback::FailClosed => Decision {
                        allowed: false,
                        limit: burst,
                        remaining: 0,
                        reset_after: Duration::ZERO,
                        retry_after: Some(Duration::from_secs(1)),
                        degraded: true,
                    },
                    Fallback::LocalShare { replicas } => {
                        let replicas = (*replicas).max(1);
                        let share = |n: u32| (n / replicas).max(1);
                        Decision { degraded: true, ..local.check(key, share(rate), share(burst), cost) }
                    }
                }
            }
        }
    }
}

async fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_factor(100)
        .set_max_delay(1_000)
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(REDIS_TIMEOUT);
    tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new_with_config(client, config))
        .await
        .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))?
        .map_err(Into::into)
}

/// GCRA on the Redis clock, in microseconds. Mirrors [`gcra`]; returns
/// `{allowed, remaining, retry_after (-1: never), reset_after}`. Only an admitted
/// request writes, and the key expires when its bucket is full again.
static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if cost > burst or now < allow_at then
  local retry = -1
  if cost <= burst then retry = allow_at - now end
  local remaining = math.floor(math.max(0, tolerance - (tat - now)) / interval)
  return {0, remaining, retry, tat - now}
end
local reset = new_tat - now
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(reset / 1000))
return {1, math.floor((tolerance - reset) / interval), 0, reset}
",
    )
});

async fn check_redis(
    conn: &ConnectionManager,
    namespace: &str,
    key: &str,
    rate: u32,
    burst: u32,
    cost: u32,
) -> Result<Decision, String> {
    let mut conn = conn.clone();
    let interval_us = (1_000_000 / u64::from(rate)).max(1);
    let mut invocation = SCRIPT.key(format!("{namespace}:rl:{key}"));
    invocation.arg(interval_us).arg(burst).arg(cost);
    let call = invocation.invoke_async::<(i64, i64, i64, i64)>(&mut conn);
    let (allowed, remaining, retry_us, reset_us) = match tokio::time::timeout(REDIS_TIMEOUT, call).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("timed out".to_owned()),
    };
    let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
    Ok(Decision {
        allowed: allowed == 1,
        limit: burst,
        remaining: u32::try_from(remaining).unwrap_or(0),
        reset_after: micros(reset_us),
        retry_after: (allowed != 1 && retry_us >= 0).then(|| micros(retry_us)),
        degraded: false,
    })
}

/// GCRA in this process, in nanoseconds since the limiter was made.
#[derive(Clone)]
pub struct LocalLimiter {
    epoch: Instant,
    state: Arc<Mutex<LocalState>>,
}

#[derive(Default)]
struct LocalState {
    tats: HashMap<String, u64>,
    checks: u32,
}

/// Every this many checks, keys whose bucket is full again are forgotten.
const SWEEP_EVERY: u32 = 1024;

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalLimiter {
    pub fn new() -> Self {
        LocalLimiter { epoch: Instant::now(), state: Arc::default() }
    }

    /// Checks and, when admitted, consumes `cost` units of `key`'s bucket.
    pub fn check(&self, key: &str, rate: u32, burst: u32, cost: u32) -> Decision {
        let (rate, burst, cost) = (rate.max(1), burst.max(1), cost.max(1));
        let interval = (1_000_000_000 / u64::from(rate)).max(1);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let (decision, new_tat) = gcra(now, state.tats.get(key).copied(), interval, burst, cost);
        if let Some(tat) = new_tat {
            state.tats.insert(key.to_owned(), tat);
        }
        state.checks = state.checks.wrapping_add(1);
        if state.checks % SWEEP_EVERY == 0 {
            state.tats.retain(|_, tat| *tat > now);
        }
        decision
    }
}

/// One GCRA step in nanoseconds: the decision, and the new TAT to store when admitted.
fn gcra(now: u64, tat: Option<u64>, interval: u64, burst: u32, cost: u32) -> (Decision, Option<u64>) {
    let tolerance = interval.saturating_mul(u64::from(burst));
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(interval.saturating_mul(u64::from(cost)));
    let allow_at = new_tat.saturating_sub(tolerance);
    let remaining = |tat: u64| u32::try_from(tolerance.saturating_sub(tat - now) / interval).unwrap_or(u32::MAX);
    if cost > burst || now < allow_at {
        let decision = Decision {
            allowed: false,
            limit: burst,
            remaining: remaining(tat),
            reset_after: Duration::from_nanos(tat - now),
            retry_after: (cost <= burst).then(|| Duration::from_nanos(allow_at - now)),
            degraded: false,
        };
        return (decision, None);
    }
    let decision = Decision {
        allowed: true,
        limit: burst,
        remaining: remaining(new_tat),
        reset_after: Duration::from_nanos(new_tat - now),
        retry_after: None,
        degraded: false,
    };
    (decision, Some(new_tat))
}

/// One item of a `RateLimit-Policy` field (draft-ietf-httpapi-ratelimit-headers-11):
/// `"name";q=<quota>;w=<window seconds>`. Join several with `, `.
pub fn policy_header(name: &str, quota: u32, window_secs: u64) -> String {
    format!("{};q={quota};w={window_secs}", sf_string(name))
}

/// One item of a `RateLimit` field (draft-ietf-httpapi-ratelimit-headers-11):
/// `"name";r=<remaining>;t=<seconds until reset>`. Join several with `, `.
pub fn ratelimit_header(name: &str, remaining: u32, reset_secs: u64) -> String {
    format!("{};r={remaining};t={reset_secs}", sf_string(name))
}

/// A structured-field String (RFC 9651): quoted, `"` and `\` escaped, and
/// anything but printable ASCII (which a String cannot hold) replaced by `_`.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anno_bus::testing::{redis_available, redis_url};

    const UNREACHABLE: &str = "redis://127.0.0.1:1";

    fn namespace() -> String {
        format!("test-{:016x}", rand::random::<u64>())
    }

    #[test]
    fn a_fresh_key_admits_exactly_the_burst_then_asks_to_wait_one_interval() {
        let limiter = LocalLimiter::new();
        for i in 0..5 {
            let d = limiter.check("k", 10, 5, 1);
            assert!(d.allowed, "request {i}: {d:?}");
            assert_eq!((d.limit, d.remaining, d.retry_after), (5, 4 - i, None));
        }
        let d = limiter.check("k", 10, 5, 1);
        assert!(!d.allowed, "{d:?}");
        assert_eq!(d.remaining, 0);
        let retry = d.retry_after.expect("a denial says when to retry");
        assert!(retry > Duration::from_millis(80) && retry <= Duration::from_millis(100), "{retry:?}");
        assert!(d.reset_after > Duration::from_millis(480) && d.reset_after <= Duration::from_millis(500), "{d:?}");
    }

    #[tokio::test]
    async fn one_more_is_admitted_after_one_interval() {
        let limiter = LocalLimiter::new();
        for _ in 0..3 {
            assert!(limiter.check("k", 20, 3, 1).allowed);
        }
        let denied = limiter.check("k", 20, 3, 1);
        assert!(!denied.allowed);
        tokio::time::sleep(denied.retry_after.expect("retry after") + Duration::from_millis(5)).await;
        assert!(limiter.check("k", 20, 3, 1).allowed);
        assert!(!limiter.check("k", 20, 3, 1).allowed);
    }

    #[test]
    fn cost_consumes_several_units() {
        let limiter = LocalLimiter::new();
        let d = limiter.check("k", 1, 5, 3);
        assert!(d.allowed && d.remaining == 2, "{d:?}");
        let d = limiter.check("k", 1, 5, 3);
        assert!(!d.allowed && d.remaining == 2, "{d:?}");
        let d = limiter.check("k", 1, 5, 2);
        assert!(d.allowed && d.remaining == 0, "{d:?}");
        let d = limiter.check("other", 1, 5, 6);
        assert!(!d.allowed && d.retry_after.is_none(), "a cost above the burst is never admitted: {d:?}");
    }

    #[test]
    fn keys_are_independent() {
        let limiter = LocalLimiter::new();
        assert!(limiter.check("a", 1, 1, 1).allowed);
        assert!(!limiter.check("a", 1, 1, 1).allowed);
        assert!(limiter.check("b", 1, 1, 1).allowed);
    }

    #[tokio::test]
    async fn redis_counts_in_order_and_idle_keys_expire() {
        if !redis_available().await {
            return;
        }
        let ns = namespace();
        let limiter = Limiter::redis(&redis_url(), &ns, Fallback::FailClosed).await;
        for i in 0..3 {
            let d = limiter.check("k", 1, 3, 1).await;
            assert!(d.allowed && !d.degraded, "request {i}: {d:?}");
            assert_eq!(d.remaining, 2 - i);
        }
        let d = limiter.check("k", 1, 3, 1).await;
        assert!(!d.allowed && !d.degraded, "{d:?}");
        let retry = d.retry_after.expect("retry after");
        assert!(retry > Duration::from_millis(900) && retry <= Duration::from_secs(1), "{retry:?}");

        let client = redis::Client::open(redis_url()).expect("url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let ttl_ms: i64 = redis::cmd("PTTL").arg(format!("{ns}:rl:k")).query_async(&mut conn).await.expect("pttl");
        assert!(ttl_ms > 2_000 && ttl_ms <= 3_000, "{ttl_ms}");
    }

    #[tokio::test]
    async fn replicas_sharing_redis_admit_the_burst_in_total() {
        if !redis_available().await {
            return;
        }
        let ns = namespace();
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(Limiter::redis(&redis_url(), &ns, Fallback::FailClosed).await);
        }
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for limiter in &replicas {
            for _ in 0..10 {
                let limiter = limiter.clone();
                tasks.spawn(async move { limiter.check("tenant", 1, 5, 1).await });
            }
        }
        let decisions = tasks.join_all().await;
        assert!(started.elapsed() < Duration::from_secs(1), "too slow to be one instant");
        assert!(decisions.iter().all(|d| !d.degraded), "{decisions:?}");
        assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 5);
    }

    #[tokio::test]
    async fn unreachable_redis_fails_closed_quickly() {
        let limiter = tokio::time::timeout(
            Duration::from_secs(10),
            Limiter::redis(UNREACHABLE, &namespace(), Fallback::FailClosed),
        )
        .await
        .expect("starting never hangs");
        let started = Instant::now();
        let d = limiter.check("k", 100, 100, 1).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!d.allowed && d.degraded, "{d:?}");
    }

    #[tokio::test]
    async fn unreachable_redis_with_local_share_admits_this_replicas_share() {
        let fallback = Fallback::LocalShare { replicas: 2 };
        let limiter = Limiter::redis(UNREACHABLE, &namespace(), fallback).await;
        let mut allowed = 0;
        for _ in 0..10 {
            let d = limiter.check("k", 1, 6, 1).await;
            assert!(d.degraded, "{d:?}");
            allowed += u32::from(d.allowed);
        }
        assert_eq!(allowed, 3);
    }

    #[test]
    fn headers_follow_the_draft() {
        assert_eq!(policy_header("tenant", 10, 2), r#""tenant";q=10;w=2"#);
        assert_eq!(ratelimit_header("tenant", 3, 1), r#""tenant";r=3;t=1"#);
        assert_eq!(ratelimit_header("a\"b\\c\u{e9}", 0, 0), r#""a\"b\\c_";r=0;t=0"#);
        let both = [policy_header("burst", 100, 60), policy_header("daily", 1000, 86_400)].join(", ");
        assert_eq!(both, r#""burst";q=100;w=60, "daily";q=1000;w=86400"#);
    }
}
