//! Choosing an endpoint: power of two choices over in-flight counts, or
//! rendezvous hashing of a tenant with a bound on the load it may pile on one
//! endpoint ("consistent hashing with bounded loads", Mirrokni et al. 2018).

use super::endpoint::Endpoint;
use rand::Rng;
use std::sync::Arc;

/// The less loaded of two distinct random candidates. Picking the best of two,
/// rather than the best of all, keeps gateway replicas (each with its own
/// counts) from all rushing the same idle endpoint.
pub(crate) fn two_choices(candidates: &[&Arc<Endpoint>]) -> Option<Arc<Endpoint>> {
    match candidates {
        [] => None,
        [only] => Some(Arc::clone(only)),
        _ => {
            let mut rng = rand::thread_rng();
            let first = rng.gen_range(0..candidates.len());
            let mut second = rng.gen_range(0..candidates.len() - 1);
            if second >= first {
                second += 1;
            }
            let (a, b) = (candidates[first], candidates[second]);
            Some(Arc::clone(if b.in_flight() < a.in_flight() { b } else { a }))
        }
    }
}

/// The tenant's endpoint: the highest rendezvous weight among candidates whose
/// load stays within `(1 + load_factor)` times the average once this request
/// is added. Some candidate always fits, since not all can be above average.
pub(crate) fn by_affinity(candidates: &[&Arc<Endpoint>], key: &str, load_factor: f64) -> Option<Arc<Endpoint>> {
    if candidates.is_empty() {
        return None;
    }
    let total: usize = candidates.iter().map(|e| e.in_flight()).sum();
    let cap = capacity(total, candidates.len(), load_factor);
    let mut ranked: Vec<(u64, &Arc<Endpoint>)> = candidates.iter().map(|e| (weight(key, &e.address), *e)).collect();
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.address.cmp(&b.1.address)));
    ranked.iter().find(|(_, e)| e.in_flight() < cap).map(|(_, e)| Arc::clone(e)).or_else(|| two_choices(candidates))
}

/// Most requests one endpoint may hold, this one included:
/// `ceil((1 + ε) · (total + 1) / n)`, at least 1.
pub(crate) fn capacity(total_in_flight: usize, endpoints: usize, load_factor: f64) -> usize {
    let average = (total_in_flight as f64 + 1.0) / endpoints.max(1) as f64;
    let cap = ((1.0 + load_factor.max(0.0)) * average).ceil();
    if cap.is_finite() && cap >= 1.0 { cap as usize } else { 1 }
}

/// A stable weight for (key, endpoint): the same on every gateway replica and
/// across releases, so one tenant maps to one endpoint everywhere. FNV-1a,
/// finished with SplitMix64's mixer so near-identical addresses spread well.
fn weight(key: &str, endpoint: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes().chain([0xff]).chain(endpoint.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::endpoint::InFlight;
    use crate::upstream::metrics::EndpointMetrics;
    use std::collections::HashMap;

    fn endpoints(n: usize) -> Vec<Arc<Endpoint>> {
        (0..n)
            .map(|i| {
                let base = format!("http://10.0.0.{i}:5217").parse().unwrap();
                Arc::new(Endpoint::new(&base, EndpointMetrics::detached()).unwrap())
            })
            .collect()
    }

    #[test]
    fn capacity_follows_the_bounded_load_formula() {
        assert_eq!(capacity(0, 3, 0.25), 1);
        assert_eq!(capacity(1, 3, 0.25), 1);
        assert_eq!(capacity(2, 3, 0.25), 2);
        assert_eq!(capacity(5, 3, 0.25), 3);
        assert_eq!(capacity(99, 4, 0.0), 25);
        assert_eq!(capacity(0, 0, f64::NAN), 1);
    }

    #[test]
    fn two_choices_never_picks_the_busier_of_two() {
        let all = endpoints(2);
        let _busy = InFlight::start(&all[0]);
        let refs: Vec<_> = all.iter().collect();
        for _ in 0..100 {
            assert_eq!(two_choices(&refs).unwrap().address, all[1].address);
        }
        assert!(two_choices(&[]).is_none());
    }

    #[test]
    fn affinity_spreads_tenants_and_keeps_each_on_one_endpoint() {
        let all = endpoints(4);
        let refs: Vec<_> = all.iter().collect();
        let mut homes = HashMap::new();
        for t in 0..400 {
            let key = format!("ten_{t}");
            let home = by_affinity(&refs, &key, 0.25).unwrap().address.clone();
            for _ in 0..3 {
                assert_eq!(by_affinity(&refs, &key, 0.25).unwrap().address, home);
            }
            *homes.entry(home).or_insert(0) += 1;
        }
        assert_eq!(homes.len(), 4);
        assert!(homes.values().all(|&n| n > 50), "{homes:?}");
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_tenants() {
        let all = endpoints(4);
        let refs: Vec<_> = all.iter().collect();
        let fewer: Vec<_> = all[..3].iter().collect();
        for t in 0..200 {
            let key = format!("ten_{t}");
            let before = by_affinity(&refs, &key, 0.25).unwrap();
            if before.address != all[3].address {
                assert_eq!(by_affinity(&fewer, &key, 0.25).unwrap().address, before.address);
            }
        }
    }

    #[test]
    fn a_loaded_home_is_passed_over() {
        let all = endpoints(3);
        let refs: Vec<_> = all.iter().collect();
        let home = by_affinity(&refs, "ten_a", 0.25).unwrap();
        let held: Vec<_> = (0..6)
            .map(|_| {
                let chosen = by_affinity(&refs, "ten_a", 0.25).unwrap();
                InFlight::start(&chosen)
            })
            .collect();
        assert_eq!(home.in_flight(), 3);
        assert!(all.iter().all(|e| e.in_flight() <= capacity(5, 3, 0.25)));
        drop(held);
        assert_eq!(by_affinity(&refs, "ten_a", 0.25).unwrap().address, home.address);
    }
}
