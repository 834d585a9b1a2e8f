//! Endpoints from Kubernetes: the EndpointSlices of the service's Service
//! (`discovery.k8s.io/v1`, label `kubernetes.io/service-name`), watched so that
//! pods joining, becoming ready or leaving reach the pool within moments.

use super::pool::Inner;
use futures::StreamExt;
use http::Uri;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::{Duration, Instant};

/// Which Service's endpoints to follow.
#[derive(Clone, Debug)]
pub struct SliceSource {
    /// Empty: the namespace the client runs in (the pod's own, in a cluster).
    pub namespace: String,
    /// The Service's name, as in the `kubernetes.io/service-name` label.
    pub service: String,
    /// The named port of the Service to send to (`http`). Empty: the slice's
    /// only port.
    pub port_name: String,
}

/// How long a watch request may stay open; the API server ends it then and
/// it is resumed from the last version seen.
const WATCH_SECONDS: u32 = 290;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Follows the slices while the pool lives: list, then watch from the list's
/// version, resuming the watch when the server ends it. A failed call or an
/// expired version (410 Gone) starts over with a fresh list, after a backoff
/// when something failed; the last known endpoints stay in use meanwhile.
///
/// A hand-written list-and-watch rather than kube's `runtime` watcher: one
/// label-selected resource needs none of a controller's machinery, and the
/// runtime would bring a dozen crates along.
pub(crate) async fn follow(pool: Weak<Inner>, client: Client, source: SliceSource) {
    let namespace = match source.namespace.as_str() {
        "" => client.default_namespace().to_owned(),
        namespace => namespace.to_owned(),
    };
    let api: Api<EndpointSlice> = Api::namespaced(client, &namespace);
    let selector = format!("kubernetes.io/service-name={}", source.service);
    let mut backoff = Duration::from_secs(1);
    loop {
        let failure = match api.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => {
                let Some(inner) = pool.upgrade() else { return };
                let slices: BTreeMap<String, Vec<Uri>> =
                    list.items.iter().map(|s| (slice_name(s), ready_endpoints(s, &source.port_name))).collect();
                inner.set_endpoints(slices.values().flatten().cloned().collect());
                drop(inner);
                let version = list.metadata.resource_version.unwrap_or_default();
                watch(&pool, &api, &selector, &source.port_name, version, slices, &mut backoff).await
            }
            Err(error) => Some(format!("listing EndpointSlices: {error}")),
        };
        if pool.strong_count() == 0 {
            return;
        }
        if let Some(failure) = failure {
            tracing::warn!(
                namespace = %namespace,
                service = %source.service,
                retry_in_s = backoff.as_secs(),
                "{failure}; keeping the last known endpoints"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Watches from `version` until the version expires (returns `None`: list
/// again at once) or something fails (returns what).
async fn watch(
    pool: &Weak<Inner>,
    api: &Api<EndpointSlice>,
    selector: &str,
    port_name: &str,
    mut version: String,
    mut slices: BTreeMap<String, Vec<Uri>>,
    backoff: &mut Duration,
) -> Option<String> {
    loop {
        let params = WatchParams::default().labels(selector).timeout(WATCH_SECONDS);
        let opened = Instant::now();
        let mut events = match api.watch(&params, &version).await {
            Ok(events) => events.boxed(),
            Err(error) => return Some(format!("watching EndpointSlices: {error}")),
        };
        let mut heard = false;
        while let Some(event) = events.next().await {
            heard = true;
            // The pool is gone: nothing failed, and the caller stops.
            let inner = pool.upgrade()?;
            match event {
                Ok(WatchEvent::Added(slice) | WatchEvent::Modified(slice)) => {
                    version = slice.metadata.resource_version.clone().unwrap_or(version);
                    slices.insert(slice_name(&slice), ready_endpoints(&slice, port_name));
                }
                Ok(WatchEvent::Deleted(slice)) => {
                    version = slice.metadata.resource_version.clone().unwrap_or(version);
                    slices.remove(&slice_name(&slice));
                }
                Ok(WatchEvent::Bookmark(bookmark)) => {
                    version = bookmark.metadata.resource_version;
                    continue;
                }
                Ok(WatchEvent::Error(status)) if status.code == 410 => return None,
                Ok(WatchEvent::Error(status)) => return Some(format!("watching EndpointSlices: {}", status.message)),
                Err(error) => return Some(format!("watching EndpointSlices: {error}")),
            }
            *backoff = Duration::from_secs(1);
            inner.set_endpoints(slices.values().flatten().cloned().collect());
        }
        // The server ends a watch after its timeout; one that ends at once,
        // silent, is something in between failing, not to be hammered.
        if !heard && opened.elapsed() < Duration::from_secs(1) {
            return Some("the EndpointSlice watch ended as soon as it began".to_owned());
        }
    }
}

fn slice_name(slice: &EndpointSlice) -> String {
    slice.metadata.name.clone().unwrap_or_default()
}

/// The base URIs of a slice's ready endpoints on the named port. A missing
/// `ready` condition means ready, as the API documents; an endpoint's first
/// address stands for it (the others are the same pod).
pub(crate) fn ready_endpoints(slice: &EndpointSlice, port_name: &str) -> Vec<Uri> {
    let ports = slice.ports.as_deref().unwrap_or_default();
    let port = match port_name {
        "" if ports.len() == 1 => ports[0].port,
        "" => None,
        name => ports.iter().find(|p| p.name.as_deref() == Some(name)).and_then(|p| p.port),
    };
    let Some(port) = port else { return Vec::new() };
    slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .filter_map(|e| e.addresses.first())
        .filter_map(|address| {
            let host = match slice.address_type.as_str() {
                "IPv6" => format!("[{address}]"),
                _ => address.clone(),
            };
            format!("http://{host}:{port}").parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(json: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn ready_endpoints_on_the_named_port() {
        let s = slice(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "core-abc"},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.1.17"], "conditions": {"ready": true}},
                {"addresses": ["10.0.1.18"], "conditions": {"ready": false, "terminating": true}},
                {"addresses": ["10.0.1.19"]}
            ],
            "ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 5217, "protocol": "TCP"}]
        }));
        let uris: Vec<String> = ready_endpoints(&s, "http").iter().map(Uri::to_string).collect();
        assert_eq!(uris, ["http://10.0.1.17:5217/", "http://10.0.1.19:5217/"]);
        assert!(ready_endpoints(&s, "grpc").is_empty());
        assert!(ready_endpoints(&s, "").is_empty(), "two ports and no name: none is guessed");
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let s = slice(serde_json::json!({
            "metadata": {"name": "core-v6"},
            "addressType": "IPv6",
            "endpoints": [{"addresses": ["fd00::17"], "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": 5217}]
        }));
        let uris: Vec<String> = ready_endpoints(&s, "").iter().map(Uri::to_string).collect();
        assert_eq!(uris, ["http://[fd00::17]:5217/"]);
    }
}
