//! Logging and metrics, initialised once per process.
//!
//! - Logs: `RUST_LOG` filter (default `info`), JSON lines when asked or when not on a
//!   terminal, readable text otherwise.
//! - Metrics: one Prometheus registry; [`observe_http`] records every request by
//!   service, method, matched route and status; [`metrics_handler`] serves them.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when standard error is not a terminal (a container), text otherwise.
    Auto,
    Json,
    Text,
}

/// Installs the global subscriber. Calling it twice is harmless (tests do).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(tracing_subscriber::fmt::layer().json().with_current_span(true).with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    drop(result);
}

struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

/// The process-wide registry every metric of the platform is registered in.
/// Tenants that get a label of their own; the rest share `other`, so a
/// metric's series stay bounded however many tenants there are.
const MAX_TENANT_LABELS: usize = 1000;

/// The label of a tenant in per-tenant metrics: its id while fewer than
/// `MAX_TENANT_LABELS` tenants are known to this process, `other` after.
pub fn tenant_label(tenant: &str) -> String {
    static KNOWN: OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    let Ok(mut known) = KNOWN.get_or_init(Default::default).lock() else { return "other".into() };
    if known.contains(tenant) {
        return tenant.to_owned();
    }
    if known.len() < MAX_TENANT_LABELS {
        known.insert(tenant.to_owned());
        return tenant.to_owned();
    }
    "other".into()
}

/// A counter registered with [`registry`]; call it once per name (from a
/// once-cell), as registering a name twice is refused.
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric definition");
    // Registration fails only on a duplicate name, which the caller's once-cell rules out.
    let _ = registry().register(Box::new(metric.clone()));
    metric
}

pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}

fn http() -> &'static HttpMetrics {
    static HTTP: OnceLock<HttpMetrics> = OnceLock::new();
    HTTP.get_or_init(|| {
        let labels = ["service", "method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new("anno_http_requests_total", "HTTP requests handled, by matched route and status"),
            &labels,
        )
        .expect("valid metric definition");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "anno_http_request_duration_seconds",
                "HTTP request latency, by matched route and status",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &labels,
        )
        .expect("valid metric definition");
        let registry = registry();
        // Registration only fails on a duplicate name, which this once-cell rules out.
        let _ = registry.register(Box::new(requests.clone()));
        let _ = registry.register(Box::new(duration.clone()));
        HttpMetrics { requests, duration }
    })
}

/// Records one request handled, by the service's middleware stack. The route
/// label is the matched route template, never the raw path.
pub fn observe_http(service: &str, method: &Method, route: &str, status: StatusCode, took: Duration) {
    let labels = [service, method.as_str(), route, status.as_str()];
    let metrics = http();
    metrics.requests.with_label_values(&labels).inc();
    metrics.duration.with_label_values(&labels).observe(took.as_secs_f64());
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics_handler() -> Response {
    let _ = http();
    let mut buffer = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry().gather(), &mut buffer) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    let mut response = buffer.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}
