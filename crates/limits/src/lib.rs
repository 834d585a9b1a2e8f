//! What a tenant may use, checked on every request: rate with burst per tenant
//! and per key (GCRA), per-minute and per-month quotas in billable units, and
//! concurrent requests. Exact across replicas through one Redis script per
//! check when distributed; in process when embedded. The same counters take the
//! units charged when pages are delivered, and each charge is appended to the
//! `usage` stream in the same step, so the ledger and the limiter agree.

mod gcra;
mod local;
mod shared;
mod windows;

pub use windows::Windows;

use anno_bus::Bus;
use anno_tenancy::TenantId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The stream usage records travel on, from whoever delivered the pages to the
/// ledger.
pub const USAGE_STREAM: &str = "usage";

/// The limits that apply to one tenant, from its plan and overrides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub tenant_rate: u32,
    pub tenant_burst: u32,
    pub key_rate: u32,
    pub key_burst: u32,
    pub units_per_minute: Option<u64>,
    pub units_per_month: Option<u64>,
    pub concurrency: Option<u32>,
}

impl From<&anno_tenancy::Limits> for Policy {
    fn from(l: &anno_tenancy::Limits) -> Self {
        Policy {
            tenant_rate: l.tenant_rate_per_second,
            tenant_burst: l.tenant_burst,
            key_rate: l.key_rate_per_second,
            key_burst: l.key_burst,
            units_per_minute: Some(u64::from(l.units_per_minute)),
            units_per_month: l.units_per_month,
            concurrency: Some(l.concurrent_requests),
        }
    }
}

/// One limit a request can run into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    TenantRate,
    KeyRate,
    MinuteUnits,
    MonthUnits,
    Concurrency,
}

impl Limit {
    /// The policy's name in `RateLimit-Policy` / `RateLimit` and in problems.
    pub fn name(self) -> &'static str {
        match self {
            Limit::TenantRate => "tenant",
            Limit::KeyRate => "key",
            Limit::MinuteUnits => "units-minute",
            Limit::MonthUnits => "units-month",
            Limit::Concurrency => "concurrency",
        }
    }

    /// The problem code of a refusal by this limit.
    pub fn code(self) -> &'static str {
        match self {
            Limit::TenantRate | Limit::KeyRate => "rate_limited",
            Limit::MinuteUnits | Limit::MonthUnits => "quota_exceeded",
            Limit::Concurrency => "concurrency_exceeded",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Limit::TenantRate | Limit::KeyRate => Kind::Rate,
            Limit::MinuteUnits | Limit::MonthUnits => Kind::Quota,
            Limit::Concurrency => Kind::Concurrency,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rate,
    Quota,
    Concurrency,
}

/// What decides a limit while Redis is unreachable or slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Refuse.
    FailClosed,
    /// Count in this process, allowing this replica's share of the limit.
    LocalShare,
}

/// The fallback of each kind of limit, and how many replicas share a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fallbacks {
    pub rate: Fallback,
    pub quota: Fallback,
    pub concurrency: Fallback,
    pub replicas: u32,
}

impl Default for Fallbacks {
    fn default() -> Self {
        Fallbacks {
            rate: Fallback::LocalShare,
            quota: Fallback::LocalShare,
            concurrency: Fallback::LocalShare,
            replicas: 1,
        }
    }
}

impl Fallbacks {
    fn of(&self, limit: Limit) -> Fallback {
        match limit.kind() {
            Kind::Rate => self.rate,
            Kind::Quota => self.quota,
            Kind::Concurrency => self.concurrency,
        }
    }
}

/// One request to admit.
#[derive(Clone, Copy, Debug)]
pub struct Admission<'a> {
    pub tenant: &'a TenantId,
    /// The API key (or user) calling; `None` leaves the per-key rate out.
    pub key: Option<&'a str>,
    pub policy: &'a Policy,
    /// Whether the route delivers pages: quotas and concurrency apply.
    pub metered: bool,
    /// Holds a concurrency slot under this id (unique per request) until
    /// released; `None` takes none.
    pub slot: Option<&'a str>,
    /// How long an unreleased slot is held (a replica that died cannot release).
    pub slot_ttl: Duration,
}

/// Where one policy stands, for the `RateLimit` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub limit: Limit,
    pub quota: u64,
    pub window: Duration,
    pub remaining: u64,
    pub reset_after: Duration,
}

/// A refusal: which limit, and when to try again (`None`: not before the
/// quota is raised or the month ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub retry_after: Duration,
}

/// The outcome of admitting one request.
#[derive(Debug)]
pub struct Verdict {
    pub refused: Option<Refusal>,
    pub standings: Vec<Standing>,
    /// Redis did not answer and fallbacks decided.
    pub degraded: bool,
    /// The slot taken, to release when the request is done.
    pub slot: Option<Slot>,
}

impl Verdict {
    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-11).
    pub fn policy_header(&self) -> String {
        let items = self.standings.iter().map(|s| policy_item(s.limit.name(), s.quota, s.window.as_secs()));
        items.collect::<Vec<_>>().join(", ")
    }

    /// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-11).
    pub fn ratelimit_header(&self) -> String {
        let items =
            self.standings.iter().map(|s| ratelimit_item(s.limit.name(), s.remaining, ceil_secs(s.reset_after)));
        items.collect::<Vec<_>>().join(", ")
    }
}

/// Whole seconds, rounded up: a client waiting this long is not early.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A concurrency slot held by a request; released on drop.
#[derive(Debug)]
pub struct Slot {
    release: Option<(Limits, TenantId, String)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((limits, tenant, id)) = self.release.take() {
            // With no runtime left, the slot lapses by itself.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { limits.release(&tenant, &id).await });
            }
        }
    }
}

/// Units delivered, to count against the quotas and record in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    /// Unique per delivery (request id, with the page's index for several):
    /// the ledger counts each id once.
    pub id: String,
    pub tenant_id: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub units: u64,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// What delivered them: `fetch`, `extract`, `batch`, `crawl`.
    pub source: String,
}

/// The answer to a charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charged {
    /// Counted; what the windows now hold.
    Counted { minute: u64, month: u64 },
    /// It would exceed this quota: nothing was counted or recorded.
    Refused(Limit),
}

/// The limiter and meter of one process. Cheap to clone.
#[derive(Clone)]
pub struct Limits {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("shared", &self.inner.shared.is_some()).finish_non_exhaustive()
    }
}

struct Inner {
    bus: Bus,
    fallbacks: Fallbacks,
    /// The counts in process: all of them when embedded, the fallback's share
    /// when distributed.
    local: local::Local,
    shared: Option<shared::Shared>,
}

impl Limits {
    /// Limits over the bus's Redis when it has one, else in process.
    pub fn new(bus: &Bus, fallbacks: Fallbacks) -> Self {
        let shared = bus.redis_connection().map(|(conn, namespace)| shared::Shared::new(conn, namespace, bus));
        Limits { inner: Arc::new(Inner { bus: bus.clone(), fallbacks, local: local::Local::default(), shared }) }
    }

    pub fn is_shared(&self) -> bool {
        self.inner.shared.is_some()
    }

    /// Checks every limit that applies and, when all admit, takes what the
    /// request uses (a rate token each, a concurrency slot). Refused requests
    /// take nothing.
    pub async fn admit(&self, a: &Admission<'_>) -> Verdict {
        let windows = Windows::now();
        let outcome = match &self.inner.shared {
            Some(shared) => match shared.admit(a, &windows).await {
                Ok(outcome) => Some(outcome),
                Err(e) => {
                    tracing::warn!(error = %e, "checking limits in Redis failed; fallbacks decide");
                    None
                }
            },
            None => Some(self.inner.local.admit(a, &windows, None)),
        };
        let (mut verdict, took_slot) = match outcome {
            Some(outcome) => outcome,
            None => {
                let fb = self.inner.fallbacks;
                let (mut verdict, took) = self.inner.local.admit(a, &windows, Some(fb));
                verdict.degraded = true;
                (verdict, took)
            }
        };
        if took_slot {
            if let Some(id) = a.slot {
                verdict.slot = Some(Slot { release: Some((self.clone(), a.tenant.clone(), id.to_owned())) });
            }
        }
        verdict
    }

    /// Gives a concurrency slot back.
    pub async fn release(&self, tenant: &TenantId, id: &str) {
        self.inner.local.release(tenant, id);
        if let Some(shared) = &self.inner.shared {
            if let Err(e) = shared.release(tenant, id).await {
                tracing::warn!(error = %e, "releasing a concurrency slot in Redis failed; it expires by itself");
            }
        }
    }

    /// Extends a slot held by long work (a crawl), or takes it if it was lost.
    /// `false`: the tenant has no slot free.
    pub async fn hold(&self, tenant: &TenantId, id: &str, concurrency: u32, ttl: Duration) -> bool {
        match &self.inner.shared {
            Some(shared) => match shared.hold(tenant, id, concurrency, ttl).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(error = %e, "holding a concurrency slot in Redis failed; fallbacks decide");
                    self.hold_fallback(tenant, id, concurrency, ttl)
                }
            },
            None => self.inner.local.hold(tenant, id, concurrency, ttl),
        }
    }

    fn hold_fallback(&self, tenant: &TenantId, id: &str, concurrency: u32, ttl: Duration) -> bool {
        let fb = self.inner.fallbacks;
        match fb.concurrency {
            Fallback::FailClosed => false,
            Fallback::LocalShare => {
                self.inner.local.hold(tenant, id, share(u64::from(concurrency), fb.replicas) as u32, ttl)
            }
        }
    }

    /// Counts `record.units` against the quotas and appends the record to the
    /// usage stream, in one step; refused (nothing counted) when it would
    /// exceed a quota.
    pub async fn charge(&self, record: &UsageRecord, policy: &Policy) -> Charged {
        let windows = Windows::at_ms(record.at);
        let payload = match serde_json::to_string(record) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, "a usage record did not serialise");
                return Charged::Refused(Limit::MonthUnits);
            }
        };
        if let Some(shared) = &self.inner.shared {
            match shared.charge(record, policy, &windows, &payload).await {
                Ok(charged) => return charged,
                Err(e) => tracing::warn!(error = %e, "charging units in Redis failed; fallbacks decide"),
            }
            let fb = self.inner.fallbacks;
            let charged = match fb.quota {
                Fallback::FailClosed => Charged::Refused(Limit::MinuteUnits),
                Fallback::LocalShare => self.inner.local.charge(record, policy, &windows, Some(fb.replicas)),
            };
            if matches!(charged, Charged::Counted { .. }) {
                // The record must reach the ledger: retried until Redis is back.
                let bus = self.inner.bus.clone();
                tokio::spawn(async move {
                    let mut backoff = Duration::from_millis(200);
                    while let Err(e) = bus.append(USAGE_STREAM, &payload).await {
                        tracing::warn!(error = %e, "recording usage failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                });
            }
            return charged;
        }
        let charged = self.inner.local.charge(record, policy, &windows, None);
        if matches!(charged, Charged::Counted { .. }) {
            self.inner.bus.append_local(USAGE_STREAM, payload);
        }
        charged
    }

    /// Raises this month's count to what the ledger holds, when the counter
    /// knows less (Redis lost it): the ledger is the durable copy.
    pub async fn reconcile_month(&self, tenant: &TenantId, month: &str, ledger_units: u64) {
        match &self.inner.shared {
            Some(shared) => {
                if let Err(e) = shared.reconcile_month(tenant, month, ledger_units).await {
                    tracing::warn!(error = %e, "reconciling the month's count in Redis failed");
                }
            }
            None => self.inner.local.reconcile_month(tenant, month, ledger_units),
        }
    }
}

/// A replica's share of a limit: at least 1.
fn share(n: u64, replicas: u32) -> u64 {
    (n / u64::from(replicas.max(1))).max(1)
}

/// One item of `RateLimit-Policy`: `"name";q=<quota>;w=<window seconds>`.
pub fn policy_item(name: &str, quota: u64, window_secs: u64) -> String {
    format!("{};q={quota};w={window_secs}", sf_string(name))
}

/// One item of `RateLimit`: `"name";r=<remaining>;t=<seconds until reset>`.
pub fn ratelimit_item(name: &str, remaining: u64, reset_secs: u64) -> String {
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
mod tests;
