use super::*;
use anno_bus::testing::{redis_available, redis_url};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

fn trial() -> Policy {
    Policy {
        tenant_rate: 5,
        tenant_burst: 10,
        key_rate: 5,
        key_burst: 10,
        units_per_minute: Some(10),
        units_per_month: Some(1_000),
        concurrency: Some(2),
    }
}

fn tenant() -> TenantId {
    TenantId::generate()
}

fn admission<'a>(tenant: &'a TenantId, key: &'a str, policy: &'a Policy) -> Admission<'a> {
    Admission { tenant, key: Some(key), policy, metered: false, slot: None, slot_ttl: Duration::from_secs(60) }
}

async fn distributed(url: &str, fallbacks: Fallbacks) -> (Bus, Limits) {
    let namespace = format!("limits-test-{:016x}", rand::random::<u64>());
    let bus = Bus::redis(url, &namespace).await.expect("connecting to Redis");
    let limits = Limits::new(&bus, fallbacks);
    (bus, limits)
}

/// Thirty requests as fast as they come: the burst passes (and one more if a
/// token refilled meanwhile), the rest are refused with what to tell the client.
async fn burst_then_refusals(limits: &Limits) {
    let (t, policy) = (tenant(), trial());
    let started = Instant::now();
    let mut verdicts = Vec::new();
    for _ in 0..30 {
        verdicts.push(limits.admit(&admission(&t, "key_a", &policy)).await);
    }
    let admitted = verdicts.iter().filter(|v| v.refused.is_none()).count();
    let refilled = (started.elapsed().as_secs_f64() * 5.0).floor() as usize;
    assert!(admitted >= 10 && admitted <= 10 + refilled, "{admitted} admitted");
    let first = &verdicts[0];
    assert_eq!(first.policy_header(), r#""tenant";q=10;w=2, "key";q=10;w=2"#);
    assert!(first.ratelimit_header().starts_with(r#""tenant";r=9;t=1, "key";r=9;t=1"#), "{}", first.ratelimit_header());
    let refused = verdicts.last().unwrap();
    let refusal = refused.refused.expect("refused");
    assert_eq!(refusal.limit, Limit::TenantRate);
    assert_eq!(refusal.limit.code(), "rate_limited");
    assert!(refusal.retry_after > Duration::ZERO && refusal.retry_after <= Duration::from_millis(200), "{refusal:?}");
    assert!(refused.ratelimit_header().starts_with(r#""tenant";r=0;"#), "{}", refused.ratelimit_header());
}

async fn keys_share_the_tenant_limits(limits: &Limits) {
    let (t, policy) = (tenant(), Policy { key_burst: 8, ..trial() });
    let mut admitted = 0;
    for i in 0..20 {
        let key = if i % 2 == 0 { "key_a" } else { "key_b" };
        admitted += usize::from(limits.admit(&admission(&t, key, &policy)).await.refused.is_none());
    }
    assert!((10..=11).contains(&admitted), "two keys of one tenant share its burst of 10: {admitted}");
    // One key alone runs into its own smaller burst first.
    let t = tenant();
    let verdicts: Vec<_> = futures_lite(limits, &t, &policy, 9).await;
    assert_eq!(verdicts.iter().filter(|r| r.is_none()).count(), 8);
    assert_eq!(verdicts.last().unwrap().map(|r| r.limit), Some(Limit::KeyRate));
}

async fn futures_lite(limits: &Limits, t: &TenantId, policy: &Policy, n: usize) -> Vec<Option<Refusal>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(limits.admit(&admission(t, "key_a", policy)).await.refused);
    }
    out
}

fn record(t: &TenantId, id: &str, units: u64) -> UsageRecord {
    UsageRecord {
        id: id.to_owned(),
        tenant_id: t.clone(),
        key_id: Some("key_a".into()),
        units,
        at: anno_tenancy::now_ms(),
        source: "fetch".into(),
    }
}

/// Units charged count against the minute quota; a charge that would exceed
/// it counts nothing; admission refuses once nothing is left.
async fn quotas_count_units(limits: &Limits) {
    let (t, policy) = (tenant(), Policy { tenant_burst: 100, key_burst: 100, ..trial() });
    let metered = |slot| Admission { metered: true, slot, ..admission(&t, "key_a", &policy) };
    assert!(limits.admit(&metered(None)).await.refused.is_none());
    assert_eq!(limits.charge(&record(&t, "r1", 4), &policy).await, Charged::Counted { minute: 4, month: 4 });
    assert_eq!(limits.charge(&record(&t, "r2", 7), &policy).await, Charged::Refused(Limit::MinuteUnits));
    assert_eq!(limits.charge(&record(&t, "r3", 6), &policy).await, Charged::Counted { minute: 10, month: 10 });
    let v = limits.admit(&metered(None)).await;
    let refusal = v.refused.expect("the minute's units are used up");
    assert_eq!((refusal.limit, refusal.limit.code()), (Limit::MinuteUnits, "quota_exceeded"));
    assert!(refusal.retry_after <= Duration::from_secs(60));
    assert!(v.policy_header().contains(r#""units-minute";q=10;w=60"#), "{}", v.policy_header());
    assert!(v.ratelimit_header().contains(r#""units-minute";r=0;"#), "{}", v.ratelimit_header());
}

async fn slots_are_held_until_released(limits: &Limits) {
    let (t, policy) = (tenant(), Policy { tenant_burst: 100, key_burst: 100, ..trial() });
    let metered = |slot| Admission { metered: true, slot: Some(slot), ..admission(&t, "key_a", &policy) };
    let a = limits.admit(&metered("req1")).await;
    let b = limits.admit(&metered("req2")).await;
    assert!(a.refused.is_none() && b.refused.is_none());
    let c = limits.admit(&metered("req3")).await;
    assert_eq!(c.refused.map(|r| (r.limit, r.limit.code())), Some((Limit::Concurrency, "concurrency_exceeded")));
    drop(a);
    let mut freed = None;
    for _ in 0..50 {
        let d = limits.admit(&metered("req4")).await;
        if d.refused.is_none() {
            freed = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed.is_some(), "a released slot is free again");
    // Long work holds a slot of its own, counted with requests.
    assert!(!limits.hold(&t, "crawl_1", 2, Duration::from_secs(60)).await, "both slots are taken");
    drop((b, freed));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(limits.hold(&t, "crawl_1", 2, Duration::from_secs(60)).await);
    assert!(limits.hold(&t, "crawl_1", 2, Duration::from_secs(60)).await, "holding again extends");
}

#[tokio::test]
async fn in_process_a_trial_burst_passes_and_the_rest_are_refused() {
    burst_then_refusals(&Limits::new(&Bus::in_process(), Fallbacks::default())).await;
}

#[tokio::test]
async fn in_process_keys_share_the_tenant_limits() {
    keys_share_the_tenant_limits(&Limits::new(&Bus::in_process(), Fallbacks::default())).await;
}

#[tokio::test]
async fn in_process_quotas_count_units_and_charges_reach_the_usage_stream() {
    let bus = Bus::in_process();
    let limits = Limits::new(&bus, Fallbacks::default());
    quotas_count_units(&limits).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handler: anno_bus::Handler = Arc::new(move |entries: Vec<anno_bus::Entry>| {
        let tx = tx.clone();
        Box::pin(async move {
            for e in entries {
                let _ = tx.send(serde_json::from_str::<UsageRecord>(&e.payload)?);
            }
            Ok(())
        })
    });
    let _task = bus.consume(USAGE_STREAM, "ledger", "test", handler);
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!((first.id.as_str(), first.units, second.id.as_str(), second.units), ("r1", 4, "r3", 6));
}

#[tokio::test]
async fn in_process_slots_are_held_until_released() {
    slots_are_held_until_released(&Limits::new(&Bus::in_process(), Fallbacks::default())).await;
}

#[tokio::test]
async fn redis_a_trial_burst_passes_and_the_rest_are_refused() {
    if !redis_available().await {
        return;
    }
    let (_bus, limits) = distributed(&redis_url(), Fallbacks::default()).await;
    assert!(limits.is_shared());
    burst_then_refusals(&limits).await;
}

#[tokio::test]
async fn redis_keys_share_the_tenant_limits() {
    if !redis_available().await {
        return;
    }
    keys_share_the_tenant_limits(&distributed(&redis_url(), Fallbacks::default()).await.1).await;
}

#[tokio::test]
async fn redis_quotas_count_units_and_charges_are_appended_to_the_stream() {
    if !redis_available().await {
        return;
    }
    let (bus, limits) = distributed(&redis_url(), Fallbacks::default()).await;
    quotas_count_units(&limits).await;
    let (mut conn, _) = bus.redis_connection().unwrap();
    let key = bus.stream_key(USAGE_STREAM).unwrap();
    let len: u64 = redis::cmd("XLEN").arg(&key).query_async(&mut conn).await.unwrap();
    assert_eq!(len, 2, "one record per counted charge, none for the refused one");
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
}

#[tokio::test]
async fn redis_slots_are_held_until_released() {
    if !redis_available().await {
        return;
    }
    slots_are_held_until_released(&distributed(&redis_url(), Fallbacks::default()).await.1).await;
}

/// Three replicas sharing Redis, offered ten times the rate for a few seconds,
/// admit what one limiter would: the burst plus the rate over the time taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_three_replicas_admit_the_limit_within_one_percent() {
    if !redis_available().await {
        return;
    }
    let namespace = format!("limits-test-{:016x}", rand::random::<u64>());
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let bus = Bus::redis(&redis_url(), &namespace).await.unwrap();
        replicas.push((Limits::new(&bus, Fallbacks::default()), bus));
    }
    let t = tenant();
    let policy = Policy { tenant_rate: 100, tenant_burst: 100, key_rate: 10_000, key_burst: 10_000, ..trial() };
    let run_for = Duration::from_secs(10);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (limits, _) in &replicas {
        for lane in 0..4 {
            let (limits, t) = (limits.clone(), t.clone());
            tasks.spawn(async move {
                let mut admitted = 0u64;
                let mut sent = 0u64;
                let key = format!("key_{lane}");
                // ~83 requests/s per lane, 12 lanes: ten times the rate.
                let mut tick = tokio::time::interval(Duration::from_millis(12));
                while started.elapsed() < run_for {
                    tick.tick().await;
                    let a = Admission { key: Some(&key), ..admission(&t, "", &policy) };
                    admitted += u64::from(limits.admit(&a).await.refused.is_none());
                    sent += 1;
                }
                (admitted, sent)
            });
        }
    }
    let results = tasks.join_all().await;
    let elapsed = started.elapsed().as_secs_f64();
    let admitted: u64 = results.iter().map(|r| r.0).sum();
    let sent: u64 = results.iter().map(|r| r.1).sum();
    let expected = 100.0 + 100.0 * elapsed;
    assert!(sent as f64 > 5.0 * expected, "the offered load was {sent} for an allowance of {expected}");
    let error = (admitted as f64 - expected).abs() / expected;
    assert!(error <= 0.01, "admitted {admitted}, expected {expected:.0} ({:.2} %)", error * 100.0);
}

/// A Redis server of the test's own, to stop and start again.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        OwnRedis { port, child: Some(child) }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_up(&self) {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Redis stops and comes back mid-run: while it is gone each limit follows
/// its fallback, and once it is back the shared counts decide again.
async fn redis_outage(fallbacks: Fallbacks, check: impl Fn(&[Verdict])) {
    if !redis_available().await {
        return;
    }
    let mut redis = OwnRedis::start(free_port());
    redis.wait_up().await;
    let (_bus, limits) = distributed(&redis.url(), fallbacks).await;
    let (t, policy) = (tenant(), Policy { units_per_minute: Some(100), ..trial() });
    let metered = Admission { metered: true, ..admission(&t, "key_a", &policy) };
    let before = limits.admit(&metered).await;
    assert!(before.refused.is_none() && !before.degraded, "{before:?}");

    redis.stop();
    let mut during = Vec::new();
    for _ in 0..12 {
        during.push(limits.admit(&metered).await);
    }
    assert!(during.iter().all(|v| v.degraded), "{during:?}");
    check(&during);

    let port = redis.port;
    let redis = OwnRedis::start(port);
    redis.wait_up().await;
    let mut recovered = false;
    for _ in 0..50 {
        let v = limits.admit(&metered).await;
        if !v.degraded {
            assert!(v.refused.is_none(), "a fresh Redis admits: {v:?}");
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the shared limits are used again once Redis is back");
}

#[tokio::test]
async fn redis_outage_fail_closed_refuses_naming_the_limit() {
    let fallbacks = Fallbacks { rate: Fallback::FailClosed, quota: Fallback::FailClosed, ..Fallbacks::default() };
    redis_outage(fallbacks, |during| {
        assert!(during.iter().all(|v| v.refused.map(|r| r.limit) == Some(Limit::TenantRate)), "{during:?}");
    })
    .await;
}

#[tokio::test]
async fn redis_outage_local_share_admits_this_replicas_share() {
    let fallbacks = Fallbacks { replicas: 2, ..Fallbacks::default() };
    redis_outage(fallbacks, |during| {
        // Half the burst of 10 for this replica of two.
        assert_eq!(during.iter().filter(|v| v.refused.is_none()).count(), 5, "{during:?}");
        assert_eq!(during.last().and_then(|v| v.refused).map(|r| r.limit), Some(Limit::TenantRate));
    })
    .await;
}

#[tokio::test]
async fn redis_outage_fail_closed_quota_still_admits_unmetered_calls_by_local_rate() {
    let fallbacks = Fallbacks { quota: Fallback::FailClosed, ..Fallbacks::default() };
    redis_outage(fallbacks, |during| {
        assert_eq!(during[0].refused.map(|r| r.limit), Some(Limit::MinuteUnits), "{:?}", during[0]);
    })
    .await;
}

#[test]
fn headers_follow_the_draft() {
    assert_eq!(policy_item("tenant", 10, 2), r#""tenant";q=10;w=2"#);
    assert_eq!(ratelimit_item("tenant", 3, 1), r#""tenant";r=3;t=1"#);
    assert_eq!(ratelimit_item("a\"b\\c\u{e9}", 0, 0), r#""a\"b\\c_";r=0;t=0"#);
    assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
    assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
}
