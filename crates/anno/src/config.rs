//! Layered configuration: compiled-in defaults → file → `ANNO_*` environment →
//! `ANNO_*_FILE` secrets → flags. Validated after loading.

use anno_telemetry::LogFormat;
use anno_tenancy::Secret;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULTS: &str = include_str!("../config.default.toml");

const SECRETS: [&str; 5] = ["admin_key", "key_pepper", "service_secret", "database_url", "redis_url"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub database_max_connections: u32,
    pub migrate_on_start: bool,
    pub redis_url: Option<Secret>,
    pub bus_namespace: String,
    pub admin_key: Option<Secret>,
    pub key_pepper: Option<Secret>,
    pub service_secret: Option<Secret>,
    pub log_format: LogFormat,
    pub services: Services,
    pub gateway: GatewaySection,
    pub auth: AuthSection,
    pub tenant: TenantSection,
    pub fetch: FetchSection,
    pub core: CoreSection,
    pub limits: LimitsSection,
    pub audit: AuditSection,
    pub config: ConfigSection,
    /// `ANNO_*` variables that name no setting, to warn about once logging is up.
    #[serde(skip)]
    pub unknown_variables: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    pub auth: Endpoint,
    pub tenant: Endpoint,
    pub config: Endpoint,
    pub core: Endpoint,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub listen: SocketAddr,
    pub url: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    pub verification_ttl_seconds: u64,
    pub tenant_ttl_seconds: u64,
    pub request_timeout_seconds: u64,
    pub max_body_bytes: usize,
    /// Core instances for the gateway to balance over; empty: `services.core.url`.
    #[serde(deserialize_with = "list_or_commas")]
    pub core_urls: Vec<String>,
    pub core_discovery: CoreDiscovery,
    pub core_service: String,
    pub core_namespace: String,
    pub core_port_name: String,
    pub health_interval_seconds: u64,
    pub max_fails: u32,
    pub fail_timeout_seconds: u64,
    pub tenant_affinity: bool,
    pub affinity_load_factor: f64,
    /// Proxies (CIDR ranges) whose `X-Forwarded-For` names the client in audit events.
    #[serde(deserialize_with = "list_or_commas")]
    pub trusted_proxies: Vec<String>,
}

/// Where the gateway finds core instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoreDiscovery {
    /// `gateway.core_urls`, or `services.core.url`.
    Static,
    /// The ready endpoints of the `core_service` Service, from its EndpointSlices.
    Kubernetes,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub internal_token_ttl_seconds: u64,
    pub access_token_ttl_seconds: u64,
    pub last_used_flush_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    pub trial_days: u32,
    pub sweep_interval_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSection {
    pub user_agent: String,
    pub max_body_bytes: usize,
    pub connect_timeout_seconds: u64,
    pub timeout_seconds: u64,
    pub max_redirects: usize,
    #[serde(deserialize_with = "list_or_commas")]
    pub allowed_private_hosts: Vec<String>,
    pub host_interval_ms: u64,
    pub max_host_wait_seconds: u64,
    pub retries: u32,
    pub breaker_failures: u32,
    pub breaker_open_seconds: u64,
    pub robots_ttl_seconds: u64,
    pub respect_robots: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreSection {
    pub cache_memory_mb: u64,
    pub cache_ttl_seconds: u64,
    pub default_max_age_seconds: u64,
    pub shared_public_cache: bool,
    pub batch_parallelism: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub rate_fallback: anno_limits::Fallback,
    pub quota_fallback: anno_limits::Fallback,
    pub concurrency_fallback: anno_limits::Fallback,
    pub replicas: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Where tenants' file exports are written; unset: no file sink.
    #[serde(default)]
    pub file_sink_dir: Option<PathBuf>,
    pub export_interval_ms: u64,
    pub webhook_timeout_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSection {
    /// How often the gateway and core read the config service's change counter.
    pub check_interval_ms: u64,
}

/// A list from a file, or from a variable as comma-separated items.
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(items) => items,
        Either::Text(text) => text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
    })
}

/// Command-line values that override every other layer.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

/// The top-level keys, which are also what `ANNO_*` variables may name.
fn known_keys() -> Vec<String> {
    DEFAULTS
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| {
            let line = line.trim().trim_start_matches("# ");
            let key = line.split_once('=')?.0.trim();
            key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_').then(|| key.to_owned())
        })
        .chain(
            ["services", "gateway", "auth", "tenant", "fetch", "core", "limits", "audit", "config"].map(String::from),
        )
        .collect()
}

impl Config {
    /// Loads the layers from the process environment.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        Self::load_from(file, overrides, std::env::vars())
    }

    /// Loads the layers with the given environment (tests pass their own).
    pub fn load_from(
        file: Option<&Path>,
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("ANNO_")).collect();
        let known = known_keys();
        let mut unknown_variables = Vec::new();
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "the configuration file {} does not exist", file.display());
            figment = figment.merge(Toml::file(file));
        }
        for (name, value) in &env {
            let key = name["ANNO_".len()..].to_lowercase();
            let top = key.split("__").next().unwrap_or_default();
            if let Some(secret) = top.strip_suffix("_file").filter(|s| SECRETS.contains(s)) {
                let content =
                    std::fs::read_to_string(value).map_err(|e| anyhow::anyhow!("reading {name} ({value}): {e}"))?;
                figment = figment.merge(Serialized::default(secret, content.trim()));
            } else if SECRETS.contains(&top) {
                figment = figment.merge(Serialized::default(top, value));
            } else if known.iter().any(|k| k == top) {
                figment = figment.merge(Serialized::default(&key.replace("__", "."), parse_scalar(value)));
            } else if top != "config" {
                unknown_variables.push(name.clone());
            }
        }
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("listen", listen.to_string()));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", dir));
        }
        let mut config: Config = figment.extract()?;
        config.validate()?;
        config.unknown_variables = unknown_variables;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(pepper) = &self.key_pepper {
            anyhow::ensure!(pepper.expose().len() >= 32, "key_pepper must be at least 32 characters");
        }
        if let Some(secret) = &self.service_secret {
            anyhow::ensure!(secret.expose().len() >= 32, "service_secret must be at least 32 characters");
        }
        if let Some(admin) = &self.admin_key {
            anyhow::ensure!(admin.expose().len() >= 24, "admin_key must be at least 24 characters");
        }
        anyhow::ensure!(self.database_max_connections >= 1, "database_max_connections must be at least 1");
        anyhow::ensure!(!self.bus_namespace.is_empty(), "bus_namespace may not be empty");
        anyhow::ensure!(self.tenant.trial_days >= 1, "tenant.trial_days must be at least 1");
        anyhow::ensure!(self.fetch.max_body_bytes >= 1024, "fetch.max_body_bytes must be at least 1024");
        anyhow::ensure!(self.fetch.timeout_seconds >= 1, "fetch.timeout_seconds must be at least 1");
        anyhow::ensure!(self.core.batch_parallelism >= 1, "core.batch_parallelism must be at least 1");
        anno_audit::TrustedProxies::parse(&self.gateway.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("gateway.trusted_proxies: {e}"))?;
        anyhow::ensure!(self.audit.export_interval_ms >= 10, "audit.export_interval_ms must be at least 10");
        anyhow::ensure!(self.audit.webhook_timeout_seconds >= 1, "audit.webhook_timeout_seconds must be at least 1");
        anyhow::ensure!(
            self.gateway.affinity_load_factor.is_finite() && self.gateway.affinity_load_factor >= 0.0,
            "gateway.affinity_load_factor must be a number of at least 0"
        );
        for url in &self.gateway.core_urls {
            anno_api::transport::http(url).map_err(|e| anyhow::anyhow!("gateway.core_urls: {e}"))?;
        }
        if self.gateway.core_discovery == CoreDiscovery::Kubernetes {
            anyhow::ensure!(!self.gateway.core_service.is_empty(), "gateway.core_service may not be empty");
        }
        for entry in &self.fetch.allowed_private_hosts {
            let port = entry.rsplit_once(':').and_then(|(host, port)| (!host.is_empty()).then_some(port));
            anyhow::ensure!(
                port.is_some_and(|p| p.parse::<u16>().is_ok()),
                "fetch.allowed_private_hosts: `{entry}` is not host:port"
            );
        }
        for (name, endpoint) in self.services.iter() {
            anno_api::transport::http(&endpoint.url).map_err(|e| anyhow::anyhow!("services.{name}.url: {e}"))?;
        }
        Ok(())
    }
}

impl Services {
    pub fn iter(&self) -> [(&'static str, &Endpoint); 4] {
        [("auth", &self.auth), ("tenant", &self.tenant), ("config", &self.config), ("core", &self.core)]
    }
}

/// Environment values are strings; numbers and booleans are read as such.
fn parse_scalar(value: &str) -> figment::value::Value {
    if let Ok(b) = value.parse::<bool>() {
        return b.into();
    }
    if let Ok(n) = value.parse::<i64>() {
        return n.into();
    }
    if let Some(x) = value.parse::<f64>().ok().filter(|x| x.is_finite()) {
        return x.into();
    }
    value.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_load_and_document_every_key() {
        let config = Config::load_from(None, &Overrides::default(), env(&[])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:5213");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert!(config.database_url.is_none() && config.redis_url.is_none());
        assert_eq!(config.tenant.trial_days, 14);
        for key in ["database_url", "redis_url", "admin_key", "key_pepper", "service_secret"] {
            assert!(known_keys().iter().any(|k| k == key), "{key} is not documented");
        }
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        let dir = std::env::temp_dir().join(format!("anno-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("anno.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:7000\"\n[tenant]\ntrial_days = 30\n").unwrap();
        let pepper = dir.join("pepper");
        std::fs::write(&pepper, "p".repeat(40) + "\n").unwrap();
        let vars = env(&[
            ("ANNO_LISTEN", "127.0.0.1:7001"),
            ("ANNO_GATEWAY__VERIFICATION_TTL_SECONDS", "7"),
            ("ANNO_KEY_PEPPER_FILE", pepper.to_str().unwrap()),
            ("ANNO_DATABASE_URL", "postgres://db/anno"),
            ("ANNO_NOT_A_SETTING", "x"),
        ]);
        let config = Config::load_from(Some(&file), &Overrides::default(), vars.clone()).unwrap();
        assert_eq!(config.unknown_variables, ["ANNO_NOT_A_SETTING"]);
        assert_eq!(config.listen.to_string(), "127.0.0.1:7001");
        assert_eq!(config.tenant.trial_days, 30);
        assert_eq!(config.gateway.verification_ttl_seconds, 7);
        assert_eq!(config.key_pepper.unwrap().expose(), "p".repeat(40));
        assert_eq!(config.database_url.unwrap().expose(), "postgres://db/anno");
        let flags = Overrides { listen: Some("127.0.0.1:7002".parse().unwrap()), data_dir: Some("/tmp/x".into()) };
        let config = Config::load_from(Some(&file), &flags, vars).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7002");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let err = Config::load_from(None, &Overrides::default(), env(&[("ANNO_KEY_PEPPER", "short")])).unwrap_err();
        assert!(err.to_string().contains("key_pepper"), "{err}");
        let err =
            Config::load_from(None, &Overrides::default(), env(&[("ANNO_TENANT__TRIAL_DAYS", "many")])).unwrap_err();
        assert!(err.to_string().contains("trial_days"), "{err}");
        let vars = env(&[("ANNO_FETCH__ALLOWED_PRIVATE_HOSTS", "intranet.local")]);
        let err = Config::load_from(None, &Overrides::default(), vars).unwrap_err();
        assert!(err.to_string().contains("allowed_private_hosts"), "{err}");
    }

    #[test]
    fn core_routing_defaults_and_overrides() {
        let config = Config::load_from(None, &Overrides::default(), env(&[])).unwrap();
        let g = &config.gateway;
        assert!(g.core_urls.is_empty(), "services.core.url is the one endpoint by default");
        assert_eq!(g.core_discovery, CoreDiscovery::Static);
        assert_eq!(
            (g.core_service.as_str(), g.core_namespace.as_str(), g.core_port_name.as_str()),
            ("core", "", "http")
        );
        assert_eq!((g.health_interval_seconds, g.max_fails, g.fail_timeout_seconds), (5, 3, 30));
        assert!(!g.tenant_affinity);
        assert_eq!(g.affinity_load_factor, 0.25);
        let vars = env(&[
            ("ANNO_GATEWAY__CORE_URLS", "http://core-0:5217, http://core-1:5217"),
            ("ANNO_GATEWAY__CORE_DISCOVERY", "kubernetes"),
            ("ANNO_GATEWAY__TENANT_AFFINITY", "true"),
            ("ANNO_GATEWAY__AFFINITY_LOAD_FACTOR", "0.5"),
        ]);
        let config = Config::load_from(None, &Overrides::default(), vars).unwrap();
        assert_eq!(config.gateway.core_urls, ["http://core-0:5217", "http://core-1:5217"]);
        assert_eq!(config.gateway.core_discovery, CoreDiscovery::Kubernetes);
        assert!(config.gateway.tenant_affinity);
        assert_eq!(config.gateway.affinity_load_factor, 0.5);
        let vars = env(&[("ANNO_GATEWAY__CORE_URLS", "core-0:5217")]);
        let err = Config::load_from(None, &Overrides::default(), vars).unwrap_err();
        assert!(err.to_string().contains("core_urls"), "{err}");
        let vars = env(&[("ANNO_GATEWAY__CORE_DISCOVERY", "dns")]);
        assert!(Config::load_from(None, &Overrides::default(), vars).is_err());
    }

    #[test]
    fn audit_settings_and_trusted_proxies() {
        let config = Config::load_from(None, &Overrides::default(), env(&[])).unwrap();
        assert!(config.gateway.trusted_proxies.is_empty(), "no proxy is trusted by default");
        assert_eq!(config.audit.file_sink_dir, None, "no file sink by default");
        assert_eq!((config.audit.export_interval_ms, config.audit.webhook_timeout_seconds), (1000, 10));
        let vars = env(&[
            ("ANNO_GATEWAY__TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32"),
            ("ANNO_AUDIT__FILE_SINK_DIR", "/var/lib/anno/audit"),
        ]);
        let config = Config::load_from(None, &Overrides::default(), vars).unwrap();
        assert_eq!(config.gateway.trusted_proxies, ["10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(config.audit.file_sink_dir, Some(PathBuf::from("/var/lib/anno/audit")));
        assert!(config.unknown_variables.is_empty());
        let vars = env(&[("ANNO_GATEWAY__TRUSTED_PROXIES", "10.0.0.0/40")]);
        let err = Config::load_from(None, &Overrides::default(), vars).unwrap_err();
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
    }

    #[test]
    fn private_hosts_come_as_a_list_or_comma_separated() {
        let config = Config::load_from(None, &Overrides::default(), env(&[])).unwrap();
        assert!(config.fetch.allowed_private_hosts.is_empty(), "nothing private is reachable by default");
        let vars = env(&[("ANNO_FETCH__ALLOWED_PRIVATE_HOSTS", "intranet.local:8080, wiki.local:80")]);
        let config = Config::load_from(None, &Overrides::default(), vars).unwrap();
        assert_eq!(config.fetch.allowed_private_hosts, ["intranet.local:8080", "wiki.local:80"]);
    }
}
