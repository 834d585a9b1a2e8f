//! What the gateway adds to a call, measured in process: the same core route
//! called through the gateway's router (authentication, limits, the audit
//! event and its storing, the forward to core in process) and through core's
//! own router with an internal token (what the gateway forwards), on one
//! embedded platform, the two arms taking turns. No sockets and no HTTP
//! parsing in either arm, so the difference between them is the gateway's own
//! work: the figure to hold against a proxy's CPU per request.
//!
//! Each arm's figure is the CPU time of the whole process (every thread:
//! SQLite's, the audit storer's) over its calls, divided by them; after each
//! arm the process settles (still counted), so the audit events of the
//! gateway's calls are stored within its own figure.

use crate::bench::{Stopwatch, median};
use crate::platform;
use crate::{Config, Overrides, ServiceName};
use anno_api::auth::AuthClient;
use anno_api::client::ServiceClient;
use anno_api::transport;
use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Method, Request, StatusCode, header};
use serde_json::json;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceExt;

/// The route both arms call: a tenant's crawls, one to a page.
const ROUTE: &str = "/v1/crawl?limit=1";

/// Idle time after each arm, counted in its CPU: the audit storer's batches
/// of that arm's calls are written within it.
const SETTLE: Duration = Duration::from_millis(500);

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct GatewayArgs {
    /// Calls per arm and round.
    #[arg(long, default_value_t = 20_000)]
    pub calls: usize,
    /// Rounds of the two arms, in turn; the figures are each arm's median.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// One arm's round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Process CPU time a call, in µs (the settling included).
    pub cpu_us: f64,
    /// Calls a second of wall time (the settling excluded).
    pub per_second: f64,
    /// Times a thread of the process gave up its core, a call (the settling
    /// included): the hand-offs between threads a call costs.
    pub switches: f64,
}

/// What the command prints.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayReport {
    pub calls: usize,
    pub concurrency: usize,
    pub direct: Vec<Sample>,
    pub gateway: Vec<Sample>,
}

impl GatewayReport {
    fn median(samples: &[Sample], of: impl Fn(&Sample) -> f64) -> f64 {
        median(samples.iter().map(of).collect())
    }

    /// The median CPU time a call of core called directly, and through the gateway.
    pub fn cpu_us(&self) -> (f64, f64) {
        (Self::median(&self.direct, |s| s.cpu_us), Self::median(&self.gateway, |s| s.cpu_us))
    }

    /// What the gateway adds to a call, in µs of CPU time.
    pub fn added_cpu_us(&self) -> f64 {
        let (direct, gateway) = self.cpu_us();
        gateway - direct
    }
}

impl fmt::Display for GatewayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "gateway in process, GET {ROUTE}: {} rounds of {} calls an arm, {} in flight",
            self.direct.len(),
            self.calls,
            self.concurrency
        )?;
        for (name, samples) in [("core directly", &self.direct), ("through the gateway", &self.gateway)] {
            let rounds: Vec<String> = samples.iter().map(|s| format!("{:.1}", s.cpu_us)).collect();
            writeln!(
                f,
                "  {name:<20} {:6.1} µs CPU a call (rounds: {}), {:.0} calls/s, {:.1} context switches a call",
                Self::median(samples, |s| s.cpu_us),
                rounds.join(", "),
                Self::median(samples, |s| s.per_second),
                Self::median(samples, |s| s.switches)
            )?;
        }
        writeln!(f, "  the gateway's own work: {:.1} µs CPU a call (medians' difference)", self.added_cpu_us())
    }
}

pub async fn run(args: &GatewayArgs) -> anyhow::Result<GatewayReport> {
    anyhow::ensure!(
        args.calls > 0 && args.rounds > 0 && args.concurrency > 0,
        "--calls, --rounds and --concurrency must be at least 1"
    );
    let data_dir = std::env::temp_dir().join(format!("anno-bench-{}", anno_tenancy::new_id("gateway")));
    let result = measure(args, &data_dir).await;
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

async fn measure(args: &GatewayArgs, data_dir: &std::path::Path) -> anyhow::Result<GatewayReport> {
    let admin_key = format!("anno_admin_{}", anno_tenancy::new_id("bench"));
    let env = vec![
        ("ANNO_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("ANNO_ADMIN_KEY".to_owned(), admin_key.clone()),
        ("ANNO_LOG_FORMAT".to_owned(), "json".to_owned()),
    ];
    let config = Config::load_from(None, &Overrides::default(), env)?;
    let built = platform::build(&config, &ServiceName::ALL.into_iter().collect()).await?;
    let router = |service: ServiceName| {
        built.routers.iter().find(|(s, _)| *s == service).map(|(_, r)| r.clone()).context("a service was not built")
    };
    let (gateway, core, auth) = (router(ServiceName::Gateway)?, router(ServiceName::Core)?, router(ServiceName::Auth)?);
    let key = onboard(&gateway, &admin_key).await?;
    let token = AuthClient(ServiceClient::new("auth", transport::in_process(auth)))
        .verify(&key)
        .await
        .map_err(|e| anyhow::anyhow!("the tenant's key was not accepted: {e}"))?
        .token;

    let (direct, through) = (Arm { router: core, credential: token }, Arm { router: gateway, credential: key });
    // Warm-up: caches filled, connections open, the storer's thread started.
    direct.round(args.calls / 4 + 1, args.concurrency).await?;
    through.round(args.calls / 4 + 1, args.concurrency).await?;
    let mut report =
        GatewayReport { calls: args.calls, concurrency: args.concurrency, direct: Vec::new(), gateway: Vec::new() };
    for _ in 0..args.rounds {
        report.direct.push(direct.round(args.calls, args.concurrency).await?);
        report.gateway.push(through.round(args.calls, args.concurrency).await?);
    }
    if let Some(core) = &built.core {
        core.shutdown().await;
    }
    drop(built.audit);
    Ok(report)
}

/// Creates an enterprise tenant with limits that run on every call but never
/// refuse; its API key.
async fn onboard(gateway: &Router, admin_key: &str) -> anyhow::Result<String> {
    let created = call(
        gateway,
        Method::POST,
        "/v1/admin/tenants",
        admin_key,
        Some(json!({"name": "Bench", "domain": "bench.example.com", "contactEmail": "ops@bench.example.com", "plan": "enterprise"})),
    )
    .await?;
    let tenant = created["tenant"]["id"].as_str().context("no tenant id")?.to_owned();
    let key = created["apiKey"]["key"].as_str().context("no API key")?.to_owned();
    let limits = json!({"limits": {
        "tenantRatePerSecond": 1_000_000, "tenantBurst": 1_000_000, "keyRatePerSecond": 1_000_000,
        "keyBurst": 1_000_000, "concurrentRequests": 10_000, "unitsPerMinute": 1_000_000_000u64
    }});
    call(gateway, Method::PATCH, &format!("/v1/admin/tenants/{tenant}"), admin_key, Some(limits)).await?;
    Ok(key)
}

async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    credential: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {credential}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))?;
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    anyhow::ensure!(status.is_success(), "{uri}: {status}: {}", String::from_utf8_lossy(&bytes));
    Ok(serde_json::from_slice(&bytes)?)
}

/// A router and the credential its calls carry.
struct Arm {
    router: Router,
    credential: String,
}

impl Arm {
    async fn round(&self, calls: usize, concurrency: usize) -> anyhow::Result<Sample> {
        let authorization = format!("Bearer {}", self.credential);
        let (clock, switches_before) = (Stopwatch::start(), context_switches());
        let workers = (0..concurrency).map(|n| {
            let (router, authorization) = (self.router.clone(), authorization.clone());
            let share = calls / concurrency + usize::from(n < calls % concurrency);
            tokio::spawn(async move {
                for _ in 0..share {
                    let mut request =
                        Request::get(ROUTE).header(header::AUTHORIZATION, &authorization).body(Body::empty())?;
                    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
                    let response = router.clone().oneshot(request).await?;
                    let status = response.status();
                    axum::body::to_bytes(response.into_body(), 1 << 20).await?;
                    anyhow::ensure!(status == StatusCode::OK, "a call answered {status}");
                }
                anyhow::Ok(())
            })
        });
        for worker in futures::future::join_all(workers).await {
            worker??;
        }
        let elapsed = clock.elapsed();
        tokio::time::sleep(SETTLE).await;
        let cpu = clock.cpu().context("this platform does not report the process's CPU time")?;
        let switches = context_switches().saturating_sub(switches_before);
        Ok(Sample {
            cpu_us: cpu.as_secs_f64() * 1e6 / calls as f64,
            per_second: calls as f64 / elapsed.as_secs_f64().max(1e-9),
            switches: switches as f64 / calls as f64,
        })
    }
}

/// Context switches of all the process's threads so far, voluntary or not
/// (Linux; 0 elsewhere). Threads that ended in between are not counted.
fn context_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split_once(':')?.1.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}
