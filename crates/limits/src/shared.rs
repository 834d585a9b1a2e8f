//! The limits in Redis: one script admits a request (both rate buckets, both
//! quota windows, the concurrency slots) in one round trip on the Redis clock,
//! and one charges units and appends the usage record in the same step.

use crate::gcra::Bucket;
use crate::local::rate_standing;
use crate::{Admission, Charged, Limit, Policy, Refusal, Standing, UsageRecord, Verdict, Windows};
use anno_bus::Bus;
use anno_tenancy::{TenantId, cache_key};
use redis::aio::ConnectionManager;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Longest a check waits for Redis before the fallbacks decide.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

pub struct Shared {
    conn: ConnectionManager,
    /// Until when (ms since the epoch) Redis is taken to be down after a
    /// failure: checks go straight to the fallbacks instead of each waiting.
    down_until: AtomicI64,
    namespace: String,
    usage_stream: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

/// GCRA for both buckets (mirrors `gcra::step`), quota reads, slot count; all
/// written only when every limit admits. Returns
/// `{verdict, t_allowed, t_remaining, t_retry_us, t_reset_us, k_…, minute, month, slots}`
/// where verdict 0 admits and 1–5 name the first limit refusing.
static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local function gcra(key, interval, burst)
  local tolerance = interval * burst
  local tat = tonumber(redis.call('GET', key) or 0)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  if now < allow_at then
    return {0, math.floor(math.max(0, tolerance - (tat - now)) / interval), allow_at - now, tat - now, 0}
  end
  return {1, math.floor((tolerance - (new_tat - now)) / interval), 0, new_tat - now, new_tat}
end
local t = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
local has_key = ARGV[4] ~= '0'
local k = {1, 0, 0, 0, 0}
if has_key then k = gcra(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4])) end
local metered = ARGV[10] == '1'
local minute_limit, month_limit, slots_limit = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local minute = tonumber(redis.call('GET', KEYS[3]) or 0)
local month = tonumber(redis.call('GET', KEYS[4]) or 0)
local now_ms = math.floor(now / 1000)
local slots = 0
if metered and slots_limit >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now_ms)
  slots = redis.call('ZCARD', KEYS[5])
end
local verdict = 0
if t[1] == 0 then verdict = 1
elseif k[1] == 0 then verdict = 2
elseif metered and minute_limit >= 0 and minute >= minute_limit then verdict = 3
elseif metered and month_limit >= 0 and month >= month_limit then verdict = 4
elseif metered and slots_limit >= 0 and slots >= slots_limit then verdict = 5
end
if verdict == 0 then
  redis.call('SET', KEYS[1], string.format('%d', t[5]), 'PX', math.ceil(t[4] / 1000))
  if has_key then redis.call('SET', KEYS[2], string.format('%d', k[5]), 'PX', math.ceil(k[4] / 1000)) end
  if metered and slots_limit >= 0 and ARGV[8] ~= '' then
    local ttl = tonumber(ARGV[9])
    redis.call('ZADD', KEYS[5], now_ms + ttl, ARGV[8])
    redis.call('PEXPIRE', KEYS[5], ttl)
    slots = slots + 1
  end
end
return {verdict, t[1], t[2], t[3], t[4], k[1], k[2], k[3], k[4], minute, month, slots}
",
    )
});

/// Counts units in both windows when both have room, and appends the usage
/// record to the stream in the same step. Returns `{counted, refusing (3|4), minute, month}`.
static CHARGE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local units = tonumber(ARGV[1])
local minute_limit, month_limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local minute = tonumber(redis.call('GET', KEYS[1]) or 0)
local month = tonumber(redis.call('GET', KEYS[2]) or 0)
if minute_limit >= 0 and minute + units > minute_limit then return {0, 3, minute, month} end
if month_limit >= 0 and month + units > month_limit then return {0, 4, minute, month} end
minute = redis.call('INCRBY', KEYS[1], units)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
month = redis.call('INCRBY', KEYS[2], units)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('XADD', KEYS[3], '*', 'p', ARGV[6])
return {1, 0, minute, month}
",
    )
});

/// Raises a month counter to at least the ledger's total.
static RECONCILE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local have = tonumber(redis.call('GET', KEYS[1]) or 0)
if have < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
",
    )
});

/// Takes or extends one slot: `1` held, `0` none free.
static HOLD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local ttl = tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now_ms + ttl, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
  return 1
end
return 0
",
    )
});

/// Month counters outlive their month by a day, so a late record still lands.
const MONTH_GRACE_MS: u64 = 86_400_000;

fn limit_arg(limit: Option<u64>) -> i64 {
    limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))
}

/// After a failure, how long checks skip Redis.
const DOWN_FOR_MS: i64 = 1_000;

impl Shared {
    pub fn new(conn: ConnectionManager, namespace: &str, bus: &Bus) -> Shared {
        let usage_stream = bus.stream_key(crate::USAGE_STREAM).unwrap_or_default();
        Shared { conn, down_until: AtomicI64::new(0), namespace: namespace.to_owned(), usage_stream }
    }

    /// Runs one Redis call within the time limit, unless Redis failed moments ago.
    async fn bounded<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> anyhow::Result<T> {
        let now = anno_tenancy::now_ms();
        anyhow::ensure!(now >= self.down_until.load(Ordering::Relaxed), "Redis failed moments ago");
        let result = match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(anyhow::anyhow!("Redis did not answer within {REDIS_TIMEOUT:?}")),
        };
        self.down_until.store(anno_tenancy::now_ms() + DOWN_FOR_MS, Ordering::Relaxed);
        result
    }

    fn key(&self, tenant: &TenantId, kind: &str, rest: &str) -> String {
        format!("{}:{}", self.namespace, cache_key(Some(tenant), kind, rest))
    }

    fn minute_key(&self, tenant: &TenantId, w: &Windows) -> String {
        self.key(tenant, "units", &format!("m:{}", w.minute))
    }

    fn month_key(&self, tenant: &TenantId, month: &str) -> String {
        self.key(tenant, "units", &format!("M:{month}"))
    }

    pub async fn admit(&self, a: &Admission<'_>, w: &Windows) -> anyhow::Result<(Verdict, bool)> {
        let p = a.policy;
        let micros = |rate: u32| (1_000_000 / u64::from(rate.max(1))).max(1);
        let mut call = ADMIT.prepare_invoke();
        call.key(self.key(a.tenant, "rl", "tenant"))
            .key(self.key(a.tenant, "rl", &format!("key:{}", a.key.unwrap_or(""))))
            .key(self.minute_key(a.tenant, w))
            .key(self.month_key(a.tenant, &w.month))
            .key(self.key(a.tenant, "slots", "held"))
            .arg(micros(p.tenant_rate))
            .arg(p.tenant_burst.max(1))
            .arg(micros(p.key_rate))
            .arg(if a.key.is_some() { p.key_burst.max(1) } else { 0 })
            .arg(limit_arg(p.units_per_minute))
            .arg(limit_arg(p.units_per_month))
            .arg(p.concurrency.map_or(-1, i64::from))
            .arg(a.slot.unwrap_or(""))
            .arg(a.slot_ttl.as_millis().max(1) as u64)
            .arg(u8::from(a.metered));
        let mut conn = self.conn.clone();
        let r: Vec<i64> = self.bounded(call.invoke_async(&mut conn)).await?;
        anyhow::ensure!(r.len() == 12, "the admission script answered {} values", r.len());
        let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let verdict = r[0];
        let bucket = |allowed: i64, remaining: i64, retry: i64, reset: i64| Bucket {
            allowed: allowed == 1,
            // Not taken because another limit refused: one more remains.
            remaining: n(remaining) + u64::from(allowed == 1 && verdict != 0),
            retry_after: us(retry),
            reset_after: us(reset),
        };
        let mut standings = vec![rate_standing(
            Limit::TenantRate,
            (u64::from(p.tenant_rate), u64::from(p.tenant_burst.max(1))),
            bucket(r[1], r[2], r[3], r[4]),
        )];
        if a.key.is_some() {
            standings.push(rate_standing(
                Limit::KeyRate,
                (u64::from(p.key_rate), u64::from(p.key_burst.max(1))),
                bucket(r[5], r[6], r[7], r[8]),
            ));
        }
        if a.metered {
            if let Some(q) = p.units_per_minute {
                let remaining = q.saturating_sub(n(r[9]));
                let window = Duration::from_secs(60);
                standings.push(Standing {
                    limit: Limit::MinuteUnits,
                    quota: q,
                    window,
                    remaining,
                    reset_after: w.minute_reset,
                });
            }
            if let Some(q) = p.units_per_month {
                let remaining = q.saturating_sub(n(r[10]));
                standings.push(Standing {
                    limit: Limit::MonthUnits,
                    quota: q,
                    window: w.month_length,
                    remaining,
                    reset_after: w.month_reset,
                });
            }
        }
        let refused = match verdict {
            0 => None,
            1 => Some(Refusal { limit: Limit::TenantRate, retry_after: us(r[3]) }),
            2 => Some(Refusal { limit: Limit::KeyRate, retry_after: us(r[7]) }),
            3 => Some(Refusal { limit: Limit::MinuteUnits, retry_after: w.minute_reset }),
            4 => Some(Refusal { limit: Limit::MonthUnits, retry_after: w.month_reset }),
            _ => Some(Refusal { limit: Limit::Concurrency, retry_after: Duration::from_secs(1) }),
        };
        let took = verdict == 0 && a.metered && a.slot.is_some() && p.concurrency.is_some();
        Ok((Verdict { refused, standings, degraded: false, slot: None }, took))
    }

    pub async fn release(&self, tenant: &TenantId, id: &str) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let key = self.key(tenant, "slots", "held");
        self.bounded(redis::cmd("ZREM").arg(key).arg(id).query_async::<i64>(&mut conn)).await?;
        Ok(())
    }

    pub async fn hold(&self, tenant: &TenantId, id: &str, concurrency: u32, ttl: Duration) -> anyhow::Result<bool> {
        let mut conn = self.conn.clone();
        let mut call = HOLD.prepare_invoke();
        call.key(self.key(tenant, "slots", "held")).arg(id).arg(concurrency).arg(ttl.as_millis().max(1) as u64);
        Ok(self.bounded(call.invoke_async::<i64>(&mut conn)).await? == 1)
    }

    pub async fn charge(&self, r: &UsageRecord, p: &Policy, w: &Windows, payload: &str) -> anyhow::Result<Charged> {
        let mut call = CHARGE.prepare_invoke();
        call.key(self.minute_key(&r.tenant_id, w))
            .key(self.month_key(&r.tenant_id, &w.month))
            .key(&self.usage_stream)
            .arg(r.units)
            .arg(limit_arg(p.units_per_minute))
            .arg(limit_arg(p.units_per_month))
            .arg(w.minute_reset.as_millis() as u64 + 60_000)
            .arg(w.month_reset.as_millis() as u64 + MONTH_GRACE_MS)
            .arg(payload);
        let mut conn = self.conn.clone();
        let reply: (i64, i64, i64, i64) = self.bounded(call.invoke_async(&mut conn)).await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(match reply {
            (1, _, minute, month) => Charged::Counted { minute: n(minute), month: n(month) },
            (_, 3, _, _) => Charged::Refused(Limit::MinuteUnits),
            _ => Charged::Refused(Limit::MonthUnits),
        })
    }

    pub async fn reconcile_month(&self, tenant: &TenantId, month: &str, units: u64) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let mut call = RECONCILE.prepare_invoke();
        let ttl = Windows::now().month_reset.as_millis() as u64 + MONTH_GRACE_MS;
        call.key(self.month_key(tenant, month)).arg(units).arg(ttl);
        self.bounded(call.invoke_async::<i64>(&mut conn)).await?;
        Ok(())
    }
}
