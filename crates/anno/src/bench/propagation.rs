//! How long a configuration change takes to reach the other services: auth,
//! tenant and config run here as in either shape, and `--observers` replicas
//! each keep tenants' configuration the way the gateway and core do, on a bus
//! connection of their own. Each change is a `PUT /v1/admin/config` with the
//! admin's internal token; its time runs from sending it until a replica has
//! the change (its copy dropped, the change's number known).

use crate::bench::ScratchDatabase;
use crate::platform;
use crate::{Config, Overrides, ServiceName};
use anno_api::auth::AuthClient;
use anno_api::client::ServiceClient;
use anno_api::config::{ConfigCache, ConfigClient};
use anno_api::transport;
use anno_bus::Bus;
use anyhow::Context;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::json;
use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};
use tower::ServiceExt;

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct PropagationArgs {
    /// Changes to make.
    #[arg(long, default_value_t = 300)]
    pub changes: usize,
    /// Replicas that keep the configuration and must see each change.
    #[arg(long, default_value_t = 2)]
    pub observers: usize,
    /// Pause between changes, in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub interval_ms: u64,
    /// The distributed shape: a Postgres server (a database is created for the
    /// run and dropped after) ...
    #[arg(long, value_name = "URL", requires = "redis_url")]
    pub postgres_url: Option<String>,
    /// ... and Redis. Without them: the embedded shape (SQLite, in-process bus).
    #[arg(long, value_name = "URL", requires = "postgres_url")]
    pub redis_url: Option<String>,
}

/// What the command prints.
#[derive(Debug, Clone, PartialEq)]
pub struct PropagationReport {
    pub shape: &'static str,
    pub changes: usize,
    pub observers: usize,
    /// Sending the change until its answer: the write itself.
    pub accepted_ms: Percentiles,
    /// Sending the change until each replica had it (one sample per replica and change).
    pub observed_ms: Percentiles,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort();
        let at = |p: f64| {
            let rank = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len().max(1));
            samples.get(rank - 1).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Percentiles { p50: at(0.5), p99: at(0.99), max: at(1.0) }
    }
}

impl fmt::Display for PropagationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "config propagation, {} shape: {} changes, {} replicas observing",
            self.shape, self.changes, self.observers
        )?;
        for (label, p) in [("accepted", self.accepted_ms), ("observed", self.observed_ms)] {
            writeln!(f, "  {label:<9} p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms", p.p50, p.p99, p.max)?;
        }
        Ok(())
    }
}

pub async fn run(args: &PropagationArgs) -> anyhow::Result<PropagationReport> {
    let data_dir = std::env::temp_dir().join(format!("anno-bench-{}", anno_tenancy::new_id("run")));
    let admin_key = format!("anno_admin_{}", anno_tenancy::new_id("bench"));
    let namespace = format!("anno-bench-{}", anno_tenancy::new_id("ns"));
    let mut env = vec![
        ("ANNO_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("ANNO_ADMIN_KEY".to_owned(), admin_key.clone()),
        ("ANNO_BUS_NAMESPACE".to_owned(), namespace.clone()),
        ("ANNO_LOG_FORMAT".to_owned(), "json".to_owned()),
    ];
    let database = match &args.postgres_url {
        Some(server) => Some(ScratchDatabase::create(server).await?),
        None => None,
    };
    if let (Some(database), Some(redis)) = (&database, &args.redis_url) {
        env.push(("ANNO_DATABASE_URL".to_owned(), database.url()?));
        env.push(("ANNO_REDIS_URL".to_owned(), redis.clone()));
        env.push(("ANNO_KEY_PEPPER".to_owned(), anno_tenancy::new_id("pepper")));
        env.push(("ANNO_SERVICE_SECRET".to_owned(), anno_tenancy::new_id("service-secret")));
    }
    let result = measure(args, &env, &admin_key, &namespace).await;
    if let Some(database) = database {
        database.drop().await;
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

async fn measure(
    args: &PropagationArgs,
    env: &[(String, String)],
    admin_key: &str,
    namespace: &str,
) -> anyhow::Result<PropagationReport> {
    let config = Config::load_from(None, &Overrides::default(), env.to_vec())?;
    let selected: BTreeSet<ServiceName> = [ServiceName::Auth, ServiceName::Tenant, ServiceName::Config].into();
    let built = platform::build(&config, &selected).await?;
    let router = |service: ServiceName| {
        built.routers.iter().find(|(s, _)| *s == service).map(|(_, r)| r.clone()).context("a service was not built")
    };
    let (auth, config_router) = (router(ServiceName::Auth)?, router(ServiceName::Config)?);
    let token = AuthClient(ServiceClient::new("auth", transport::in_process(auth)))
        .verify(admin_key)
        .await
        .map_err(|e| anyhow::anyhow!("the admin key was not accepted: {e}"))?
        .token;

    let distributed = args.redis_url.is_some();
    let mut observers = Vec::new();
    for _ in 0..args.observers.max(1) {
        // Distributed, each replica has a Redis connection of its own, as a
        // separate process would; embedded, they share the process's bus.
        let bus = match &args.redis_url {
            Some(url) => Bus::redis(url, namespace).await?,
            None => built.bus.clone(),
        };
        let client = ConfigClient(ServiceClient::new("config", transport::in_process(config_router.clone())));
        observers.push((ConfigCache::new(client, &bus, Duration::from_millis(config.config.check_interval_ms)), bus));
    }
    // Every replica knows where the sequence stands before the first change.
    tokio::time::sleep(Duration::from_millis(config.config.check_interval_ms * 2 + 100)).await;

    let (mut accepted, mut observed) = (Vec::new(), Vec::new());
    for n in 0..args.changes {
        let mut watches: Vec<_> = observers.iter().map(|(cache, _)| cache.watch_seen()).collect();
        let body = json!({ "extraction": { "maxNodes": 1 + n % 1000 } });
        let request = Request::builder()
            .method(Method::PUT)
            .uri("/v1/admin/config")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))?;
        let sent = Instant::now();
        let response = config_router.clone().oneshot(request).await?;
        accepted.push(sent.elapsed());
        anyhow::ensure!(response.status() == StatusCode::OK, "a change was refused: {}", response.status());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
        let seq = serde_json::from_slice::<serde_json::Value>(&bytes)?["seq"].as_i64().context("no seq")?;
        let arrivals = futures::future::join_all(watches.iter_mut().map(|watch| async move {
            tokio::time::timeout(Duration::from_secs(10), watch.wait_for(|seen| *seen >= seq)).await.ok()?.ok()?;
            Some(sent.elapsed())
        }))
        .await;
        for arrival in arrivals {
            observed.push(arrival.context("a replica did not see a change within 10 s")?);
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    drop(observers);
    Ok(PropagationReport {
        shape: if distributed { "distributed" } else { "embedded" },
        changes: args.changes,
        observers: args.observers.max(1),
        accepted_ms: Percentiles::of(accepted),
        observed_ms: Percentiles::of(observed),
    })
}
