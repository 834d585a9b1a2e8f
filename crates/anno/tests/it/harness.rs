//! Starts the platform for a test, in either shape, on port 0, with its own data:
//! a fresh data directory (embedded) or a fresh Postgres database and Redis
//! namespace (distributed).

use anno::{Config, Overrides, ServiceName};
use anno_client::Client;
use anno_client::anno_api::tenant::{CreateTenantRequest, CreateTenantResponse};
use anno_store::testing::TestDatabase;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdefghij";
const PEPPER: &str = "test-pepper-0123456789abcdefghijklmnopqrstuvwxyz";
pub const SERVICE_SECRET: &str = "test-service-secret-0123456789abcdefghijklmnop";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Embedded,
    Distributed,
}

/// One running process (or, distributed, one service) of the platform.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(10), &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("the platform stopped with an error: {e:#}"),
            Ok(Err(e)) => panic!("the platform task failed: {e}"),
            Err(_) => panic!("the platform did not drain and stop within 10 s"),
        }
    }
}

pub struct Platform {
    pub shape: Shape,
    /// Base URLs of the gateway replicas; the first is the default.
    pub gateways: Vec<String>,
    /// Base URLs of the services behind the gateway (distributed only).
    pub services: Vec<(ServiceName, String)>,
    config: Config,
    running: Vec<Running>,
    data_dir: PathBuf,
    database: Option<TestDatabase>,
}

pub fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// Whether Postgres and Redis are reachable (a failure in CI, a skip elsewhere).
async fn backing_services_available() -> bool {
    anno_store::testing::postgres_available().await && anno_bus::testing::redis_available().await
}

fn base_env(data_dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("ANNO_ADMIN_KEY".into(), ADMIN_KEY.into()),
        ("ANNO_DATA_DIR".into(), data_dir.display().to_string()),
        ("ANNO_AUTH__LAST_USED_FLUSH_SECONDS".into(), "1".into()),
        ("ANNO_TENANT__SWEEP_INTERVAL_SECONDS".into(), "1".into()),
        ("ANNO_DATABASE_MAX_CONNECTIONS".into(), "4".into()),
        ("ANNO_LOG_FORMAT".into(), "text".into()),
        // The fixture site, and bounds short enough for its slow pages.
        // The fixture site and the audit webhook receiver.
        (
            "ANNO_FETCH__ALLOWED_PRIVATE_HOSTS".into(),
            format!("{},{}", crate::site::site().allowed(), crate::audit::receiver().allowed()),
        ),
        ("ANNO_AUDIT__FILE_SINK_DIR".into(), data_dir.join("audit-export").display().to_string()),
        ("ANNO_AUDIT__EXPORT_INTERVAL_MS".into(), "100".into()),
        // Calls come from loopback: trusted as a proxy, so X-Forwarded-For counts.
        ("ANNO_GATEWAY__TRUSTED_PROXIES".into(), "127.0.0.1".into()),
        ("ANNO_FETCH__TIMEOUT_SECONDS".into(), "2".into()),
        ("ANNO_FETCH__RETRIES".into(), "0".into()),
    ]
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a test port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    (listener, url)
}

fn spawn(config: Config, selected: &[ServiceName], listeners: Vec<(ServiceName, TcpListener)>) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let selected: BTreeSet<ServiceName> = selected.iter().copied().collect();
    let task = tokio::spawn(anno::run(config, selected, listeners, async move {
        let _ = stopped.await;
    }));
    Running { stop: Some(stop), task }
}

/// Polls `/ready` until it answers 200.
pub async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("{url}/ready")).timeout(Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} was not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Platform {
    /// One process, SQLite, in-process bus.
    pub async fn embedded() -> Platform {
        let data_dir = std::env::temp_dir().join(format!("anno-it-{}", random_hex(8)));
        let config = Config::load_from(None, &Overrides::default(), base_env(&data_dir)).expect("test configuration");
        let mut platform = Platform {
            shape: Shape::Embedded,
            gateways: Vec::new(),
            services: Vec::new(),
            config,
            running: Vec::new(),
            data_dir,
            database: None,
        };
        platform.start_embedded().await;
        platform
    }

    async fn start_embedded(&mut self) {
        let (listener, url) = bind().await;
        self.running.push(spawn(self.config.clone(), &ServiceName::ALL, vec![(ServiceName::Gateway, listener)]));
        wait_ready(&url).await;
        self.gateways = vec![url];
    }

    /// Stops the embedded process and starts it again on the same data.
    pub async fn restart(&mut self) {
        assert_eq!(self.shape, Shape::Embedded);
        for running in self.running.drain(..) {
            running.stop().await;
        }
        self.start_embedded().await;
    }

    /// Five services, each on its own port, over Postgres and Redis, with
    /// `gateways` gateway replicas. `None` when the backing services are missing
    /// outside CI.
    pub async fn distributed(gateways: usize) -> Option<Platform> {
        if !backing_services_available().await {
            return None;
        }
        let database = TestDatabase::create().await.expect("create a test database");
        let data_dir = std::env::temp_dir().join(format!("anno-it-{}", random_hex(8)));
        let mut listeners = Vec::new();
        let mut env = base_env(&data_dir);
        for service in [ServiceName::Auth, ServiceName::Tenant, ServiceName::Config, ServiceName::Core] {
            let (listener, url) = bind().await;
            env.push((format!("ANNO_SERVICES__{}__URL", service.as_str().to_uppercase()), url.clone()));
            listeners.push((service, listener, url));
        }
        env.push(("ANNO_DATABASE_URL".into(), database.url()));
        env.push(("ANNO_REDIS_URL".into(), anno_bus::testing::redis_url()));
        env.push(("ANNO_BUS_NAMESPACE".into(), format!("anno-it-{}", random_hex(6))));
        env.push(("ANNO_KEY_PEPPER".into(), PEPPER.into()));
        env.push(("ANNO_SERVICE_SECRET".into(), SERVICE_SECRET.into()));
        let config = Config::load_from(None, &Overrides::default(), env).expect("test configuration");
        let mut running = Vec::new();
        let mut services = Vec::new();
        for (service, listener, url) in listeners {
            running.push(spawn(config.clone(), &[service], vec![(service, listener)]));
            services.push((service, url));
        }
        for (_, url) in &services {
            wait_ready(url).await;
        }
        let mut gateway_urls = Vec::new();
        for _ in 0..gateways {
            let (listener, url) = bind().await;
            running.push(spawn(config.clone(), &[ServiceName::Gateway], vec![(ServiceName::Gateway, listener)]));
            wait_ready(&url).await;
            gateway_urls.push(url);
        }
        Some(Platform {
            shape: Shape::Distributed,
            gateways: gateway_urls,
            services,
            config,
            running,
            data_dir,
            database: Some(database),
        })
    }

    pub fn url(&self) -> &str {
        &self.gateways[0]
    }

    /// Gateway replica `index`.
    pub fn gateway(&self, index: usize) -> &str {
        &self.gateways[index]
    }

    /// The configuration the platform runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn service_url(&self, service: ServiceName) -> Option<&str> {
        self.services.iter().find(|(s, _)| *s == service).map(|(_, u)| u.as_str())
    }

    /// An SDK client with no credential.
    pub fn anonymous(&self) -> Client {
        Client::new(self.url())
    }

    pub fn client(&self, credential: &str) -> Client {
        Client::new(self.url()).with_credential(credential)
    }

    pub fn admin(&self) -> Client {
        self.client(ADMIN_KEY)
    }

    /// Onboards a fresh tenant on the professional plan (limits no ordinary
    /// test runs into); returns it with its first key.
    pub async fn onboard(&self) -> CreateTenantResponse {
        self.onboard_on(Some(anno_tenancy::Plan::Professional)).await
    }

    /// A tenant on `plan` (`None`: the default, a trial).
    pub async fn onboard_on(&self, plan: Option<anno_tenancy::Plan>) -> CreateTenantResponse {
        let suffix = random_hex(6);
        let request = CreateTenantRequest {
            name: format!("Tenant {suffix}"),
            domain: format!("t{suffix}.example.com"),
            contact_email: format!("ops@t{suffix}.example.com"),
            plan,
        };
        self.admin().create_tenant(&request).await.expect("onboarding a tenant")
    }

    /// The tenant service's own database, for checks no API exposes.
    pub async fn tenant_db(&self) -> anno_store::Db {
        let target = anno::platform::database_target(&self.config).expect("database target");
        target.open("tenant", 1).await.expect("open the tenant service's database")
    }

    /// Stops everything and removes the test's data.
    /// `GET path` through the gateway as `credential`, read as JSON.
    pub async fn get_json(&self, credential: &str, path: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.url()))
            .bearer_auth(credential)
            .send()
            .await
            .expect("the gateway answers");
        response.json().await.expect("a JSON answer")
    }

    /// Kills gateway replica `index` (distributed) without letting it drain,
    /// as a crash would.
    pub async fn crash_gateway(&mut self, index: usize) {
        let first_gateway = self.running.len() - self.gateways.len();
        let running = self.running.remove(first_gateway + index);
        running.task.abort();
        let _ = running.task.await;
        self.gateways.remove(index);
    }

    pub async fn finish(mut self) {
        for running in self.running.drain(..) {
            running.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(db) = self.database.take() {
            db.drop().await;
        }
    }
}
