//! What a tenant's plan lets a crawl do, read when the job is created (the
//! caller's token can ask the tenant service then) and kept with the job, so
//! that a job resumed after a restart, with no caller, charges against the
//! same quotas.

use crate::crawl::BoxFuture;
use anno_errors::ApiError;
use anno_tenancy::TenantId;
use serde::{Deserialize, Serialize};

/// The tenant's plan as it bears on one crawl.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrawlPlan {
    /// The cap on `maxPages`.
    pub pages_per_crawl: u32,
    pub quota: JobQuota,
    /// The tenant's fetch policy: a crawl may not start on a domain it refuses.
    pub fetch: anno_api::config::FetchPolicy,
}

/// The quotas each captured page is charged against, and the concurrency slots
/// a running job takes one of. `None`: unlimited. Stored with the job as JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobQuota {
    pub units_per_minute: Option<u64>,
    pub units_per_month: Option<u64>,
    pub concurrent_requests: Option<u32>,
}

impl From<&anno_tenancy::Limits> for JobQuota {
    fn from(l: &anno_tenancy::Limits) -> Self {
        JobQuota {
            units_per_minute: Some(u64::from(l.units_per_minute)),
            units_per_month: l.units_per_month,
            concurrent_requests: Some(l.concurrent_requests),
        }
    }
}

impl From<&anno_tenancy::Limits> for CrawlPlan {
    fn from(l: &anno_tenancy::Limits) -> Self {
        CrawlPlan { pages_per_crawl: l.pages_per_crawl, quota: JobQuota::from(l), fetch: Default::default() }
    }
}

impl JobQuota {
    /// The policy a page is charged under. Charging reads only the quotas; the
    /// rates are the gateway's business and left at zero here.
    pub fn policy(&self) -> anno_limits::Policy {
        anno_limits::Policy {
            tenant_rate: 0,
            tenant_burst: 0,
            key_rate: 0,
            key_burst: 0,
            units_per_minute: self.units_per_minute,
            units_per_month: self.units_per_month,
            concurrency: self.concurrent_requests,
        }
    }
}

/// The plan of the tenant the token speaks for.
pub trait PlanLimits: Send + Sync {
    fn plan<'a>(&'a self, tenant: &'a TenantId, token: &'a str) -> BoxFuture<'a, Result<CrawlPlan, ApiError>>;
}

/// The same plan for every tenant (tests, and installations without plans).
#[derive(Clone, Debug)]
pub struct FixedPlanLimits(pub CrawlPlan);

impl FixedPlanLimits {
    /// A cap on pages per crawl, with no quota or concurrency limit.
    pub fn pages(cap: u32) -> Self {
        FixedPlanLimits(CrawlPlan { pages_per_crawl: cap, ..CrawlPlan::default() })
    }
}

impl PlanLimits for FixedPlanLimits {
    fn plan<'a>(&'a self, _: &'a TenantId, _: &'a str) -> BoxFuture<'a, Result<CrawlPlan, ApiError>> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_quota_reads_back_and_an_old_or_partial_one_is_unlimited() {
        let quota = JobQuota { units_per_minute: Some(10), units_per_month: None, concurrent_requests: Some(2) };
        let json = serde_json::to_string(&quota).unwrap_or_default();
        assert_eq!(json, r#"{"unitsPerMinute":10,"unitsPerMonth":null,"concurrentRequests":2}"#);
        assert_eq!(serde_json::from_str::<JobQuota>(&json).ok(), Some(quota));
        let partial = serde_json::from_str::<JobQuota>(r#"{"unitsPerMonth":5,"later":1}"#).ok();
        assert_eq!(partial, Some(JobQuota { units_per_month: Some(5), ..JobQuota::default() }));
        let policy = quota.policy();
        assert_eq!((policy.units_per_minute, policy.units_per_month, policy.concurrency), (Some(10), None, Some(2)));
    }
}
