//! GCRA (the generic cell rate algorithm): a bucket admits `burst` requests at
//! once and then one every `1/rate` seconds. Each bucket keeps only its
//! theoretical arrival time (TAT): the instant it would be full again. The
//! Redis script in `shared.rs` is the same arithmetic on the Redis clock.

use std::time::Duration;

/// One bucket's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub allowed: bool,
    /// Unit-cost requests a check right now would still admit (after this one,
    /// when it was admitted).
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset_after: Duration,
    /// When refused: until one more is admitted.
    pub retry_after: Duration,
}

/// One GCRA step in nanoseconds for a unit cost: the answer, and the TAT to
/// store when admitted.
pub fn step(now: u64, tat: Option<u64>, interval: u64, burst: u32) -> (Bucket, Option<u64>) {
    let tolerance = interval.saturating_mul(u64::from(burst.max(1)));
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(interval);
    let allow_at = new_tat.saturating_sub(tolerance);
    let remaining = |tat: u64| tolerance.saturating_sub(tat - now) / interval.max(1);
    if now < allow_at {
        let bucket = Bucket {
            allowed: false,
            remaining: remaining(tat),
            reset_after: Duration::from_nanos(tat - now),
            retry_after: Duration::from_nanos(allow_at - now),
        };
        return (bucket, None);
    }
    let bucket = Bucket {
        allowed: true,
        remaining: remaining(new_tat),
        reset_after: Duration::from_nanos(new_tat - now),
        retry_after: Duration::ZERO,
    };
    (bucket, Some(new_tat))
}

/// Nanoseconds between admissions at `rate` per second (at least 1 per second).
pub fn interval_nanos(rate: u32) -> u64 {
    (1_000_000_000 / u64::from(rate.max(1))).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_fresh_bucket_admits_exactly_the_burst_then_asks_to_wait_one_interval() {
        let interval = interval_nanos(10);
        let mut tat = None;
        for i in 0..5 {
            let (b, next) = step(0, tat, interval, 5);
            assert!(b.allowed, "request {i}: {b:?}");
            assert_eq!(b.remaining, 4 - i);
            tat = next;
        }
        let (b, next) = step(0, tat, interval, 5);
        assert!(!b.allowed && next.is_none(), "{b:?}");
        assert_eq!(
            (b.remaining, b.retry_after, b.reset_after),
            (0, Duration::from_millis(100), Duration::from_millis(500))
        );
        // One interval later exactly one more.
        let (b, next) = step(100 * MS, tat, interval, 5);
        assert!(b.allowed && b.remaining == 0, "{b:?}");
        assert!(!step(100 * MS, next, interval, 5).0.allowed);
    }

    #[test]
    fn an_idle_bucket_refills_to_the_burst_and_no_further() {
        let interval = interval_nanos(1);
        let (_, tat) = step(0, None, interval, 3);
        let (b, _) = step(3_600_000 * MS, tat, interval, 3);
        assert!(b.allowed && b.remaining == 2, "{b:?}");
    }
}
