//! Core's metrics. Labels are bounded: reasons and outcomes are fixed sets,
//! and tenants past the first thousand share the label `other`.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts};
use std::sync::OnceLock;

pub struct Metrics {
    pub token_reduction: Histogram,
    pub tenant_requests: IntCounterVec,
    pub tenant_response_time: HistogramVec,
    pub fetch_duration: HistogramVec,
    pub extract_duration: Histogram,
    pub cache: IntCounterVec,
    pub blocked: IntCounterVec,
}

const LATENCY: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

fn register<T: prometheus::core::Collector + Clone + 'static>(metric: T) -> T {
    // Registration only fails on a duplicate name, which the once-cell rules out.
    let _ = anno_telemetry::registry().register(Box::new(metric.clone()));
    metric
}

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            register(
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())).expect("valid metric"),
            )
        };
        let histogram_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY.to_vec()), labels)
                    .expect("valid metric"),
            )
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        Metrics {
            token_reduction: histogram(
                "anno_token_reduction_ratio",
                "Share of o200k tokens saved, raw HTML against the Markdown returned",
                &[0.0, 0.25, 0.5, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0],
            ),
            tenant_requests: counter_vec(
                "anno_tenant_requests_total",
                "Content requests by tenant, endpoint and result",
                &["tenant_id", "endpoint", "result"],
            ),
            tenant_response_time: histogram_vec(
                "anno_tenant_response_time_seconds",
                "Content request latency by tenant and endpoint",
                &["tenant_id", "endpoint"],
            ),
            fetch_duration: histogram_vec(
                "anno_fetch_duration_seconds",
                "Time to fetch a page from its site, by result",
                &["result"],
            ),
            extract_duration: histogram(
                "anno_extract_duration_seconds",
                "Time to extract a page (parse, main content, renderings, token counts)",
                LATENCY,
            ),
            cache: counter_vec(
                "anno_cache_requests_total",
                "Cache look-ups by kind (page, document) and result (hit, miss, revalidated)",
                &["kind", "result"],
            ),
            blocked: counter_vec(
                "anno_fetch_blocked_total",
                "Fetches refused before connecting, by reason",
                &["reason"],
            ),
        }
    })
}
