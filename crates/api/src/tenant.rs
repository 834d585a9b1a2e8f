//! The tenant service's contract: tenants, plans, onboarding.

use crate::auth::CreatedKey;
use crate::client::{CallError, ServiceClient};
use anno_tenancy::{Features, LimitOverrides, Limits, Plan, TenantId, TenantStatus};
use http::Method;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub domain: String,
    pub contact_email: String,
    pub plan: Plan,
    pub status: TenantStatus,
    pub trial_ends_at: Option<String>,
    /// The plan's limits with any custom overrides applied.
    pub limits: Limits,
    pub limit_overrides: Option<LimitOverrides>,
    pub features: Features,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub purge_after: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub name: String,
    pub domain: String,
    pub contact_email: String,
    #[serde(default)]
    pub plan: Option<Plan>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTenantResponse {
    pub tenant: Tenant,
    pub api_key: CreatedKey,
}

/// What an admin may change. `limits` are custom overrides (enterprise only);
/// `null` clears them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTenantRequest {
    #[serde(default)]
    pub plan: Option<Plan>,
    #[serde(default)]
    pub status: Option<TenantStatus>,
    #[serde(default)]
    pub trial_ends_at: Option<String>,
    #[serde(default, with = "double_option")]
    pub limits: Option<Option<LimitOverrides>>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub contact_email: Option<String>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }
}

/// Events the tenant service publishes on `platform:tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TenantEvent {
    /// Plan, status, limits or anything else changed: drop cached copies.
    #[serde(rename = "tenant.changed", rename_all = "camelCase")]
    Changed { tenant_id: TenantId },
    /// A plan's limits or features changed: every tenant on it changed.
    #[serde(rename = "plans.changed")]
    PlansChanged,
}

pub const TENANTS_TOPIC: &str = "tenants";

/// Typed client of the tenant service.
#[derive(Clone)]
pub struct TenantClient(pub ServiceClient);

impl TenantClient {
    /// A tenant as its own key (or an admin) sees it. Applies trial expiry.
    pub async fn get(&self, token: &str, tenant: &TenantId) -> Result<Tenant, CallError> {
        let path = format!("/internal/v1/tenants/{tenant}");
        self.0.call(Method::GET, &path, Some(token), None::<&()>).await
    }
}
