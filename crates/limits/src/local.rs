//! The limits counted in this process: all of them when embedded, the
//! fallback's share while Redis is unreachable when distributed.

use crate::gcra::{self, Bucket};
use crate::{
    Admission, Charged, Fallback, Fallbacks, Limit, Policy, Refusal, Standing, UsageRecord, Verdict, Windows, share,
};
use anno_tenancy::TenantId;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Local {
    epoch: Instant,
    state: Mutex<State>,
}

impl Default for Local {
    fn default() -> Self {
        Local { epoch: Instant::now(), state: Mutex::default() }
    }
}

#[derive(Debug, Default)]
struct State {
    /// GCRA TATs in nanoseconds since `epoch`.
    tats: HashMap<String, u64>,
    units: HashMap<TenantId, Counters>,
    /// Slot id → when it lapses.
    slots: HashMap<TenantId, HashMap<String, Instant>>,
    checks: u32,
}

#[derive(Debug, Default)]
struct Counters {
    minute_id: i64,
    minute: u64,
    month_id: String,
    month: u64,
}

impl Counters {
    fn current(&mut self, w: &Windows) -> (u64, u64) {
        if self.minute_id != w.minute {
            (self.minute_id, self.minute) = (w.minute, 0);
        }
        if self.month_id != w.month {
            (self.month_id, self.month) = (w.month.clone(), 0);
        }
        (self.minute, self.month)
    }
}

/// Every this many checks, buckets full again and lapsed slots are forgotten.
const SWEEP_EVERY: u32 = 4096;

/// What a limit allows here: all of it, this replica's share, or nothing
/// (fail closed).
fn allowance(limit: Limit, n: u64, fallbacks: Option<Fallbacks>) -> Option<u64> {
    match fallbacks {
        None => Some(n),
        Some(fb) => match fb.of(limit) {
            Fallback::FailClosed => None,
            Fallback::LocalShare => Some(share(n, fb.replicas)),
        },
    }
}

impl Local {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Admits by the same rules as the Redis script. With `fallbacks`, each
    /// limit is this replica's share or refused outright.
    pub fn admit(&self, a: &Admission<'_>, w: &Windows, fallbacks: Option<Fallbacks>) -> (Verdict, bool) {
        let p = a.policy;
        let now = self.now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut standings = Vec::new();
        let mut refused: Option<Refusal> = None;
        let refuse = |limit: Limit, retry_after: Duration, refused: &mut Option<Refusal>| {
            refused.get_or_insert(Refusal { limit, retry_after });
        };

        let mut rate =
            |limit: Limit, key: String, rate: u32, burst: u32, state: &mut State, refused: &mut Option<Refusal>| {
                let full = (u64::from(rate.max(1)), u64::from(burst.max(1)));
                let Some(burst_here) = allowance(limit, full.1, fallbacks) else {
                    refuse(limit, Duration::from_secs(1), refused);
                    standings.push(rate_standing(
                        limit,
                        full,
                        Bucket {
                            allowed: false,
                            remaining: 0,
                            reset_after: Duration::ZERO,
                            retry_after: Duration::from_secs(1),
                        },
                    ));
                    return None;
                };
                let rate_here = allowance(limit, full.0, fallbacks).unwrap_or(1);
                let interval = gcra::interval_nanos(rate_here as u32);
                let (bucket, tat) = gcra::step(now, state.tats.get(&key).copied(), interval, burst_here as u32);
                if !bucket.allowed {
                    refuse(limit, bucket.retry_after, refused);
                }
                standings.push(rate_standing(limit, (rate_here, burst_here), bucket));
                tat.map(|tat| (key, tat))
            };
        let tenant_tat =
            rate(Limit::TenantRate, format!("{}", a.tenant), p.tenant_rate, p.tenant_burst, &mut state, &mut refused);
        let key_tat = match a.key {
            Some(key) => {
                rate(Limit::KeyRate, format!("{}:{key}", a.tenant), p.key_rate, p.key_burst, &mut state, &mut refused)
            }
            None => None,
        };

        let mut take_slot = false;
        if a.metered {
            let (minute, month) = state.units.entry(a.tenant.clone()).or_default().current(w);
            for (limit, quota, used, window, reset) in [
                (Limit::MinuteUnits, p.units_per_minute, minute, Duration::from_secs(60), w.minute_reset),
                (Limit::MonthUnits, p.units_per_month, month, w.month_length, w.month_reset),
            ] {
                let Some(quota) = quota else { continue };
                let here = allowance(limit, quota, fallbacks);
                let remaining = here.map_or(0, |q| q.saturating_sub(used));
                if remaining == 0 {
                    refuse(limit, reset, &mut refused);
                }
                standings.push(Standing { limit, quota: here.unwrap_or(quota), window, remaining, reset_after: reset });
            }
            if let Some(concurrency) = p.concurrency {
                let instant = Instant::now();
                let slots = state.slots.entry(a.tenant.clone()).or_default();
                slots.retain(|_, lapses| *lapses > instant);
                match allowance(Limit::Concurrency, u64::from(concurrency), fallbacks) {
                    Some(n) if (slots.len() as u64) < n => take_slot = a.slot.is_some(),
                    _ => refuse(Limit::Concurrency, Duration::from_secs(1), &mut refused),
                }
            }
        }

        if refused.is_none() {
            for (key, tat) in [tenant_tat, key_tat].into_iter().flatten() {
                state.tats.insert(key, tat);
            }
            if let (true, Some(id)) = (take_slot, a.slot) {
                state.slots.entry(a.tenant.clone()).or_default().insert(id.to_owned(), Instant::now() + a.slot_ttl);
            }
        } else {
            take_slot = false;
            // Nothing was taken: what remains is one more than a taking check said.
            for s in standings.iter_mut().filter(|s| matches!(s.limit, Limit::TenantRate | Limit::KeyRate)) {
                if !refused.is_some_and(|r| r.limit == s.limit) && s.remaining < s.quota {
                    s.remaining += 1;
                }
            }
        }
        state.checks = state.checks.wrapping_add(1);
        if state.checks % SWEEP_EVERY == 0 {
            state.tats.retain(|_, tat| *tat > now);
            let instant = Instant::now();
            state.slots.retain(|_, slots| {
                slots.retain(|_, lapses| *lapses > instant);
                !slots.is_empty()
            });
        }
        (Verdict { refused, standings, degraded: false, slot: None }, take_slot)
    }

    pub fn release(&self, tenant: &TenantId, id: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slots) = state.slots.get_mut(tenant) {
            slots.remove(id);
        }
    }

    pub fn hold(&self, tenant: &TenantId, id: &str, concurrency: u32, ttl: Duration) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let slots = state.slots.entry(tenant.clone()).or_default();
        slots.retain(|_, lapses| *lapses > now);
        if slots.contains_key(id) || (slots.len() as u64) < u64::from(concurrency) {
            slots.insert(id.to_owned(), now + ttl);
            return true;
        }
        false
    }

    /// Counts units when every quota has room for them all. With `replicas`,
    /// each quota is this replica's share.
    pub fn charge(&self, r: &UsageRecord, p: &Policy, w: &Windows, replicas: Option<u32>) -> Charged {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let counters = state.units.entry(r.tenant_id.clone()).or_default();
        let (minute, month) = counters.current(w);
        let cap = |q: u64| replicas.map_or(q, |n| share(q, n));
        if p.units_per_minute.is_some_and(|q| minute + r.units > cap(q)) {
            return Charged::Refused(Limit::MinuteUnits);
        }
        if p.units_per_month.is_some_and(|q| month + r.units > cap(q)) {
            return Charged::Refused(Limit::MonthUnits);
        }
        counters.minute += r.units;
        counters.month += r.units;
        Charged::Counted { minute: counters.minute, month: counters.month }
    }

    pub fn reconcile_month(&self, tenant: &TenantId, month: &str, units: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let counters = state.units.entry(tenant.clone()).or_default();
        if counters.month_id != month {
            if counters.month_id.as_str() > month {
                return;
            }
            (counters.month_id, counters.month) = (month.to_owned(), 0);
        }
        counters.month = counters.month.max(units);
    }
}

/// A rate bucket as a policy: `q` the burst, `w` the time it takes to refill.
pub(crate) fn rate_standing(limit: Limit, (rate, burst): (u64, u64), b: Bucket) -> Standing {
    Standing {
        limit,
        quota: burst,
        window: Duration::from_secs(burst.div_ceil(rate.max(1)).max(1)),
        remaining: b.remaining,
        reset_after: b.reset_after,
    }
}
