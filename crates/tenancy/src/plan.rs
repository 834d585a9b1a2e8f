//! Plans are data: each names its limits and features. The defaults below seed a
//! fresh installation; the tenant service stores and serves them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Trial,
    Starter,
    Professional,
    Enterprise,
}

impl Plan {
    pub const ALL: [Plan; 4] = [Plan::Trial, Plan::Starter, Plan::Professional, Plan::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Trial => "trial",
            Plan::Starter => "starter",
            Plan::Professional => "professional",
            Plan::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Plan::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| format!("unknown plan `{s}`"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Trial,
    Active,
    Suspended,
    Expired,
    Deleted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Trial => "trial",
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Expired => "expired",
            TenantStatus::Deleted => "deleted",
        }
    }
}

impl FromStr for TenantStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| format!("unknown status `{s}`"))
    }
}

/// What a plan allows. `None` in a quota means unlimited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    pub tenant_rate_per_second: u32,
    pub tenant_burst: u32,
    pub key_rate_per_second: u32,
    pub key_burst: u32,
    /// Billable units (pages delivered) per calendar minute.
    #[serde(alias = "requestsPerMinute")]
    pub units_per_minute: u32,
    pub units_per_month: Option<u64>,
    pub concurrent_requests: u32,
    pub urls_per_batch: u32,
    pub pages_per_crawl: u32,
    pub retention_days: u32,
}

/// Partial limits: an enterprise tenant's custom overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_rate_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_burst: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_rate_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_burst: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "requestsPerMinute")]
    pub units_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units_per_month: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent_requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls_per_batch: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages_per_crawl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

impl Limits {
    pub fn with_overrides(&self, o: &LimitOverrides) -> Limits {
        Limits {
            tenant_rate_per_second: o.tenant_rate_per_second.unwrap_or(self.tenant_rate_per_second),
            tenant_burst: o.tenant_burst.unwrap_or(self.tenant_burst),
            key_rate_per_second: o.key_rate_per_second.unwrap_or(self.key_rate_per_second),
            key_burst: o.key_burst.unwrap_or(self.key_burst),
            units_per_minute: o.units_per_minute.unwrap_or(self.units_per_minute),
            units_per_month: o.units_per_month.unwrap_or(self.units_per_month),
            concurrent_requests: o.concurrent_requests.unwrap_or(self.concurrent_requests),
            urls_per_batch: o.urls_per_batch.unwrap_or(self.urls_per_batch),
            pages_per_crawl: o.pages_per_crawl.unwrap_or(self.pages_per_crawl),
            retention_days: o.retention_days.unwrap_or(self.retention_days),
        }
    }
}

pub type Features = Vec<String>;

/// A plan's full definition as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanCatalog {
    pub plan: Plan,
    pub limits: Limits,
    pub features: Features,
}

impl PlanCatalog {
    /// The platform's default plans.
    pub fn defaults() -> Vec<PlanCatalog> {
        #[expect(clippy::too_many_arguments, reason = "one row of the plan table")]
        fn row(
            plan: Plan,
            tenant: (u32, u32),
            key: (u32, u32),
            per_minute: u32,
            per_month: Option<u64>,
            concurrent: u32,
            batch: u32,
            crawl: u32,
            retention: u32,
            features: &[&str],
        ) -> PlanCatalog {
            PlanCatalog {
                plan,
                limits: Limits {
                    tenant_rate_per_second: tenant.0,
                    tenant_burst: tenant.1,
                    key_rate_per_second: key.0,
                    key_burst: key.1,
                    units_per_minute: per_minute,
                    units_per_month: per_month,
                    concurrent_requests: concurrent,
                    urls_per_batch: batch,
                    pages_per_crawl: crawl,
                    retention_days: retention,
                },
                features: features.iter().map(|f| (*f).to_owned()).collect(),
            }
        }
        let basic = ["basic_extraction", "api_access"];
        let starter = [&basic[..], &["batch_processing"]].concat();
        let professional = [&starter[..], &["advanced_extraction", "custom_models", "priority_support"]].concat();
        let enterprise = [&professional[..], &["all_features", "custom_deployment", "dedicated_support"]].concat();
        vec![
            row(Plan::Trial, (5, 10), (5, 10), 10, Some(1_000), 2, 5, 50, 7, &basic),
            row(Plan::Starter, (20, 40), (10, 20), 60, Some(10_000), 5, 10, 500, 30, &starter),
            row(Plan::Professional, (100, 200), (50, 100), 300, Some(100_000), 20, 50, 5_000, 90, &professional),
            row(Plan::Enterprise, (100, 200), (50, 100), 1_000, None, 100, 100, 50_000, 365, &enterprise),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plans_match_the_published_table() {
        let plans = PlanCatalog::defaults();
        let trial = &plans[0];
        assert_eq!(trial.plan, Plan::Trial);
        assert_eq!(trial.limits.units_per_month, Some(1_000));
        assert_eq!(trial.features, ["basic_extraction", "api_access"]);
        let enterprise = plans.iter().find(|p| p.plan == Plan::Enterprise).unwrap();
        assert_eq!(enterprise.limits.units_per_month, None);
        assert_eq!(enterprise.limits.pages_per_crawl, 50_000);
        assert!(enterprise.features.iter().any(|f| f == "batch_processing"));
        assert!(enterprise.features.iter().any(|f| f == "dedicated_support"));
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let base = PlanCatalog::defaults().pop().unwrap().limits;
        let o: LimitOverrides =
            serde_json::from_str(r#"{"concurrentRequests": 500, "unitsPerMonth": 2000000}"#).unwrap();
        let merged = base.with_overrides(&o);
        assert_eq!(merged.concurrent_requests, 500);
        assert_eq!(merged.units_per_month, Some(2_000_000));
        assert_eq!(merged.pages_per_crawl, base.pages_per_crawl);
        assert!(serde_json::from_str::<LimitOverrides>(r#"{"bogus": 1}"#).is_err());
    }
}
