//! The command line: parse, load configuration, call the library.

use crate::config::{Config, Overrides};
use crate::platform::{self, ServiceName};
use clap::{Parser, Subcommand};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const ABOUT: &str = "Anno Platform: web content extraction for AI agents, served to many tenants.";

const AFTER_HELP: &str = "\
Getting started:
  anno serve                      run everything in one process (SQLite under ./data)
                                  and print the admin key on first start
  curl -s -X POST localhost:5213/v1/admin/tenants \\
       -H \"Authorization: Bearer $ADMIN_KEY\" -H 'Content-Type: application/json' \\
       -d '{\"name\":\"Acme\",\"domain\":\"acme.com\",\"contactEmail\":\"ops@acme.com\"}'
  curl -s localhost:5213/v1/me -H \"Authorization: Bearer $TENANT_KEY\"

Distributed (one service per process, Postgres and Redis):
  ANNO_DATABASE_URL=postgres://… ANNO_REDIS_URL=redis://… ANNO_KEY_PEPPER=… ANNO_SERVICE_SECRET=… \\
      anno serve --service auth

Configuration: defaults, then --config <file>, then ANNO_* variables (ANNO_X__Y for
nested keys, ANNO_X_FILE for secrets), then flags. `anno config` prints the defaults.";

#[derive(Parser, Debug)]
#[command(name = "anno", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// A TOML configuration file layered over the defaults.
    #[arg(long, global = true, env = "ANNO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the platform: every service in one process, or those named by --service.
    Serve {
        /// Where the gateway listens [default: 127.0.0.1:5213]
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Where the embedded shape keeps its data [default: ./data]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Run only this service (repeatable), each on its configured address;
        /// the others are reached at their configured URLs.
        #[arg(long = "service", value_enum, value_name = "NAME")]
        services: Vec<ServiceName>,
    },
    /// Apply every service's database migrations, then exit.
    Migrate {
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Exit 0 when the service at URL is ready (for container probes).
    Healthcheck {
        /// A service's base URL or its /ready URL [default: http://127.0.0.1:5213]
        #[arg(default_value = "http://127.0.0.1:5213")]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Print the documented default configuration.
    Config,
    /// Set a HorizontalPodAutoscaler's minReplicas through the Kubernetes API
    /// (in a pod: its ServiceAccount). The chart's off-peak CronJobs run it.
    Scale {
        /// The autoscaler's name.
        #[arg(long, value_name = "NAME")]
        hpa: String,
        /// The new floor.
        #[arg(long, value_name = "N")]
        min_replicas: i32,
        /// Its namespace [default: the pod's own, or the kubeconfig's]
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
    },
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Measure the platform's engines on a dataset.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check every link of the audit hash chains (one tenant's, or all of
    /// them); exit 1 when one is broken, naming the first broken link.
    Verify {
        /// Only this tenant's chain (`ten_…`, or `platform` for calls without a tenant).
        #[arg(long, value_name = "ID")]
        tenant: Option<String>,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Extraction quality (precision, recall, F1 of the main text) and speed
    /// (pages/s, MB/s of the extraction loop, one thread) on a dataset laid out as
    /// `html/<id>.html.gz` + `ground-truth.json`.
    Extract(crate::bench::BenchArgs),
    /// End to end: pages/s and p50/p99 latency of `/v1/content/fetch` through
    /// the gateway of an embedded platform, against a local site serving the
    /// dataset's pages, beside the extraction engine alone on the same pages.
    Fetch(crate::bench::fetch::FetchBenchArgs),
    /// How long a configuration change takes to reach the services that keep
    /// tenants' configuration (p50/p99 from sending the change to each
    /// replica having it), embedded or over Postgres and Redis.
    Propagation(crate::bench::propagation::PropagationArgs),
    /// What storing the audit trail costs: events/s and CPU time an event of
    /// appending gateway-like events to their hash chains, on SQLite or Postgres.
    Audit(crate::bench::audit::AuditArgs),
    /// What the gateway adds to a call: CPU time a call of a core route through
    /// the gateway's router and through core's own, in process, taking turns.
    Gateway(crate::bench::gateway::GatewayArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("anno: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("anno: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config => {
            print!("{}", crate::config::DEFAULTS);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Fetch(args)) => {
            print!("{}", crate::bench::fetch::run_fetch_bench(&args).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Scale { hpa, min_replicas, namespace } => {
            let client =
                anyhow::Context::context(kube::Client::try_default().await, "connecting to the Kubernetes API")?;
            let namespace = crate::scale::namespace(&client, namespace);
            let scaled = crate::scale::set_min_replicas(client, &namespace, &hpa, min_replicas).await?;
            println!(
                "{namespace}/{hpa}: minReplicas {} -> {} (maxReplicas {})",
                scaled.before, scaled.after, scaled.max
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Propagation(args)) => {
            print!("{}", crate::bench::propagation::run(&args).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Audit(args)) => {
            print!("{}", crate::bench::audit::run(&args).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Gateway(args)) => {
            print!("{}", crate::bench::gateway::run(&args).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Extract(args)) => {
            let options =
                anno_extract::Options { markdown: false, count_tokens: false, ..anno_extract::Options::default() };
            let report = crate::bench::run_extract_bench(&args, |html, url| {
                anno_extract::extract(html, url, Some("text/html; charset=utf-8"), &options).text
            })?;
            println!("{report}");
            println!("(timed: parse, main content, text; Markdown and token counts are not part of the loop)");
            if args.tokens {
                let pages = crate::bench::dataset::load(&args.dataset)?;
                let counts: Vec<(u64, u64)> = pages
                    .iter()
                    .filter_map(|page| {
                        let doc = anno_extract::extract(
                            &page.html,
                            &page.url,
                            Some("text/html; charset=utf-8"),
                            &anno_extract::Options::default(),
                        );
                        doc.tokens.map(|t| (t.raw as u64, t.markdown as u64))
                    })
                    .collect();
                println!("{}", crate::bench::Reduction::from_counts(&counts));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify { tenant, data_dir }) => {
            let chain = match tenant.as_deref().map(|t| anno_audit::Chain::parse(t).ok_or(t)).transpose() {
                Ok(chain) => chain,
                Err(bad) => anyhow::bail!("`{bad}` is not a tenant id (ten_…) or `platform`"),
            };
            let config = Config::load(cli.config.as_deref(), &Overrides { listen: None, data_dir })?;
            init_logging(&config);
            let report = platform::audit_store(&config).await?.verify(chain.as_ref()).await?;
            print!("{}", audit_report(&report, chain.as_ref()));
            Ok(if report.is_intact() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Healthcheck { url, timeout } => Ok(healthcheck(&url, Duration::from_secs(timeout)).await),
        Command::Migrate { data_dir } => {
            let config = Config::load(cli.config.as_deref(), &Overrides { listen: None, data_dir })?;
            init_logging(&config);
            platform::migrate_all(&config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { listen, data_dir, services } => {
            let config = Config::load(cli.config.as_deref(), &Overrides { listen, data_dir })?;
            init_logging(&config);
            let embedded = services.is_empty();
            let selected: BTreeSet<ServiceName> =
                if embedded { ServiceName::ALL.into_iter().collect() } else { services.into_iter().collect() };
            let mut listeners = Vec::new();
            for (service, addr) in platform::listen_addresses(&config, &selected, embedded) {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for {}: {e}", service.as_str()))?;
                listeners.push((service, listener));
            }
            platform::run(config, selected, listeners, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What `anno audit verify` prints: a line per broken chain, then a summary.
fn audit_report(report: &anno_audit::VerifyReport, chain: Option<&anno_audit::Chain>) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    let broken: Vec<_> = report.chains.iter().filter_map(|c| c.broken.as_ref().map(|at| (c, at))).collect();
    for (c, at) in &broken {
        let _ = writeln!(text, "BROKEN chain {} {at} ({} events verified before it)", c.chain, c.events);
    }
    let scope = match chain {
        Some(chain) => format!("chain {chain}"),
        None => format!("{} chains", report.chains.len()),
    };
    let _ = match broken.len() {
        0 => writeln!(text, "ok: {scope} intact, {} events verified", report.events()),
        n => writeln!(text, "FAILED: {n} of {scope} broken"),
    };
    text
}

fn init_logging(config: &Config) {
    anno_telemetry::init_logging(config.log_format);
    for variable in &config.unknown_variables {
        tracing::warn!(variable = %variable, "ignoring an ANNO_ variable that names no setting");
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: draining in-flight requests");
}

async fn healthcheck(url: &str, timeout: Duration) -> ExitCode {
    let url = url.trim_end_matches('/');
    let url = if url.ends_with("/ready") || url.ends_with("/health") { url.to_owned() } else { format!("{url}/ready") };
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("anno healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("anno healthcheck: {url} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("anno healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_takes_repeated_services() {
        let cli = Cli::try_parse_from(["anno", "serve", "--service", "auth", "--service", "tenant"]).unwrap();
        match cli.command {
            Command::Serve { services, .. } => assert_eq!(services, [ServiceName::Auth, ServiceName::Tenant]),
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["anno", "serve", "--service", "nope"]).is_err());
    }

    #[test]
    fn audit_verify_takes_a_tenant() {
        let cli = Cli::try_parse_from(["anno", "audit", "verify", "--tenant", "ten_x"]).unwrap();
        match cli.command {
            Command::Audit(AuditCommand::Verify { tenant, .. }) => assert_eq!(tenant.as_deref(), Some("ten_x")),
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["anno", "audit", "verify", "--tenant"]).is_err());
    }
}
