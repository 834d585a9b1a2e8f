//! Shared vocabulary of tenancy: typed ids, scopes, plans and their limits, the
//! caller's tenant context, and the constructors that put a tenant id into every
//! cache key, bus channel, schema name and storage path.

mod ids;
mod keys;
mod plan;
mod scope;
mod secret;

pub use ids::{IdError, KeyId, TenantId, UserId, new_id};
pub use keys::{bus_channel, cache_key, storage_path, tenant_schema};
pub use plan::{Features, LimitOverrides, Limits, Plan, PlanCatalog, TenantStatus};
pub use scope::{ALL_SCOPES, Role, Scope, ScopeSet};
pub use secret::Secret;

use serde::{Deserialize, Serialize};

/// Who is calling, proven by a verified internal token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantContext {
    pub tenant_id: TenantId,
    /// The key (`key_…`) or user (`usr_…`) that authenticated.
    pub actor: String,
    pub scopes: ScopeSet,
}

impl TenantContext {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }
}

/// Milliseconds since the Unix epoch, the unit every stored timestamp uses.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 rendering of a stored millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Parses an RFC 3339 timestamp into stored milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let ms = 1_790_000_000_123;
        let s = rfc3339(ms);
        assert_eq!(s, "2026-09-21T14:13:20.123Z");
        assert_eq!(parse_rfc3339(&s), Some(ms));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
