//! The gateway's own answers.

use anno_tenancy::{Features, Limits, Plan, ScopeSet, TenantId, TenantStatus};
use serde::{Deserialize, Serialize};

/// `GET /v1/me`: the calling tenant and the credential used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub tenant: MeTenant,
    /// Set when the caller used an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<MeCredential>,
    /// Set when the caller used a user's access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<MeCredential>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeTenant {
    pub id: TenantId,
    pub name: String,
    pub plan: Plan,
    pub status: TenantStatus,
    pub trial_ends_at: Option<String>,
    pub limits: Limits,
    pub features: Features,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeCredential {
    pub id: String,
    pub name: String,
    pub scopes: ScopeSet,
}
