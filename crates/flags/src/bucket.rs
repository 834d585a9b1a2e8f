//! Sticky bucketing: where a tenant falls in a flag's rollout and experiment,
//! from a hash of the flag key and tenant id. Public API: the formulas are
//! written out so anyone can predict a tenant's bucket, and must not change.

use crate::Variant;
use sha2::{Digest, Sha256};

/// Buckets per flag: one per hundredth of a percent.
pub const BUCKETS: u32 = 10_000;

/// The tenant's rollout bucket for a flag, in `0..10_000`:
///
/// ```text
/// bucket(flag_key, tenant_id) =
///     u64::from_be_bytes(first 8 bytes of SHA-256("{flag_key}.{tenant_id}")) % 10_000
/// ```
///
/// The string hashed is the flag key, a full stop and the tenant id, as
/// UTF-8. For example `bucket("new-extractor", "ten_0123456789abcdefghjkmnpqrs")`
/// is 7191 (SHA-256 begins `dd88629ed6eb1017`). A tenant is in a rollout of
/// `percentage` when `bucket < (percentage * 100).round()` (see
/// [`in_rollout`]), so raising the percentage only adds tenants.
pub fn bucket(flag_key: &str, tenant_id: &str) -> u32 {
    hash_bucket(&format!("{flag_key}.{tenant_id}"))
}

/// The tenant's experiment bucket for a flag, in `0..10_000`: the same
/// formula as [`bucket()`] over `"{flag_key}.{tenant_id}.variant"`, so the
/// variant a tenant gets does not depend on where it falls in the rollout.
pub fn variant_bucket(flag_key: &str, tenant_id: &str) -> u32 {
    hash_bucket(&format!("{flag_key}.{tenant_id}.variant"))
}

/// The first bucket outside a rollout of `percentage`:
/// `(percentage * 100).round()`, held to `0..=10_000`; NaN gives 0.
pub fn rollout_threshold(percentage: f64) -> u32 {
    // Clamped to 0..=10_000 first; a NaN casts to 0, so nobody is in.
    (percentage * 100.0).round().clamp(0.0, f64::from(BUCKETS)) as u32
}

/// Whether the tenant is in a rollout of `percentage`:
/// `bucket(flag_key, tenant_id) < (percentage * 100).round()`.
pub fn in_rollout(flag_key: &str, tenant_id: &str, percentage: f64) -> bool {
    bucket(flag_key, tenant_id) < rollout_threshold(percentage)
}

/// The variant a tenant gets, or `None` when there are none or their weights
/// add up to 0. With `total` the sum of the weights, the point
/// `variant_bucket(flag_key, tenant_id) * total / 10_000` (integer division)
/// lies in `0..total`, and the tenant gets the first variant whose cumulative
/// weight, in list order, exceeds it. Shares therefore follow the weights to
/// within one bucket (0.01 %). Reordering or reweighting variants moves
/// tenants between them; it never moves anyone in or out of the rollout.
pub fn choose_variant<'a>(flag_key: &str, tenant_id: &str, variants: &'a [Variant]) -> Option<&'a Variant> {
    let total: u128 = variants.iter().map(|v| u128::from(v.weight)).sum();
    if total == 0 {
        return None;
    }
    let point = u128::from(variant_bucket(flag_key, tenant_id)) * total / u128::from(BUCKETS);
    let mut cumulative = 0;
    variants.iter().find(|v| {
        cumulative += u128::from(v.weight);
        point < cumulative
    })
}

fn hash_bucket(input: &str) -> u32 {
    let digest = Sha256::digest(input.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    // Below 10_000 after the modulo, so the cast keeps every bit.
    (u64::from_be_bytes(first) % u64::from(BUCKETS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TENANT: &str = "ten_0123456789abcdefghjkmnpqrs";

    /// Pinned with Python, independently of this code:
    /// `int.from_bytes(hashlib.sha256(b"new-extractor.ten_0123456789abcdefghjkmnpqrs").digest()[:8], "big") % 10000`
    #[test]
    fn the_documented_formula_gives_the_pinned_buckets() {
        assert_eq!(bucket("new-extractor", TENANT), 7191);
        // ….variant: first 8 bytes 73f5f6700b9a5a1a.
        assert_eq!(variant_bucket("new-extractor", TENANT), 8394);
    }

    #[test]
    fn thresholds_round_to_hundredths_of_a_percent_and_stay_in_range() {
        assert_eq!(rollout_threshold(10.0), 1000);
        assert_eq!(rollout_threshold(12.34), 1234);
        assert_eq!(rollout_threshold(12.346), 1235);
        assert_eq!(rollout_threshold(0.0), 0);
        assert_eq!(rollout_threshold(100.0), 10_000);
        assert_eq!(rollout_threshold(250.0), 10_000);
        assert_eq!(rollout_threshold(-5.0), 0);
        assert_eq!(rollout_threshold(f64::NAN), 0);
        // 7191 is in at 71.92 % and out at 71.91 %.
        assert!(in_rollout("new-extractor", TENANT, 71.92));
        assert!(!in_rollout("new-extractor", TENANT, 71.91));
    }

    #[test]
    fn every_bucket_is_in_range_and_different_flags_bucket_independently() {
        let mut same = 0;
        for i in 0..2_000 {
            let tenant = format!("ten_{i:026}");
            let (a, b) = (bucket("flag-a", &tenant), bucket("flag-b", &tenant));
            assert!(a < BUCKETS && b < BUCKETS && variant_bucket("flag-a", &tenant) < BUCKETS);
            same += usize::from(a == b);
        }
        assert!(same < 10, "{same} tenants share a bucket across two flags");
    }

    #[test]
    fn no_variants_or_zero_weights_choose_nothing() {
        assert_eq!(choose_variant("f", TENANT, &[]), None);
        let zero = [Variant { name: "a".into(), weight: 0, value: json!(1) }];
        assert_eq!(choose_variant("f", TENANT, &zero), None);
    }

    #[test]
    fn a_zero_weight_variant_is_never_chosen() {
        let variants = [
            Variant { name: "off".into(), weight: 0, value: json!(0) },
            Variant { name: "on".into(), weight: 1, value: json!(1) },
        ];
        for i in 0..1_000 {
            let chosen = choose_variant("f", &format!("ten_{i}"), &variants).map(|v| v.name.as_str());
            assert_eq!(chosen, Some("on"));
        }
    }
}
