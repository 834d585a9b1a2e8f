//! Composes the services: all in one process (embedded) or a chosen few, reaching
//! the others over HTTP (distributed). The HTTP contract is the same either way.

use crate::config::Config;
use anno_api::auth::{AuthClient, ServiceIdentity};
use anno_api::client::ServiceClient;
use anno_api::config::ConfigClient;
use anno_api::tenant::TenantClient;
use anno_api::token::{KeySource, TokenVerifier};
use anno_api::transport::{self, Transport};
use anno_bus::Bus;
use anno_store::{Backend, DatabaseTarget, Db};
use anno_tenancy::Secret;
use axum::Router;
use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum ServiceName {
    Gateway,
    Auth,
    Tenant,
    Config,
    Core,
}

impl ServiceName {
    pub const ALL: [ServiceName; 5] =
        [ServiceName::Gateway, ServiceName::Auth, ServiceName::Tenant, ServiceName::Config, ServiceName::Core];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => "gateway",
            ServiceName::Auth => "auth",
            ServiceName::Tenant => "tenant",
            ServiceName::Config => "config",
            ServiceName::Core => "core",
        }
    }

    /// The database schema (or SQLite file) the service owns, if it has one.
    pub fn schema(self) -> Option<&'static str> {
        match self {
            ServiceName::Gateway => None,
            other => Some(other.as_str()),
        }
    }
}

/// The routers built for this process, and how to reach those built elsewhere.
pub struct Built {
    pub routers: Vec<(ServiceName, Router)>,
    /// The bus the services share (in process when embedded).
    pub bus: Bus,
    /// Core, when built here: its crawl jobs are handed back on stop.
    pub core: Option<anno_core::State>,
    /// The audit trail's consumer and exporter, beside the tenant service;
    /// stopped when dropped.
    pub audit: Option<anno_audit::Background>,
}

/// Opens the database of one service, migrating it when configured to.
async fn open(config: &Config, target: &DatabaseTarget, service: ServiceName) -> anyhow::Result<Db> {
    let schema = service.schema().unwrap_or("gateway");
    let db = target.open(schema, config.database_max_connections).await?;
    if config.migrate_on_start {
        db.migrate(migrations(service)).await?;
    }
    Ok(db)
}

pub fn migrations(service: ServiceName) -> &'static [anno_store::Migration] {
    match service {
        ServiceName::Auth => anno_auth::MIGRATIONS,
        ServiceName::Tenant => anno_tenant::MIGRATIONS,
        ServiceName::Core => anno_core::MIGRATIONS,
        ServiceName::Config => anno_config::MIGRATIONS,
        ServiceName::Gateway => &[],
    }
}

pub fn database_target(config: &Config) -> anyhow::Result<DatabaseTarget> {
    DatabaseTarget::new(config.database_url.as_ref().map(Secret::expose), &config.data_dir)
}

/// `anno migrate`: every service's migrations.
pub async fn migrate_all(config: &Config) -> anyhow::Result<()> {
    let target = database_target(config)?;
    for service in ServiceName::ALL {
        if let Some(schema) = service.schema() {
            let db = target.open(schema, 1).await?;
            let applied = db.migrate(migrations(service)).await?;
            tracing::info!(service = service.as_str(), applied, "migrations up to date");
        }
    }
    let applied = target.open(anno_audit::SCHEMA, 1).await?.migrate(anno_audit::MIGRATIONS).await?;
    tracing::info!(service = "audit", applied, "migrations up to date");
    Ok(())
}

/// The audit trail's store, migrated (for `anno audit verify`).
pub async fn audit_store(config: &Config) -> anyhow::Result<anno_audit::AuditStore> {
    let db = database_target(config)?.open(anno_audit::SCHEMA, 1).await?;
    db.migrate(anno_audit::MIGRATIONS).await?;
    Ok(anno_audit::AuditStore::new(db))
}

/// Starts the audit trail over its own schema (or SQLite file): its consumer,
/// exporter and routes. It lives beside the tenant service.
async fn start_audit(
    config: &Config,
    target: &DatabaseTarget,
    bus: &Bus,
    verifier: &TokenVerifier,
) -> anyhow::Result<anno_audit::Audit> {
    let db = target.open(anno_audit::SCHEMA, config.database_max_connections).await?;
    if config.migrate_on_start {
        db.migrate(anno_audit::MIGRATIONS).await?;
    }
    let settings = anno_audit::Settings {
        file_sink_dir: config.audit.file_sink_dir.clone(),
        allowed_private_hosts: config.fetch.allowed_private_hosts.clone(),
        export_interval: Duration::from_millis(config.audit.export_interval_ms.max(10)),
        webhook_timeout: Duration::from_secs(config.audit.webhook_timeout_seconds.max(1)),
    };
    anno_audit::start(db, bus, verifier.clone(), settings)
}

/// The fetcher core uses: the system resolver behind the SSRF guard, and
/// per-host politeness shared through Redis when there is one.
fn fetcher(config: &Config, bus: &Bus) -> anyhow::Result<anno_fetch::Fetcher> {
    let f = &config.fetch;
    let fetch = anno_fetch::FetchConfig {
        user_agent: f.user_agent.clone(),
        max_body_bytes: f.max_body_bytes,
        connect_timeout: Duration::from_secs(f.connect_timeout_seconds.max(1)),
        total_timeout: Duration::from_secs(f.timeout_seconds.max(1)),
        max_redirects: f.max_redirects,
        allowed_private_hosts: f.allowed_private_hosts.clone(),
        host_interval: Duration::from_millis(f.host_interval_ms),
        max_host_wait: Duration::from_secs(f.max_host_wait_seconds),
        retries: f.retries,
        breaker_failures: f.breaker_failures.max(1),
        breaker_open: Duration::from_secs(f.breaker_open_seconds),
        robots_ttl: Duration::from_secs(f.robots_ttl_seconds),
        ..anno_fetch::FetchConfig::default()
    };
    let hosts = match bus.redis_connection() {
        Some((conn, namespace)) => anno_fetch::HostCoordinator::Redis { conn, namespace: namespace.to_owned() },
        None => anno_fetch::HostCoordinator::Local,
    };
    anno_fetch::Fetcher::new(fetch, std::sync::Arc::new(anno_fetch::SystemResolver), hosts).map_err(anyhow::Error::msg)
}

fn config_check_interval(config: &Config) -> Duration {
    Duration::from_millis(config.config.check_interval_ms.max(10))
}

fn core_settings(config: &Config) -> anno_core::Settings {
    let c = &config.core;
    anno_core::Settings {
        cache: anno_core::CacheSettings {
            memory_bytes: c.cache_memory_mb.saturating_mul(1 << 20),
            ttl: Duration::from_secs(c.cache_ttl_seconds.max(1)),
            ..anno_core::CacheSettings::default()
        },
        default_max_age: Duration::from_secs(c.default_max_age_seconds),
        shared_public_cache: c.shared_public_cache,
        batch_parallelism: c.batch_parallelism,
        max_html_bytes: config.fetch.max_body_bytes,
        respect_robots: config.fetch.respect_robots,
        crawl: anno_core::crawl::CrawlSettings::default(),
    }
}

/// The digest pepper: configured, or with SQLite generated once into the data dir.
fn pepper(config: &Config, target: &DatabaseTarget) -> anyhow::Result<Secret> {
    secret_or_generated(
        config,
        target,
        config.key_pepper.as_ref(),
        "ANNO_KEY_PEPPER",
        "key-pepper",
        "every auth replica",
    )
}

/// The service secret: configured, or with SQLite generated once into the data dir.
fn service_secret(config: &Config, target: &DatabaseTarget) -> anyhow::Result<Secret> {
    let configured = config.service_secret.as_ref();
    secret_or_generated(config, target, configured, "ANNO_SERVICE_SECRET", "service-secret", "auth and tenant")
}

/// A secret as configured; with SQLite, when unset, generated once into
/// `<data_dir>/secrets/<file>`. With Postgres it must be configured, the same
/// for `shared_by`.
fn secret_or_generated(
    config: &Config,
    target: &DatabaseTarget,
    configured: Option<&Secret>,
    variable: &str,
    file: &str,
    shared_by: &str,
) -> anyhow::Result<Secret> {
    if let Some(secret) = configured {
        return Ok(secret.clone());
    }
    anyhow::ensure!(
        target.backend() == Backend::Sqlite,
        "{variable} must be set (the same for {shared_by}) when the database is Postgres"
    );
    stored_secret(&config.data_dir.join("secrets").join(file))
}

fn stored_secret(path: &Path) -> anyhow::Result<Secret> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(Secret::new(existing.trim()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    let value = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(value.as_bytes())?;
    Ok(Secret::new(value))
}

/// Builds the routers of the selected services. The others are reached at their
/// configured URLs.
pub async fn build(config: &Config, selected: &BTreeSet<ServiceName>) -> anyhow::Result<Built> {
    let bus = match &config.redis_url {
        Some(url) => Bus::redis(url.expose(), &config.bus_namespace).await?,
        None => Bus::in_process(),
    };
    let target = database_target(config)?;
    let remote = |name: &str| -> anyhow::Result<Transport> {
        let endpoint = config.services.iter().into_iter().find(|(n, _)| *n == name).map(|(_, e)| e.url.clone());
        let url = endpoint.ok_or_else(|| anyhow::anyhow!("no URL configured for {name}"))?;
        transport::http(&url).map_err(anyhow::Error::msg)
    };
    let mut routers = Vec::new();

    let auth_transport = if selected.contains(&ServiceName::Auth) {
        let db = open(config, &target, ServiceName::Auth).await?;
        let settings = anno_auth::Settings {
            pepper: pepper(config, &target)?,
            admin_key: config.admin_key.clone(),
            internal_token_ttl: Duration::from_secs(config.auth.internal_token_ttl_seconds),
            access_token_ttl: Duration::from_secs(config.auth.access_token_ttl_seconds),
            last_used_flush: Duration::from_secs(config.auth.last_used_flush_seconds.max(1)),
            service_secret: Some(service_secret(config, &target)?),
        };
        let router = anno_auth::router(anno_auth::AuthState::new(db, bus.clone(), settings).await?);
        routers.push((ServiceName::Auth, router.clone()));
        transport::in_process(router)
    } else {
        remote("auth")?
    };
    let verifier = TokenVerifier::new(KeySource::Remote(ServiceClient::new("auth", auth_transport.clone())));

    // One set of counters per process: the units core charges are the ones the
    // gateway checks (in process when embedded, in Redis when distributed).
    let l = &config.limits;
    let fallbacks = anno_limits::Fallbacks {
        rate: l.rate_fallback,
        quota: l.quota_fallback,
        concurrency: l.concurrency_fallback,
        replicas: l.replicas.max(1),
    };
    let limits = anno_limits::Limits::new(&bus, fallbacks);

    let mut audit = None;
    let tenant_transport = if selected.contains(&ServiceName::Tenant) {
        let db = open(config, &target, ServiceName::Tenant).await?;
        let settings = anno_tenant::Settings {
            trial_days: config.tenant.trial_days,
            sweep_interval: Duration::from_secs(config.tenant.sweep_interval_seconds.max(1)),
        };
        let auth = AuthClient(ServiceClient::new("auth", auth_transport.clone()));
        let state =
            anno_tenant::TenantState::new(db, bus.clone(), auth, verifier.clone(), Some(limits.clone()), settings)
                .await?;
        let started = start_audit(config, &target, &bus, &verifier).await?;
        let router = anno_tenant::router(state).merge(started.router.clone());
        audit = Some(started);
        routers.push((ServiceName::Tenant, router.clone()));
        transport::in_process(router)
    } else {
        remote("tenant")?
    };

    let config_transport = if selected.contains(&ServiceName::Config) {
        let db = open(config, &target, ServiceName::Config).await?;
        let tenants = TenantClient(ServiceClient::new("tenant", tenant_transport.clone()));
        let router = anno_config::router(anno_config::State::new(db, bus.clone(), verifier.clone(), tenants));
        routers.push((ServiceName::Config, router.clone()));
        transport::in_process(router)
    } else {
        remote("config")?
    };
    // The exports follow each tenant's `audit.export`, read as the tenant service itself.
    let audit = match audit {
        Some(mut started) => {
            let auth = AuthClient(ServiceClient::new("auth", auth_transport.clone()));
            let identity = ServiceIdentity::new(auth, anno_tenant::SERVICE, service_secret(config, &target)?);
            let client = ConfigClient(ServiceClient::new("config", config_transport.clone()));
            started.follow_config(&bus, anno_audit::ConfigSource { client, identity });
            Some(started.background)
        }
        None => None,
    };

    let mut core = None;
    let core_transport = if selected.contains(&ServiceName::Core) {
        let db = open(config, &target, ServiceName::Core).await?;
        let deps = anno_core::Deps {
            db,
            bus: bus.clone(),
            verifier: verifier.clone(),
            tenants: TenantClient(ServiceClient::new("tenant", tenant_transport.clone())),
            fetcher: fetcher(config, &bus)?,
            limits: limits.clone(),
            config: ConfigClient(ServiceClient::new("config", config_transport.clone())),
            config_check_interval: config_check_interval(config),
            settings: core_settings(config),
        };
        let state = anno_core::State::new(deps);
        state.start().await?;
        core = Some(state.clone());
        let router = anno_core::router(state);
        routers.push((ServiceName::Core, router.clone()));
        transport::in_process(router)
    } else if selected.contains(&ServiceName::Gateway) {
        // Core runs elsewhere, maybe many times over: the gateway balances over its instances.
        use crate::config::CoreDiscovery;
        use anno_gateway::upstream::{Discovery, Pool, PoolSettings, SliceSource};
        let g = &config.gateway;
        let settings = PoolSettings {
            service: "core".to_owned(),
            max_fails: g.max_fails,
            fail_timeout: Duration::from_secs(g.fail_timeout_seconds),
            health_interval: Duration::from_secs(g.health_interval_seconds),
            tenant_affinity: g.tenant_affinity,
            affinity_load_factor: g.affinity_load_factor,
            ..PoolSettings::default()
        };
        let discovery = match g.core_discovery {
            CoreDiscovery::Static if g.core_urls.is_empty() => {
                Discovery::Static(vec![config.services.core.url.clone()])
            }
            CoreDiscovery::Static => Discovery::Static(g.core_urls.clone()),
            CoreDiscovery::Kubernetes => Discovery::Kubernetes(SliceSource {
                namespace: g.core_namespace.clone(),
                service: g.core_service.clone(),
                port_name: g.core_port_name.clone(),
            }),
        };
        Pool::start(settings, discovery).await?.transport()
    } else {
        remote("core")?
    };

    if selected.contains(&ServiceName::Gateway) {
        let upstreams = anno_gateway::Upstreams {
            auth: auth_transport,
            tenant: tenant_transport,
            config: config_transport,
            core: core_transport,
        };
        let settings = anno_gateway::Settings {
            verification_ttl: Duration::from_secs(config.gateway.verification_ttl_seconds),
            tenant_ttl: Duration::from_secs(config.gateway.tenant_ttl_seconds),
            request_timeout: Duration::from_secs(config.gateway.request_timeout_seconds),
            max_body_bytes: config.gateway.max_body_bytes,
            trusted_proxies: anno_audit::TrustedProxies::parse(&config.gateway.trusted_proxies)
                .map_err(anyhow::Error::msg)?,
            config_check_interval: config_check_interval(config),
        };
        let router = anno_gateway::router(anno_gateway::GatewayState::new(upstreams, bus.clone(), limits, settings));
        routers.insert(0, (ServiceName::Gateway, router));
    }
    Ok(Built { routers, bus, core, audit })
}

/// Where each service of this process listens: embedded, only the gateway
/// (on `listen`); otherwise each selected service on its own address.
pub fn listen_addresses(
    config: &Config,
    selected: &BTreeSet<ServiceName>,
    embedded: bool,
) -> Vec<(ServiceName, std::net::SocketAddr)> {
    selected
        .iter()
        .filter(|s| !embedded || **s == ServiceName::Gateway)
        .map(|s| {
            let addr = match s {
                ServiceName::Gateway => config.listen,
                ServiceName::Auth => config.services.auth.listen,
                ServiceName::Tenant => config.services.tenant.listen,
                ServiceName::Config => config.services.config.listen,
                ServiceName::Core => config.services.core.listen,
            };
            (*s, addr)
        })
        .collect()
}

/// Builds the selected services and serves them on the given listeners until
/// `shutdown` resolves; in-flight requests are drained before it returns.
pub async fn run(
    config: Config,
    selected: BTreeSet<ServiceName>,
    listeners: Vec<(ServiceName, TcpListener)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let built = build(&config, &selected).await?;
    let token = CancellationToken::new();
    let mut servers = tokio::task::JoinSet::new();
    for (service, listener) in listeners {
        let router = built
            .routers
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, r)| r.clone())
            .ok_or_else(|| anyhow::anyhow!("{} is not built in this process", service.as_str()))?;
        let addr = listener.local_addr()?;
        tracing::info!(service = service.as_str(), %addr, "listening");
        let stop = token.clone();
        servers.spawn(
            async move { anno_api::server::serve(listener, router, async move { stop.cancelled().await }).await },
        );
    }
    let stop = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    let mut outcome = Ok(());
    while let Some(result) = servers.join_next().await {
        // One server failing brings the others down with it.
        token.cancel();
        if let Err(e) = result.map_err(anyhow::Error::from).and_then(|r| r.map_err(anyhow::Error::from)) {
            outcome = outcome.and(Err(e));
        }
    }
    if let Some(core) = &built.core {
        core.shutdown().await;
    }
    outcome?;
    tracing::info!("stopped");
    Ok(())
}
