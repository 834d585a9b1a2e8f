//! `anno scale`: sets the floor of a HorizontalPodAutoscaler through the
//! Kubernetes API. The Helm chart's off-peak schedule runs it from a CronJob,
//! lowering core's `minReplicas` at night and restoring it in the morning, with
//! a ServiceAccount allowed to read and patch that one object and nothing else.

use anyhow::Context;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scaled {
    /// `minReplicas` before (Kubernetes' default of 1 when unset).
    pub before: i32,
    pub after: i32,
    pub max: i32,
}

/// Sets `minReplicas` of the autoscaler `name`; refuses a floor above its
/// `maxReplicas` or below 1, and changes nothing when it is already there.
pub async fn set_min_replicas(client: kube::Client, namespace: &str, name: &str, min: i32) -> anyhow::Result<Scaled> {
    anyhow::ensure!(min >= 1, "--min-replicas must be at least 1");
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client, namespace);
    let hpa = api.get(name).await.with_context(|| format!("reading the autoscaler {namespace}/{name}"))?;
    let spec = hpa.spec.context("the autoscaler has no spec")?;
    let (before, max) = (spec.min_replicas.unwrap_or(1), spec.max_replicas);
    anyhow::ensure!(min <= max, "--min-replicas {min} is above the autoscaler's maxReplicas {max}");
    if before != min {
        let patch = json!({ "spec": { "minReplicas": min } });
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("patching the autoscaler {namespace}/{name}"))?;
    }
    Ok(Scaled { before, after: min, max })
}

/// The namespace to act in: the one given, else the client's (in a pod, its own).
pub fn namespace(client: &kube::Client, given: Option<String>) -> String {
    given.unwrap_or_else(|| client.default_namespace().to_owned())
}
