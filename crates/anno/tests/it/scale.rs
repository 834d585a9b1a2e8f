//! `anno scale` against a recorded Kubernetes API exchange: the autoscaler as
//! the API server returned it, and the merge patch it must receive.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const HPA: &str = include_str!("k8s/hpa-core.json");
const PATH: &str = "/apis/autoscaling/v2/namespaces/anno/horizontalpodautoscalers/anno-core";

/// What the API server was sent: each patch's content type and body.
type Patches = Arc<Mutex<Vec<(String, Value)>>>;

async fn read() -> impl IntoResponse {
    ([("content-type", "application/json")], HPA)
}

async fn patch(State(patches): State<Patches>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let kind = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else { return StatusCode::BAD_REQUEST.into_response() };
    let mut hpa: Value = serde_json::from_str(HPA).unwrap();
    hpa["spec"]["minReplicas"] = patch["spec"]["minReplicas"].clone();
    patches.lock().unwrap().push((kind, patch));
    ([("content-type", "application/json")], hpa.to_string()).into_response()
}

async fn api_server() -> (kube::Client, Patches) {
    let patches = Patches::default();
    let router = Router::new().route(PATH, get(read).patch(patch)).with_state(patches.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    (client, patches)
}

#[tokio::test]
async fn off_peak_lowers_the_floor_with_one_merge_patch() {
    let (client, patches) = api_server().await;
    let scaled = anno::scale::set_min_replicas(client, "anno", "anno-core", 1).await.unwrap();
    assert_eq!(scaled, anno::scale::Scaled { before: 3, after: 1, max: 100 });
    let sent = patches.lock().unwrap().clone();
    assert_eq!(sent, [("application/merge-patch+json".to_owned(), json!({"spec": {"minReplicas": 1}}))]);
}

#[tokio::test]
async fn a_floor_already_in_place_or_above_the_ceiling_sends_no_patch() {
    let (client, patches) = api_server().await;
    let same = anno::scale::set_min_replicas(client.clone(), "anno", "anno-core", 3).await.unwrap();
    assert_eq!((same.before, same.after), (3, 3));
    let error = anno::scale::set_min_replicas(client.clone(), "anno", "anno-core", 101).await.unwrap_err();
    assert!(error.to_string().contains("maxReplicas 100"), "{error}");
    assert!(anno::scale::set_min_replicas(client, "anno", "anno-core", 0).await.is_err());
    assert!(patches.lock().unwrap().is_empty());
}
