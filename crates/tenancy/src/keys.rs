//! Typed constructors for every name that embeds a tenant: bus channels, the
//! tenant's database schema and its storage paths. Code never formats these by hand.

use crate::TenantId;

/// A bus channel: `platform:{topic}` or, for a tenant, `tenant:{id}:{topic}`.
pub fn bus_channel(tenant: Option<&TenantId>, topic: &str) -> String {
    match tenant {
        Some(t) => format!("tenant:{t}:{topic}"),
        None => format!("platform:{topic}"),
    }
}

/// A cache key: `tenant:{id}:{kind}:{rest}` for what only the tenant may
/// read, `public:{kind}:{rest}` for what every tenant may share.
pub fn cache_key(tenant: Option<&TenantId>, kind: &str, rest: &str) -> String {
    match tenant {
        Some(t) => format!("tenant:{t}:{kind}:{rest}"),
        None => format!("public:{kind}:{rest}"),
    }
}

/// The Postgres schema (or SQLite database name) holding a tenant's own content.
pub fn tenant_schema(tenant: &TenantId) -> String {
    format!("tenant_{}", tenant.body())
}

/// An object-storage style path under the tenant's prefix.
pub fn storage_path(tenant: &TenantId, rest: &str) -> String {
    format!("tenants/{tenant}/{}", rest.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_embed_the_tenant() {
        let t: TenantId = "ten_0123456789abcdefghjkmnpqrs".parse().unwrap();
        assert_eq!(bus_channel(Some(&t), "config"), "tenant:ten_0123456789abcdefghjkmnpqrs:config");
        assert_eq!(bus_channel(None, "auth"), "platform:auth");
        assert_eq!(cache_key(Some(&t), "page", "ab"), "tenant:ten_0123456789abcdefghjkmnpqrs:page:ab");
        assert_eq!(cache_key(None, "page", "ab"), "public:page:ab");
        assert_eq!(tenant_schema(&t), "tenant_0123456789abcdefghjkmnpqrs");
        assert_eq!(storage_path(&t, "/jobs/1"), "tenants/ten_0123456789abcdefghjkmnpqrs/jobs/1");
    }
}
