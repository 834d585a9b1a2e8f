//! EndpointSlice discovery against a recorded Kubernetes API exchange: the
//! list and watch responses under `k8s/` are served as the API server sent
//! them, and the pool's endpoints follow each event.

use super::support::{eventually, serve};
use anno_gateway::upstream::{Pool, PoolSettings, SliceSource};
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const LIST: &str = include_str!("../k8s/endpointslices-list.json");
const RELIST: &str = include_str!("../k8s/endpointslices-relist.json");
const WATCH: &str = include_str!("../k8s/endpointslices-watch.jsonl");

/// A Kubernetes API server that answers a list, then a watch whose events the
/// test releases one by one; a later list has moved on, later watches stay
/// open and silent.
#[derive(Clone)]
struct ApiServer {
    queries: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<Option<mpsc::UnboundedReceiver<String>>>>,
}

async fn endpoint_slices(State(api): State<ApiServer>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    api.queries.lock().unwrap().push(query.clone());
    let json = [("content-type", "application/json")];
    if !query.split('&').any(|pair| pair == "watch=true") {
        let first = api.queries.lock().unwrap().iter().filter(|q| !q.contains("watch=true")).count() == 1;
        return (json, if first { LIST } else { RELIST }).into_response();
    }
    let events = api.events.lock().unwrap().take();
    let stream = futures::stream::unfold(events, |events| async move {
        match events {
            Some(mut events) => {
                let line = events.recv().await?;
                Some((Ok::<_, std::io::Error>(format!("{line}\n")), Some(events)))
            }
            None => std::future::pending().await,
        }
    });
    (json, Body::from_stream(stream)).into_response()
}

fn addresses(pool: &Pool) -> Vec<String> {
    let mut addresses: Vec<String> = pool.endpoints().into_iter().map(|e| e.address).collect();
    addresses.sort();
    addresses
}

#[tokio::test]
async fn the_pool_follows_endpoint_slice_events() {
    let (send, receive) = mpsc::unbounded_channel();
    let api = ApiServer { queries: Arc::default(), events: Arc::new(Mutex::new(Some(receive))) };
    let router = Router::new()
        .route("/apis/discovery.k8s.io/v1/namespaces/anno/endpointslices", get(endpoint_slices))
        .with_state(api.clone());
    let (url, _server) = serve(router).await;
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let source = SliceSource { namespace: "anno".into(), service: "core".into(), port_name: "http".into() };
    let settings = PoolSettings { health_interval: Duration::ZERO, ..PoolSettings::default() };
    let pool = Pool::endpoint_slices(settings, client, source).unwrap();

    let expected: [&[&str]; 5] = [
        // Listed: one ready endpoint, one not yet ready; the metrics port is not used.
        &["10.0.1.17:5217"],
        // ADDED: a second slice.
        &["10.0.1.17:5217", "10.0.3.21:5217"],
        // MODIFIED: 10.0.1.17 terminates, 10.0.2.33 became ready.
        &["10.0.2.33:5217", "10.0.3.21:5217"],
        // DELETED: the second slice is gone.
        &["10.0.2.33:5217"],
        // ERROR 410 (version expired): listed afresh, the pod on 10.0.1.17 was replaced.
        &["10.0.1.52:5217", "10.0.2.33:5217"],
    ];
    eventually("the listed endpoints are in the pool", || addresses(&pool) == expected[0]).await;
    let events: Vec<&str> = WATCH.lines().collect();
    assert_eq!(events.len(), 4);
    for (event, expected) in events.iter().zip(&expected[1..]) {
        send.send((*event).to_owned()).unwrap();
        eventually(&format!("the pool holds {expected:?}"), || addresses(&pool) == *expected).await;
    }

    let queries = api.queries.lock().unwrap().clone();
    let selector = "labelSelector=kubernetes.io%2Fservice-name%3Dcore";
    assert!(queries[0].contains(selector) && !queries[0].contains("watch=true"), "{queries:?}");
    let watch = &queries[1];
    assert!(watch.contains("watch=true") && watch.contains(selector), "{watch}");
    assert!(watch.contains("resourceVersion=48213"), "the watch starts where the list ended: {watch}");
    eventually("the watch resumes after the relist", || api.queries.lock().unwrap().len() >= 4).await;
    let queries = api.queries.lock().unwrap().clone();
    assert!(!queries[2].contains("watch=true"), "an expired version means a new list: {queries:?}");
    assert!(queries[3].contains("resourceVersion=48340"), "{queries:?}");
}
