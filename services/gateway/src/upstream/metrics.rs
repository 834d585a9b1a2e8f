//! The pool's metrics, per endpoint. Endpoints come and go with pods, so an
//! endpoint's series are removed when it leaves the pool: the label set stays
//! bounded by the live instances.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};
use std::sync::OnceLock;

struct Families {
    in_flight: IntGaugeVec,
    ejections: IntCounterVec,
    up: IntGaugeVec,
}

const LABELS: [&str; 2] = ["service", "endpoint"];

fn families() -> Option<&'static Families> {
    static FAMILIES: OnceLock<Option<Families>> = OnceLock::new();
    FAMILIES
        .get_or_init(|| {
            let families = Families {
                in_flight: IntGaugeVec::new(
                    Opts::new("anno_gateway_upstream_in_flight", "Requests in flight on each upstream endpoint"),
                    &LABELS,
                )
                .ok()?,
                ejections: IntCounterVec::new(
                    Opts::new(
                        "anno_gateway_upstream_ejections_total",
                        "Times each upstream endpoint was ejected after consecutive failures",
                    ),
                    &LABELS,
                )
                .ok()?,
                up: IntGaugeVec::new(
                    Opts::new(
                        "anno_gateway_upstream_up",
                        "1 while an upstream endpoint may be chosen (ready, not ejected)",
                    ),
                    &LABELS,
                )
                .ok()?,
            };
            let registry = anno_telemetry::registry();
            // Registration only fails on a duplicate name, which the once-cell rules out.
            let _ = registry.register(Box::new(families.in_flight.clone()));
            let _ = registry.register(Box::new(families.ejections.clone()));
            let _ = registry.register(Box::new(families.up.clone()));
            Some(families)
        })
        .as_ref()
}

/// One endpoint's series; none when the metric families could not be made.
pub(crate) struct EndpointMetrics(Option<Series>);

struct Series {
    in_flight: IntGauge,
    ejections: IntCounter,
    up: IntGauge,
    service: String,
    endpoint: String,
}

impl EndpointMetrics {
    pub(crate) fn new(service: &str, endpoint: &str) -> EndpointMetrics {
        EndpointMetrics(families().and_then(|f| {
            let labels = [service, endpoint];
            Some(Series {
                in_flight: f.in_flight.get_metric_with_label_values(&labels).ok()?,
                ejections: f.ejections.get_metric_with_label_values(&labels).ok()?,
                up: f.up.get_metric_with_label_values(&labels).ok()?,
                service: service.to_owned(),
                endpoint: endpoint.to_owned(),
            })
        }))
    }

    /// Series exported nowhere (unit tests).
    #[cfg(test)]
    pub(crate) fn detached() -> EndpointMetrics {
        EndpointMetrics(None)
    }

    pub(crate) fn add_in_flight(&self, delta: i64) {
        if let Some(s) = &self.0 {
            s.in_flight.add(delta);
        }
    }

    pub(crate) fn ejected(&self) {
        if let Some(s) = &self.0 {
            s.ejections.inc();
        }
    }

    pub(crate) fn set_up(&self, up: bool) {
        if let Some(s) = &self.0 {
            s.up.set(i64::from(up));
        }
    }

    /// Drops this endpoint's series from the registry.
    pub(crate) fn remove(&self) {
        if let (Some(f), Some(s)) = (families(), &self.0) {
            let labels = [s.service.as_str(), s.endpoint.as_str()];
            let _ = f.in_flight.remove_label_values(&labels);
            let _ = f.ejections.remove_label_values(&labels);
            let _ = f.up.remove_label_values(&labels);
        }
    }
}
