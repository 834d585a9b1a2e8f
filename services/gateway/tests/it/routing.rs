//! Routing to core instances: the upstream pool against real HTTP servers.

mod discovery;
mod support;

use anno_gateway::upstream::{Affinity, Pool, PoolSettings};
use axum::body::Body;
use http::StatusCode;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Upstream, dead_url, eventually, get, next_chunk, open, request, send, status_of, total_in_flight};

/// Checks off and ejections long, unless a test says otherwise.
fn settings() -> PoolSettings {
    PoolSettings { health_interval: Duration::ZERO, fail_timeout: Duration::from_secs(120), ..PoolSettings::default() }
}

fn pool(settings: PoolSettings, urls: &[&str]) -> Pool {
    let urls: Vec<String> = urls.iter().map(|u| (*u).to_owned()).collect();
    Pool::fixed(settings, &urls).unwrap()
}

async fn upstreams(names: &[&str]) -> Vec<Upstream> {
    let mut started = Vec::new();
    for name in names {
        started.push(Upstream::start(name).await);
    }
    started
}

#[tokio::test]
async fn two_choices_spread_requests_over_every_endpoint() {
    let ups = upstreams(&["a", "b", "c"]).await;
    let pool = pool(settings(), &[&ups[0].url, &ups[1].url, &ups[2].url]);
    let transport = pool.transport();
    for _ in 0..300 {
        let (status, _) = send(&transport, get("/work")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let hits: Vec<usize> = ups.iter().map(|u| u.backend.hits()).collect();
    assert_eq!(hits.iter().sum::<usize>(), 300);
    assert!(hits.iter().all(|&h| h >= 30), "uneven spread {hits:?}");
}

#[tokio::test]
async fn the_less_loaded_endpoint_is_preferred_while_a_body_streams() {
    let ups = upstreams(&["a", "b"]).await;
    let pool = pool(settings(), &[&ups[0].url, &ups[1].url]);
    let transport = pool.transport();
    let mut held = open(&transport, get("/hold")).await;
    let holder = next_chunk(held.body_mut()).await.unwrap().trim().to_owned();
    let holder_url = &ups.iter().find(|u| u.backend.name == holder).unwrap().url;
    assert_eq!(status_of(&pool, holder_url).in_flight, 1, "a streaming response counts as in flight");
    for _ in 0..20 {
        let (status, body) = send(&transport, get("/work")).await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(body, holder, "a request went to the busier endpoint");
    }
    drop(held);
    eventually("the dropped body is no longer counted", || total_in_flight(&pool) == 0).await;
}

#[tokio::test]
async fn three_failures_eject_an_endpoint_until_the_fail_timeout_passes() {
    let ups = upstreams(&["a", "b"]).await;
    let (failing, healthy) = (&ups[0], &ups[1]);
    failing.backend.fail_with.store(503, Ordering::SeqCst);
    let fail_timeout = Duration::from_secs(2);
    let pool = pool(PoolSettings { fail_timeout, ..settings() }, &[&failing.url, &healthy.url]);
    let transport = pool.transport();
    let began = Instant::now();
    let mut failures = 0;
    for _ in 0..200 {
        if failing.backend.hits() == 3 {
            break;
        }
        let (status, _) = send(&transport, get("/work")).await;
        failures += usize::from(status == StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(failing.backend.hits(), 3);
    assert_eq!(failures, 3, "503s are answered as they came, not retried");
    assert!(status_of(&pool, &failing.url).ejected, "three consecutive 503s eject");
    let metrics = metrics_text().await;
    let address = failing.url.trim_start_matches("http://");
    let series = format!("anno_gateway_upstream_ejections_total{{endpoint=\"{address}\",service=\"core\"}} 1");
    assert!(metrics.contains(&series), "{series} not in\n{metrics}");
    for _ in 0..20 {
        let (status, body) = send(&transport, get("/work")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "b"));
    }
    assert_eq!(failing.backend.hits(), 3, "an ejected endpoint gets nothing");

    failing.backend.fail_with.store(0, Ordering::SeqCst);
    for _ in 0..10_000 {
        if failing.backend.hits() > 3 {
            break;
        }
        send(&transport, get("/work")).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(failing.backend.hits() > 3, "the endpoint came back after its fail timeout");
    assert!(began.elapsed() >= fail_timeout, "it came back before the fail timeout");
    assert!(!status_of(&pool, &failing.url).ejected);
}

#[tokio::test]
async fn problem_answers_about_a_fetched_site_do_not_eject() {
    let up = Upstream::start("a").await;
    up.backend.fail_with.store(504, Ordering::SeqCst);
    up.backend.fail_as_problem.store(true, Ordering::SeqCst);
    let pool = pool(settings(), &[&up.url]);
    let transport = pool.transport();
    for _ in 0..10 {
        let (status, _) = send(&transport, get("/work")).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    }
    assert_eq!(up.backend.hits(), 10);
    assert!(!status_of(&pool, &up.url).ejected);
}

#[tokio::test]
async fn active_checks_skip_an_endpoint_until_it_is_ready_again() {
    let ups = upstreams(&["a", "b"]).await;
    let (flaky, steady) = (&ups[0], &ups[1]);
    let settings = PoolSettings { health_interval: Duration::from_millis(50), ..settings() };
    let pool = pool(settings, &[&flaky.url, &steady.url]);
    let transport = pool.transport();

    flaky.backend.ready.store(false, Ordering::SeqCst);
    eventually("the check finds the endpoint not ready", || !status_of(&pool, &flaky.url).ready).await;
    let before = flaky.backend.hits();
    for _ in 0..30 {
        let (status, body) = send(&transport, get("/work")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "b"));
    }
    assert_eq!(flaky.backend.hits(), before);

    flaky.backend.ready.store(true, Ordering::SeqCst);
    eventually("the check finds the endpoint ready", || status_of(&pool, &flaky.url).ready).await;
    for _ in 0..100 {
        send(&transport, get("/work")).await;
    }
    assert!(flaky.backend.hits() > before, "a ready endpoint gets requests again");
}

#[tokio::test]
async fn a_dead_endpoint_costs_no_failed_request() {
    let dead = dead_url().await;
    let live = Upstream::start("live").await;
    let pool = pool(settings(), &[&dead, &live.url]);
    let transport = pool.transport();
    for i in 0..20 {
        let (status, body) = send(&transport, get("/work")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "live"), "GET {i}");
        let payload = format!("payload {i}");
        let (status, body) = send(&transport, request("POST", "/echo", Body::from(payload.clone()))).await;
        assert_eq!((status, body), (StatusCode::OK, payload), "POST {i}");
    }
    // A streamed body of unknown length is retried too: a refused connection never read it.
    for i in 0..4 {
        let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 4096]));
        let body = Body::from_stream(futures::stream::iter(chunks));
        let (status, echoed) = send(&transport, request("POST", "/echo", body)).await;
        assert_eq!((status, echoed.len()), (StatusCode::OK, 256 * 1024), "streamed POST {i}");
    }
    assert_eq!(live.backend.hits(), 44);
    assert!(status_of(&pool, &dead).ejected, "the dead endpoint was tried and ejected");
}

#[tokio::test]
async fn a_server_killed_under_load_fails_only_what_was_in_flight_on_it() {
    let mut ups = upstreams(&["a", "b", "c"]).await;
    let pool = pool(settings(), &[&ups[0].url, &ups[1].url, &ups[2].url]);
    let transport = pool.transport();
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (transport, done, failed) = (transport.clone(), done.clone(), failed.clone());
        workers.spawn(async move {
            for _ in 0..50 {
                let (status, _) = send(&transport, get("/slow")).await;
                if status != StatusCode::OK {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    eventually("load is under way", || done.load(Ordering::SeqCst) >= 80).await;
    let victim = ups.pop().unwrap().kill().await;
    let in_flight_on_victim = victim.started.load(Ordering::SeqCst) - victim.finished.load(Ordering::SeqCst);
    let survivors_before: usize = ups.iter().map(|u| u.backend.hits()).sum();
    while workers.join_next().await.is_some() {}

    assert_eq!(done.load(Ordering::SeqCst), 400);
    assert!(victim.hits() > 0, "the killed server had its share before");
    let failed = failed.load(Ordering::SeqCst);
    assert!(
        failed <= in_flight_on_victim,
        "{failed} failed, {in_flight_on_victim} were in flight on the killed server"
    );
    let survivors_after: usize = ups.iter().map(|u| u.backend.hits()).sum();
    assert!(survivors_after > survivors_before, "the others took the load");
}

#[tokio::test]
async fn no_endpoint_left_is_a_503_no_healthy_upstream() {
    let (one, two) = (dead_url().await, dead_url().await);
    let pool = pool(PoolSettings { max_fails: 1, ..settings() }, &[&one, &two]);
    let transport = pool.transport();
    let response = open(&transport, get("/work")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "both tried, both refused");
    let response = open(&transport, get("/work")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert!(response.headers().contains_key("retry-after"));
    let (_, body) = send(&transport, get("/work")).await;
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "no_healthy_upstream");
    assert_eq!(problem["status"], 503);

    // Live but not ready is no better.
    let up = Upstream::start("a").await;
    up.backend.ready.store(false, Ordering::SeqCst);
    let pool = self::pool(PoolSettings { health_interval: Duration::from_millis(50), ..settings() }, &[&up.url]);
    eventually("the check finds it not ready", || !status_of(&pool, &up.url).ready).await;
    let (status, body) = send(&pool.transport(), get("/work")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("no_healthy_upstream"), "{body}");
    assert_eq!(up.backend.hits(), 0);
}

async fn metrics_text() -> String {
    let response = anno_telemetry::metrics_handler().await;
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

fn for_tenant(tenant: &str, path: &str) -> http::Request<Body> {
    let mut request = get(path);
    request.extensions_mut().insert(Affinity(tenant.to_owned()));
    request
}

#[tokio::test]
async fn affinity_keeps_a_tenant_on_one_endpoint_within_the_load_bound() {
    let ups = upstreams(&["a", "b", "c"]).await;
    let settings = PoolSettings { tenant_affinity: true, affinity_load_factor: 0.25, ..settings() };
    let pool = pool(settings, &[&ups[0].url, &ups[1].url, &ups[2].url]);
    let transport = pool.transport();

    let mut answers = HashMap::new();
    for _ in 0..30 {
        let (_, body) = send(&transport, for_tenant("ten_alpha", "/work")).await;
        *answers.entry(body).or_insert(0) += 1;
    }
    assert_eq!(answers.len(), 1, "one tenant, one endpoint: {answers:?}");
    let home = answers.into_keys().next().unwrap();

    let mut homes = HashMap::new();
    for t in 0..30 {
        let (_, body) = send(&transport, for_tenant(&format!("ten_{t}"), "/work")).await;
        *homes.entry(body).or_insert(0) += 1;
    }
    assert!(homes.len() >= 2, "tenants spread over endpoints: {homes:?}");

    // Six long requests of one tenant: its home takes no more than its bounded share.
    let mut held = Vec::new();
    let mut holding: HashMap<String, usize> = HashMap::new();
    for _ in 0..6 {
        let mut response = open(&transport, for_tenant("ten_alpha", "/hold")).await;
        let name = next_chunk(response.body_mut()).await.unwrap().trim().to_owned();
        *holding.entry(name).or_insert(0) += 1;
        held.push(response);
    }
    let bound = (1.25f64 * 6.0 / 3.0).ceil() as usize;
    assert!(holding.values().all(|&n| n <= bound), "over the bound of {bound}: {holding:?}");
    assert_eq!(holding.get(&home), Some(&bound), "the home endpoint fills to its bound first: {holding:?}");
    assert!(holding.len() >= 2, "{holding:?}");
    drop(held);
    eventually("the held bodies are no longer counted", || total_in_flight(&pool) == 0).await;
    let (_, body) = send(&transport, for_tenant("ten_alpha", "/work")).await;
    assert_eq!(body, home, "back home once the load is gone");

    // Without a tenant the pool balances as usual.
    let mut seen = HashMap::new();
    for _ in 0..60 {
        let (_, body) = send(&transport, get("/work")).await;
        *seen.entry(body).or_insert(0) += 1;
    }
    assert!(seen.len() >= 2, "{seen:?}");
}

#[tokio::test]
async fn streams_pass_chunk_by_chunk_and_a_dropped_body_cancels_the_upstream() {
    let up = Upstream::start("a").await;
    let pool = pool(settings(), &[&up.url]);
    let transport = pool.transport();

    let mut response = open(&transport, get("/stream")).await;
    assert_eq!(next_chunk(response.body_mut()).await.as_deref(), Some("one\n"));
    assert!(!up.backend.stream_done.load(Ordering::SeqCst), "the first chunk came before the upstream finished");
    assert_eq!(total_in_flight(&pool), 1);
    up.backend.release();
    assert_eq!(next_chunk(response.body_mut()).await.as_deref(), Some("two\n"));
    assert_eq!(next_chunk(response.body_mut()).await, None);
    assert_eq!(total_in_flight(&pool), 0, "a finished body stops counting before it is dropped");
    drop(response);

    let mut response = open(&transport, get("/endless")).await;
    assert_eq!(next_chunk(response.body_mut()).await.as_deref(), Some("a\n"));
    assert!(!up.backend.cancelled.load(Ordering::SeqCst));
    drop(response);
    eventually("the upstream sees the client go", || up.backend.cancelled.load(Ordering::SeqCst)).await;
    assert_eq!(total_in_flight(&pool), 0);
}
