//! The end-to-end benchmark: `/v1/content/fetch` through the gateway of an
//! embedded platform, against a local site serving the dataset's pages, beside
//! the extraction engine alone on the same pages with the same options.

use crate::bench::dataset;
use crate::{Config, Overrides, ServiceName};
use anyhow::Context;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct FetchBenchArgs {
    /// The dataset: a directory holding ground-truth.json and html/<id>.html.gz.
    #[arg(long, value_name = "DIR")]
    pub dataset: PathBuf,
    /// Requests per run [default: three per page].
    #[arg(long, value_name = "N")]
    pub requests: Option<usize>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
}

/// Latency and throughput of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub label: &'static str,
    pub requests: usize,
    pub failures: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Run {
    pub fn pages_per_second(&self) -> f64 {
        (self.requests - self.failures) as f64 / self.seconds
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<9} {:>6} requests, {} failed, {:8.1} pages/s, p50 {:7.2} ms, p99 {:7.2} ms",
            self.label,
            self.requests,
            self.failures,
            self.pages_per_second(),
            self.p50_ms,
            self.p99_ms
        )
    }
}

/// What the command prints.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchReport {
    pub pages: usize,
    pub concurrency: usize,
    /// The engine alone on one thread, the options the endpoint uses.
    pub engine_pages_per_second: f64,
    pub runs: Vec<Run>,
}

impl fmt::Display for FetchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pages      {} (served from a local site), concurrency {}", self.pages, self.concurrency)?;
        writeln!(
            f,
            "engine    {:8.1} pages/s alone, one thread (Markdown, token counts, 60 nodes)",
            self.engine_pages_per_second
        )?;
        for run in &self.runs {
            writeln!(f, "{run}")?;
            writeln!(
                f,
                "          {:.2}× the engine alone",
                run.pages_per_second() / self.engine_pages_per_second.max(f64::MIN_POSITIVE)
            )?;
        }
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

async fn serve_page(State(pages): State<Arc<HashMap<String, Vec<u8>>>>, UrlPath(id): UrlPath<String>) -> Response {
    match pages.get(&id) {
        Some(html) => ([(header::CONTENT_TYPE, "text/html")], html.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A load generator: fetches of the URLs, in turn, through the gateway.
struct Load {
    client: reqwest::Client,
    endpoint: String,
    key: String,
    urls: Arc<Vec<String>>,
    concurrency: usize,
}

impl Load {
    /// Sends `requests` fetches, `concurrency` at a time.
    async fn run(&self, requests: usize, use_cache: bool, label: &'static str) -> Run {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.concurrency.max(1) {
            let (client, endpoint, key, next) =
                (self.client.clone(), self.endpoint.clone(), self.key.clone(), next.clone());
            let urls = self.urls.clone();
            workers.spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let body = json!({ "url": urls[i % urls.len()], "options": { "useCache": use_cache } });
                    let sent = Instant::now();
                    let ok = match client.post(&endpoint).bearer_auth(&key).json(&body).send().await {
                        Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
                        _ => false,
                    };
                    latencies.push(sent.elapsed());
                    failures += usize::from(!ok);
                }
                (latencies, failures)
            });
        }
        let mut latencies = Vec::with_capacity(requests);
        let mut failures = 0;
        while let Some(Ok((l, f))) = workers.join_next().await {
            latencies.extend(l);
            failures += f;
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies.sort();
        Run {
            label,
            requests,
            failures,
            seconds,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
        }
    }
}

pub async fn run_fetch_bench(args: &FetchBenchArgs) -> anyhow::Result<FetchReport> {
    let pages = dataset::load(&args.dataset)?;
    anyhow::ensure!(!pages.is_empty(), "the dataset has no pages");

    // The engine alone, with the options the endpoint uses by default.
    let options = anno_extract::Options { max_nodes: Some(60), ..anno_extract::Options::default() };
    // The tokenizer's tables load on first use: not part of any page's time.
    std::hint::black_box(anno_extract::tokens::count("warm up"));
    let started = Instant::now();
    for page in &pages {
        std::hint::black_box(anno_extract::extract(&page.html, &page.url, Some("text/html"), &options));
    }
    let engine_pages_per_second = pages.len() as f64 / started.elapsed().as_secs_f64();

    // The site.
    let site = TcpListener::bind("127.0.0.1:0").await?;
    let port = site.local_addr()?.port();
    let by_id: HashMap<String, Vec<u8>> = pages.iter().map(|p| (p.id.clone(), p.html.clone())).collect();
    let router = axum::Router::new().route("/p/{id}", axum::routing::get(serve_page)).with_state(Arc::new(by_id));
    tokio::spawn(async move { axum::serve(site, router).await });
    let urls: Vec<String> = pages.iter().map(|p| format!("http://localhost:{port}/p/{}", p.id)).collect();

    // The platform, embedded, on its own data.
    let data_dir = std::env::temp_dir().join(format!("anno-bench-{}-{}", std::process::id(), rand::random::<u32>()));
    let admin_key = format!("bench-admin-{:032x}", rand::random::<u128>());
    let env = vec![
        ("ANNO_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("ANNO_ADMIN_KEY".to_owned(), admin_key.clone()),
        ("ANNO_FETCH__ALLOWED_PRIVATE_HOSTS".to_owned(), format!("localhost:{port}")),
        ("ANNO_FETCH__RESPECT_ROBOTS".to_owned(), "false".to_owned()),
    ];
    let config = Config::load_from(None, &Overrides::default(), env)?;
    let gateway = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", gateway.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let selected: BTreeSet<ServiceName> = ServiceName::ALL.into_iter().collect();
    let platform = tokio::spawn(crate::run(config, selected, vec![(ServiceName::Gateway, gateway)], async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency.max(1)).build()?;
    let result = async {
        wait_ready(&client, &base).await?;
        let key = onboard(&client, &base, &admin_key).await?;
        let endpoint = format!("{base}/v1/content/fetch");
        let requests = args.requests.unwrap_or(pages.len() * 3).max(1);
        let load = Load { client: client.clone(), endpoint, key, urls: Arc::new(urls), concurrency: args.concurrency };
        let fetched = load.run(requests, false, "fetched").await;
        // Every page is in the cache after the first run.
        let cached = load.run(requests, true, "cached").await;
        Ok::<_, anyhow::Error>(vec![fetched, cached])
    }
    .await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), platform).await;
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(FetchReport { pages: pages.len(), concurrency: args.concurrency, engine_pages_per_second, runs: result? })
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(format!("{base}/ready")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the platform was not ready within 30 s")
}

/// A tenant on the enterprise plan for the run; its first key.
async fn onboard(client: &reqwest::Client, base: &str, admin_key: &str) -> anyhow::Result<String> {
    let body = json!({ "name": "Bench", "domain": "bench.example.com", "contactEmail": "bench@example.com", "plan": "enterprise" });
    let response = client.post(format!("{base}/v1/admin/tenants")).bearer_auth(admin_key).json(&body).send().await?;
    let status = response.status();
    let created: Value = response.json().await.context("onboarding the bench tenant")?;
    anyhow::ensure!(status.is_success(), "onboarding the bench tenant: {status} {created}");
    created["apiKey"]["key"].as_str().map(str::to_owned).context("the new tenant's key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 0.50), 50.0);
        assert_eq!(percentile(&ms, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
