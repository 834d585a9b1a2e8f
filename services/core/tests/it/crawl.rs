//! Crawl jobs against a real website on 127.0.0.1, each test on SQLite and on
//! Postgres.

mod harness;
mod site;

use anno_core::crawl::{CrawlPlan, FixedPlanLimits, JobQuota};
use anno_tenancy::TenantId;
use axum::http::{Method, StatusCode};
use harness::{Backend, Ctx, KEY_ID, expect};
use serde_json::{Value, json};
use site::SLOW_PAGES;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Runs each scenario once per backend: `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    )*};
}

on_both_backends!(
    depth_robots_failures_and_other_hosts,
    patterns_and_path_prefix,
    sitemaps_add_unlinked_pages,
    the_budget_stops_the_crawl,
    cancelling_stops_promptly_and_keeps_pages,
    a_restarted_crawler_resumes_each_page_once,
    results_page_while_running,
    tenants_never_see_each_others_jobs,
    bad_requests_name_the_field,
    the_minute_quota_ends_the_crawl,
    a_resumed_crawl_keeps_its_quota_and_charges_each_page_once,
    a_crawl_waits_for_a_free_slot_and_gives_it_back,
);

/// Each captured page of the job was charged one unit, once: the usage records
/// that reached the stream are one per page, credited to the key that started
/// the job.
async fn assert_charged(ctx: &Ctx, tenant: &TenantId, job: &str, pages: usize) {
    let usage = ctx.settled_usage(tenant, pages).await;
    let ours: Vec<_> = usage.iter().filter(|r| r.id.starts_with(job)).collect();
    assert_eq!(ours.len(), pages, "one usage record per captured page: {usage:?}");
    let ids: BTreeSet<&str> = ours.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), pages, "each record once: {usage:?}");
    for r in ours {
        assert_eq!((r.units, r.source.as_str(), r.key_id.as_deref()), (1, "crawl", Some(KEY_ID)), "{r:?}");
    }
}

/// Sleeps past the end of the minute when little of it is left, so that a
/// test of the minute quota runs inside one minute.
async fn start_of_a_minute() {
    let into = anno_tenancy::now_ms() % 60_000;
    if into > 40_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into + 200) as u64)).await;
    }
}

fn plan(quota: JobQuota) -> CrawlPlan {
    CrawlPlan { pages_per_crawl: 500, quota, ..CrawlPlan::default() }
}

/// Every discovered URL ends with one disposition, and the counts agree.
fn assert_settled(job: &Value, dispositions: &std::collections::BTreeMap<String, String>) {
    let count = |prefix: &str| dispositions.values().filter(|d| d.starts_with(prefix)).count() as u64;
    let urls = &job["urls"];
    assert_eq!(urls["queued"], 0, "{job}");
    assert_eq!(urls["discovered"], dispositions.len() as u64, "{job}");
    assert_eq!(urls["captured"], count("captured"), "{job}");
    assert_eq!(urls["failed"], count("failed:"), "{job}");
    assert_eq!(urls["excluded"], count("excluded:"), "{job}");
    assert_eq!(urls["overBudget"], count("over_budget"), "{job}");
    assert_eq!(job["progress"]["pagesCompleted"], urls["captured"], "{job}");
    assert_eq!(job["progress"]["pagesFailed"], urls["failed"], "{job}");
}

async fn depth_robots_failures_and_other_hosts(backend: Backend) {
    let Some(ctx) = Ctx::new(backend, 500).await else { return };
    let (_, token) = ctx.tenant().await;
    let id = ctx.start(&token, "/", json!({})).await;
    let job = ctx.finished(&token, &id).await;
    let elsewhere = format!("http://elsewhere.test:{}/", ctx.site.port());
    let urls = ctx.dispositions(&token, &id).await;
    let wanted = expect(&[
        ("/", "captured"),
        ("/a", "captured"),
        ("/b", "captured"),
        ("/docs/", "captured"),
        ("/private/", "excluded:robots"),
        ("/broken", "failed:upstream_error"),
        (elsewhere.as_str(), "excluded:other_host"),
        ("/a/1", "captured"),
        ("/a/2", "captured"),
        ("/a/3", "captured"),
        ("/b/1", "captured"),
        ("/b/2", "captured"),
        ("/docs/intro", "captured"),
        ("/docs/guide", "captured"),
        ("/docs/api", "captured"),
        ("/a/1/x", "excluded:depth"),
        ("/a/1/y", "excluded:depth"),
        ("/a/2/x", "excluded:depth"),
        ("/docs/guide/deep", "excluded:depth"),
    ]);
    assert_eq!(urls, wanted);
    assert_settled(&job, &urls);
    assert_eq!(job["progress"]["pagesTotal"], 13, "{job}");
    assert_eq!(job["options"]["maxDepth"], 2);
    for never in ["/private/", "/a/1/x", "/docs/guide/deep"] {
        assert_eq!(ctx.site.hits(never), 0, "{never} was fetched");
    }

    let pages = ctx.results(&token, &id).await;
    assert_eq!(pages.len(), 12);
    let home = &pages["/"];
    assert_eq!(
        (home["depth"].as_u64(), home["status"].as_str(), home["httpStatus"].as_u64()),
        (Some(0), Some("captured"), Some(200))
    );
    assert_eq!(home["title"], "Page /");
    let content = home["content"].as_str().expect("content");
    assert!(content.contains("is part of a small test site"), "{content}");
    assert!(!content.contains("/private/"), "the footer is not main content: {content}");
    let links: Vec<&str> = home["links"].as_array().expect("links").iter().filter_map(Value::as_str).collect();
    assert!(links.contains(&ctx.site.url("/docs/").as_str()) && links.contains(&elsewhere.as_str()), "{links:?}");
    assert!(links.iter().all(|l| l.starts_with("http://") && !l.contains('#')), "{links:?}");
    let (tokens, raw) = (home["tokenCount"].as_u64().unwrap_or(0), home["rawTokenCount"].as_u64().unwrap_or(0));
    assert!(tokens > 20 && raw > tokens, "{tokens} {raw}");
    assert_eq!(pages["/docs/guide"]["depth"], 2);

    // A shallower crawl stops one level up.
    let id = ctx.start(&token, "/", json!({"maxDepth": 1, "concurrency": 1})).await;
    ctx.finished(&token, &id).await;
    let urls = ctx.dispositions(&token, &id).await;
    let captured: Vec<&str> = urls.iter().filter(|(_, d)| *d == "captured").map(|(u, _)| u.as_str()).collect();
    assert_eq!(captured, ["/", "/a", "/b", "/docs/"]);
    assert_eq!(urls["/a/1"], "excluded:depth");
    ctx.finish().await;
}

async fn patterns_and_path_prefix(backend: Backend) {
    let Some(ctx) = Ctx::new(backend, 500).await else { return };
    let (_, token) = ctx.tenant().await;
    let options = json!({"includePatterns": ["/a(/|$)"], "excludePatterns": ["/a/2$"], "respectRobots": false});
    let id = ctx.start(&token, "/", options).await;
    let job = ctx.finished(&token, &id).await;
    let urls = ctx.dispositions(&token, &id).await;
    let elsewhere = format!("http://elsewhere.test:{}/", ctx.site.port());
    let wanted = expect(&[
        ("/", "captured"),
        ("/a", "captured"),
        ("/b", "excluded:pattern"),
        ("/docs/", "excluded:pattern"),
        ("/private/", "excluded:pattern"),
        ("/broken", "excluded:pattern"),
        (elsewhere.as_str(), "excluded:other_host"),
        ("/a/1", "captured"),
        ("/a/2", "excluded:pattern"),
        ("/a/3", "captured"),
        ("/a/1/x", "excluded:depth"),
        ("/a/1/y", "excluded:depth"),
    ]);
    assert_eq!(urls, wanted);
    assert_settled(&job, &urls);

    let id = ctx.start(&token, "/docs/", json!({"pathPrefix": "/docs/", "maxDepth": 3})).await;
    let job = ctx.finished(&token, &id).await;
    let urls = ctx.dispositions(&token, &id).await;
    let wanted = expect(&[
        ("/docs/", "captured"),
        ("/", "excluded:path_prefix"),
        ("/docs/intro", "captured"),
        ("/docs/guide", "captured"),
        ("/docs/api", "captured"),
        ("/docs/guide/deep", "captured"),
        ("/docs/guide/deep/er", "captured"),
    ]);
    assert_eq!(urls, wanted);
    assert_settled(&job, &urls);
    assert_eq!(ctx.results(&token, &id).await["/docs/guide/deep/er"]["depth"], 3);
    ctx.finish().await;
}

async fn sitemaps_add_unlinked_pages(backend: Backend) {
    let Some(ctx) = Ctx::new(backend, 500).await else { return };
    let (_, token) = ctx.tenant().await;
    let without = ctx.start(&token, "/", json!({"maxDepth": 1})).await;
    ctx.finished(&token, &without).await;
    assert!(!ctx.dispositions(&token, &without).await.contains_key("/orphan/1"));

    let id = ctx.start(&token, "/", json!({"maxDepth": 1, "useSitemap": true})).await;
    let job = ctx.finished(&token, &id).await;
    let urls = ctx.dispositions(&token, &id).await;
    for orphan in ["/orphan/1", "/orphan/2", "/orphan/3"] {
        assert_eq!(urls.get(orphan).map(String::as_str), Some("captured"), "{urls:?}");
    }
    assert_eq!(urls["/a/1"], "excluded:depth");
    assert_settled(&job, &urls);
    let pages = ctx.results(&token, &id).await;
    assert_eq!(pages["/orphan/2"]["depth"], 1);
    assert_eq!(pages.len(), 7, "{:?}", pages.keys());
    ctx.finish().await;
}

async fn the_budget_stops_the_crawl(backend: Backend) {
    // The plan allows 5 pages a crawl; the caller asks for more.
    let Some(ctx) = Ctx::new(backend, 5).await else { return };
    let (tenant, token) = ctx.tenant().await;
    let id = ctx.start(&token, "/", json!({"maxPages": 40, "concurrency": 3})).await;
    let job = ctx.finished(&token, &id).await;
    assert_eq!(job["options"]["maxPages"], 5, "{job}");
    let urls = ctx.dispositions(&token, &id).await;
    assert_settled(&job, &urls);
    assert_eq!(job["urls"]["captured"], 5, "{job}");
    assert!(job["urls"]["overBudget"].as_u64().unwrap_or(0) >= 3, "{job}");
    assert_eq!(ctx.results(&token, &id).await.len(), 5);
    assert!(job.get("stopReason").is_none(), "the budget is not a limit of the tenant's: {job}");
    assert_charged(&ctx, &tenant, &id, 5).await;
    // Over budget means never fetched.
    for (path, disposition) in &urls {
        if disposition == "over_budget" {
            assert_eq!(ctx.site.hits(path), 0, "{path} was fetched");
        }
    }
    ctx.finish().await;
}

async fn cancelling_stops_promptly_and_keeps_pages(backend: Backend) {
    let Some(ctx) = Ctx::new(backend, 500).await else { return };
    let (_, token) = ctx.tenant().await;
    let id = ctx.start(&token, "/slow/", json!({"concurrency": 2})).await;
    ctx.site.release(2);
    ctx.wait_for(&token, &id, "three pages", |j| j["progress"]["pagesCompleted"] == 3).await;

    // Two fetches are waiting on the site: cancelling does not wait for them.
    let started = Instant::now();
    let (status, job) = ctx.call(Method::DELETE, &format!("/v1/crawl/{id}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert!(started.elapsed() < Duration::from_secs(2), "cancelling took {:?}", started.elapsed());
    assert_eq!(job["status"], "cancelled");
    assert!(job["finishedAt"].is_string());
    assert_eq!(job["urls"]["captured"], 3, "{job}");
    assert_eq!(job["urls"]["queued"], 0, "{job}");
    assert_eq!(job["urls"]["cancelled"], (SLOW_PAGES - 2) as u64, "{job}");

    // Nothing more is fetched or captured once the site lets pages through.
    let hits: u32 = (1..=SLOW_PAGES).map(|i| ctx.site.hits(&format!("/slow/{i}"))).sum();
    ctx.site.release(100);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: u32 = (1..=SLOW_PAGES).map(|i| ctx.site.hits(&format!("/slow/{i}"))).sum();
    assert_eq!(hits, after, "fetches went on after the cancel");
    let job = ctx.job(&token, &id).await;
    assert_eq!((job["status"].as_str(), job["urls"]["captured"].as_u64()), (Some("cancelled"), Some(3)));
    assert_eq!(ctx.results(&token, &id).await.len(), 3);
    let urls = ctx.dispositions(&token, &id).await;
    assert!(urls.values().all(|d| d == "captured" || d == "cancelled"), "{urls:?}");

    // Cancelling again shows the job as it is.
    let (status, again) = ctx.call(Method::DELETE, &format!("/v1/crawl/{id}"), Some(&token), None).await;
    assert_eq!((status, again["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    ctx.finish().await;
}

async fn a_restarted_crawler_resumes_each_page_once(backend: Backend) {
    let Some(mut ctx) = Ctx::new(backend, 500).await else { return };
    let (tenant, token) = ctx.tenant().await;
    let id = ctx.start(&token, "/slow/", json!({"concurrency": 2})).await;
    ctx.site.release(4);
    ctx.wait_for(&token, &id, "five pages", |j| j["progress"]["pagesCompleted"] == 5).await;
    let first = ctx.results(&token, &id).await;

    // The process stops with two fetches in flight; the next one resumes the job.
    ctx.restart().await;
    assert_eq!(ctx.job(&token, &id).await["status"], "running", "a stop is not an end");
    assert_eq!(ctx.crawler.resume().await.expect("resume"), 1);
    ctx.site.release(2);
    ctx.wait_for(&token, &id, "seven pages", |j| j["progress"]["pagesCompleted"] == 7).await;

    // This one dies without handing the job back: the next start leaves it to
    // its holder until the lease runs out, then takes it over.
    ctx.restart().await;
    ctx.lease_elsewhere(&id, 1_000).await;
    let second = ctx.results(&token, &id).await;
    assert_eq!(second.len(), 7);
    let hits: Vec<(String, u32)> = second.keys().map(|p| (p.clone(), ctx.site.hits(p))).collect();
    assert_eq!(ctx.crawler.resume().await.expect("resume"), 0, "the job is leased elsewhere");
    ctx.site.release(100);
    let job = ctx.finished(&token, &id).await;

    let pages = ctx.results(&token, &id).await;
    assert_eq!(pages.len(), SLOW_PAGES + 1, "{:?}", pages.keys());
    let urls = ctx.dispositions(&token, &id).await;
    assert_settled(&job, &urls);
    assert_eq!(job["urls"]["captured"], (SLOW_PAGES + 1) as u64);
    // What was captured is never fetched again (what was in flight at a stop may be).
    for path in first.keys() {
        assert_eq!(ctx.site.hits(path), 1, "{path}, captured before the first stop, was fetched again");
    }
    for (path, hits) in hits {
        assert_eq!(ctx.site.hits(&path), hits, "{path}, captured before the second stop, was fetched again");
    }
    // What was in flight at a stop is charged when it is captured, once.
    assert_charged(&ctx, &tenant, &id, SLOW_PAGES + 1).await;
    ctx.finish().await;
}

async fn results_page_while_running(backend: Backend) {
    let Some(ctx) = Ctx::new(backend, 500).await else { return };
    let (_, token) = ctx.tenant().await;
    let id = ctx.start(&token, "/slow/", json!({"concurrency": 2})).await;
    ctx.site.release(3);
    let job = ctx.wait_for(&token, &id, "four pages", |j| j["progress"]["pagesCompleted"] == 4).await;
    assert_eq!(job["status"], "running");
    assert!(job["progress"]["currentUrl"].as_str().is_some_and(|u| u.contains("/slow/")), "{job}");
    assert_eq!(job["progress"]["pagesTotal"], (SLOW_PAGES + 1) as u64, "{job}");

    let path = format!("/v1/crawl/{id}/results");
    let (status, first) = ctx.get(&token, &format!("{path}?limit=3")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["data"].as_array().map(Vec::len), Some(3));
    assert_eq!(first["data"][0]["url"], ctx.site.url("/slow/"), "capture order");
    let cursor = first["nextCursor"].as_str().expect("more to come").to_owned();
    let (_, second) = ctx.get(&token, &format!("{path}?limit=3&cursor={cursor}")).await;
    assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
    assert!(second["nextCursor"].is_null(), "{second}");

    // The cursor stays good while the crawl goes on.
    ctx.site.release(100);
    ctx.finished(&token, &id).await;
    let (_, rest) = ctx.get(&token, &format!("{path}?limit=50&cursor={cursor}")).await;
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(SLOW_PAGES + 1 - 3));

    let (status, bad) = ctx.get(&token, &format!("{path}?cursor=job_x")).await;
    assert_eq!((status, bad["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_cursor")));
    ctx.finish().await;
}

async fn tenants_never_see_each_others_jobs(backend: Backend) {
    let Some(ctx) = Ctx::new(backend, 500).await else { return };
    let (_, alice) = ctx.tenant().await;
    let (bob_id, bob) = ctx.tenant().await;
    let id = ctx.start(&alice, "/", json!({"maxDepth": 0})).await;
    ctx.finished(&alice, &id).await;

    for path in [format!("/v1/crawl/{id}"), format!("/v1/crawl/{id}/results"), format!("/v1/crawl/{id}/urls")] {
        let (status, body) = ctx.get(&bob, &path).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{path}: {body}");
        assert_eq!(body["type"].as_str().map(|t| t.ends_with("not_found")), Some(true), "problem+json: {body}");
    }
    let (status, _) = ctx.call(Method::DELETE, &format!("/v1/crawl/{id}"), Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ctx.job(&alice, &id).await["status"], "completed", "bob's cancel did nothing");

    let (_, listed) = ctx.get(&bob, "/v1/crawl").await;
    assert_eq!(listed["data"], json!([]));
    let second = ctx.start(&alice, "/", json!({"maxDepth": 0})).await;
    ctx.finished(&alice, &second).await;
    let (_, listed) = ctx.get(&alice, "/v1/crawl?limit=1").await;
    assert_eq!(listed["data"][0]["jobId"], second.as_str(), "newest first");
    let cursor = listed["nextCursor"].as_str().expect("a second page");
    let (_, older) = ctx.get(&alice, &format!("/v1/crawl?limit=1&cursor={cursor}")).await;
    assert_eq!(older["data"][0]["jobId"], id.as_str());
    assert!(older["nextCursor"].is_null());

    for bad in ["nope", "job_0123456789abcdefghjkmnpqrs", "job_../../etc"] {
        let (status, _) = ctx.get(&alice, &format!("/v1/crawl/{bad}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
    // Without the crawl scope, or without a token, nothing.
    let fetch_only = ctx.token(&bob_id, [anno_tenancy::Scope::ContentFetch].into_iter().collect());
    let (status, body) = ctx.get(&fetch_only, "/v1/crawl").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    let (status, _) = ctx.call(Method::GET, &format!("/v1/crawl/{id}"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    ctx.finish().await;
}

async fn bad_requests_name_the_field(backend: Backend) {
    let Some(ctx) = Ctx::new(backend, 500).await else { return };
    let (_, token) = ctx.tenant().await;
    let post = |body: Value| ctx.call(Method::POST, "/v1/crawl", Some(&token), Some(body));

    let (status, body) = post(json!({"url": ctx.site.url("/"), "options": {"maxDepht": 3}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["path"], "options.maxDepht", "{body}");

    let (status, body) = post(json!({"url": ctx.site.url("/"), "options": {"excludePatterns": ["ok", "a(b"]}})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")), "{body}");
    assert_eq!(body["errors"][0]["path"], "options.excludePatterns[1]", "{body}");

    let (status, body) =
        post(json!({"url": "file:///etc/passwd", "options": {"maxDepth": 11, "concurrency": 0}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let paths: Vec<&str> =
        body["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths, ["url", "options.maxDepth", "options.concurrency"]);

    let (_, listed) = ctx.get(&token, "/v1/crawl").await;
    assert_eq!(listed["data"], json!([]), "no job was made");
    ctx.finish().await;
}

async fn the_minute_quota_ends_the_crawl(backend: Backend) {
    // Four units a minute; the site has twelve pages to capture.
    let quota = JobQuota { units_per_minute: Some(4), ..JobQuota::default() };
    let Some(ctx) = Ctx::with_plan(backend, plan(quota)).await else { return };
    let (tenant, token) = ctx.tenant().await;
    start_of_a_minute().await;
    let id = ctx.start(&token, "/", json!({"concurrency": 3})).await;
    let job = ctx.ended(&token, &id).await;
    assert_eq!(job["status"], "completed", "pages were captured before the units ran out: {job}");
    assert_eq!(
        (job["stopReason"].as_str(), job["stopPolicy"].as_str()),
        (Some("quota_exceeded"), Some("units-minute"))
    );
    assert_eq!(job["urls"]["captured"], 4, "{job}");
    assert_eq!(job["options"]["maxPages"], 50, "the job's own budget was not what stopped it: {job}");
    assert!(job["urls"]["overBudget"].as_u64().unwrap_or(0) >= 1, "what was left is settled: {job}");
    let urls = ctx.dispositions(&token, &id).await;
    assert_settled(&job, &urls);
    assert_eq!(ctx.results(&token, &id).await.len(), 4);
    assert_charged(&ctx, &tenant, &id, 4).await;

    // With the minute used up, the next crawl captures nothing and fails, for
    // the same reason; it costs nothing.
    let second = ctx.start(&token, "/", json!({})).await;
    let job = ctx.ended(&token, &second).await;
    assert_eq!((job["status"].as_str(), job["stopReason"].as_str()), (Some("failed"), Some("quota_exceeded")), "{job}");
    assert_eq!(job["urls"]["captured"], 0, "{job}");
    assert_eq!(job["urls"]["queued"], 0, "{job}");
    assert!(ctx.results(&token, &second).await.is_empty());
    // Its refused charge counted nothing and appended nothing.
    assert_eq!(ctx.settled_usage(&tenant, 4).await.len(), 4, "a refused page costs nothing");
    ctx.finish().await;
}

async fn a_resumed_crawl_keeps_its_quota_and_charges_each_page_once(backend: Backend) {
    // Five units a month when the job is created.
    let quota = JobQuota { units_per_month: Some(5), ..JobQuota::default() };
    let Some(mut ctx) = Ctx::with_plan(backend, plan(quota)).await else { return };
    let (tenant, token) = ctx.tenant().await;
    let id = ctx.start(&token, "/slow/", json!({"concurrency": 2})).await;
    ctx.site.release(2);
    ctx.wait_for(&token, &id, "three pages", |j| j["progress"]["pagesCompleted"] == 3).await;

    // The process stops with two fetches in flight. The next one has no caller
    // to ask for the plan (and would find no quota in it): the job carries on
    // under the quota it was created with.
    ctx.restart_with(FixedPlanLimits::pages(500).0).await;
    assert_eq!(ctx.crawler.resume().await.expect("resume"), 1);
    ctx.site.release(100);
    let job = ctx.ended(&token, &id).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!((job["stopReason"].as_str(), job["stopPolicy"].as_str()), (Some("quota_exceeded"), Some("units-month")));
    assert_eq!(job["urls"]["captured"], 5, "{job}");
    assert_eq!(ctx.results(&token, &id).await.len(), 5);
    assert_charged(&ctx, &tenant, &id, 5).await;
    ctx.finish().await;
}

async fn a_crawl_waits_for_a_free_slot_and_gives_it_back(backend: Backend) {
    let quota = JobQuota { concurrent_requests: Some(2), ..JobQuota::default() };
    let Some(ctx) = Ctx::with_plan(backend, plan(quota)).await else { return };
    let (tenant, token) = ctx.tenant().await;
    let ttl = Duration::from_secs(120);
    // Two requests in progress hold both of the tenant's slots.
    for slot in ["request_a", "request_b"] {
        assert!(ctx.limits.hold(&tenant, slot, 2, ttl).await);
    }
    let id = ctx.start(&token, "/slow/", json!({"concurrency": 2})).await;
    // Longer than the lease renewals (1 s) and the slot retries (1 s).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let job = ctx.job(&token, &id).await;
    assert_eq!((job["status"].as_str(), job["progress"]["pagesCompleted"].as_u64()), (Some("running"), Some(0)));
    assert_eq!(ctx.site.hits("/slow/"), 0, "nothing is fetched without a slot");

    // A slot frees: the crawl takes it and goes on, and holds it while it runs.
    ctx.limits.release(&tenant, "request_a").await;
    ctx.wait_for(&token, &id, "the first page", |j| j["progress"]["pagesCompleted"] == 1).await;
    assert!(!ctx.limits.hold(&tenant, "request_c", 2, ttl).await, "the crawl holds a slot");
    // Cancelling it gives the slot back.
    let (status, job) = ctx.call(Method::DELETE, &format!("/v1/crawl/{id}"), Some(&token), None).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{job}");
    assert!(ctx.limits.hold(&tenant, "request_c", 2, ttl).await, "the cancelled crawl's slot is free");

    // A crawl waiting for a slot can be cancelled too, and captures nothing.
    let waiting = ctx.start(&token, "/", json!({})).await;
    let started = Instant::now();
    let (status, job) = ctx.call(Method::DELETE, &format!("/v1/crawl/{waiting}"), Some(&token), None).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{job}");
    assert!(started.elapsed() < Duration::from_secs(5), "cancelling took {:?}", started.elapsed());
    assert_eq!(job["urls"]["captured"], 0, "{job}");
    assert_eq!(ctx.site.hits("/"), 0, "{job}");

    // A crawl that ends gives its slot back.
    ctx.limits.release(&tenant, "request_c").await;
    let done = ctx.start(&token, "/", json!({"maxDepth": 0})).await;
    ctx.finished(&token, &done).await;
    assert!(ctx.limits.hold(&tenant, "request_c", 2, ttl).await, "the finished crawl's slot is free");
    ctx.finish().await;
}
