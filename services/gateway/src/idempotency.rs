//! `Idempotency-Key` on creating POSTs, with Stripe's semantics: the first
//! response to a key is kept for 24 hours and replayed to every retry with the
//! same body; a retry while the first is still running, or one with another
//! body, is a 409. Keys belong to the caller's tenant (or to the admin), so
//! nobody can replay another's response.
//!
//! Distributed, the record lives in Redis (claimed with `SET NX`), so every
//! gateway replica sees it; embedded, in process.

use anno_errors::ApiError;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderName, HeaderValue, StatusCode, header};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a first response is replayed.
const KEEP: Duration = Duration::from_secs(24 * 3600);
/// Largest response kept for replay; creating calls answer far less.
const MAX_KEPT_BYTES: usize = 1 << 20;

/// What is known of a key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Record {
    /// The first request is in progress.
    Pending {
        digest: String,
    },
    Done(Kept),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Kept {
    digest: String,
    status: u16,
    headers: Vec<(String, String)>,
    /// Base64.
    body: String,
}

#[derive(Clone)]
pub enum Idempotency {
    Local(Arc<Mutex<HashMap<String, (Instant, Record)>>>),
    Redis { conn: ConnectionManager, namespace: String },
}

/// What to do with a request carrying a key.
pub enum Begin {
    /// First of its key: forward it, then [`Idempotency::finish`].
    Proceed(Claim),
    /// Answered before: here is the answer again.
    Replay(Response),
}

/// A key this request holds until its response is kept.
pub struct Claim {
    key: String,
    digest: String,
}

/// The key a client sent, when it is a valid one: 1 to 255 visible ASCII characters.
pub fn key_of(headers: &http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else { return Ok(None) };
    match value.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(k.to_owned())),
        _ => Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "An Idempotency-Key is 1 to 255 visible ASCII characters (a UUID, say).",
        )),
    }
}

/// The digest a retry's request must match: method, path and body.
pub fn digest(method: &http::Method, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [method.as_str().as_bytes(), b"\n", path.as_bytes(), b"\n", body] {
        h.update(part);
    }
    hex::encode(h.finalize())
}

impl Idempotency {
    pub fn new(bus: &anno_bus::Bus) -> Self {
        match bus.redis_connection() {
            Some((conn, namespace)) => Idempotency::Redis { conn, namespace: namespace.to_owned() },
            None => Idempotency::Local(Arc::default()),
        }
    }

    /// Claims `key` (already scoped to its owner) for a request with `digest`,
    /// or answers it from what is kept. `pending_for` bounds the claim of a
    /// request whose gateway dies before finishing it.
    pub async fn begin(&self, key: String, digest: String, pending_for: Duration) -> Result<Begin, ApiError> {
        let pending = Record::Pending { digest: digest.clone() };
        let existing = match self {
            Idempotency::Local(map) => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                if map.len() > 10_000 {
                    map.retain(|_, (until, _)| *until > now);
                }
                match map.get(&key) {
                    Some((until, record)) if *until > now => Some(record.clone()),
                    _ => {
                        map.insert(key.clone(), (now + pending_for, pending));
                        None
                    }
                }
            }
            Idempotency::Redis { conn, namespace } => {
                let mut conn = conn.clone();
                let full = format!("{namespace}:{key}");
                let value = serde_json::to_string(&pending).map_err(ApiError::internal)?;
                let (claimed, current): (Option<String>, Option<String>) = redis::pipe()
                    .cmd("SET")
                    .arg(&full)
                    .arg(&value)
                    .arg("NX")
                    .arg("PX")
                    .arg(pending_for.as_millis() as u64)
                    .cmd("GET")
                    .arg(&full)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| ApiError::unavailable(format!("idempotency records: {e}")))?;
                match (claimed, current) {
                    (Some(_), _) => None,
                    (None, Some(current)) => Some(serde_json::from_str(&current).map_err(ApiError::internal)?),
                    // Expired between the two commands: a first request after all.
                    (None, None) => None,
                }
            }
        };
        let Some(record) = existing else { return Ok(Begin::Proceed(Claim { key, digest })) };
        match record {
            Record::Pending { digest: first } if first == digest => Err(ApiError::conflict(
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still in progress; retry when it is done.",
            )),
            Record::Done(kept) if kept.digest == digest => Ok(Begin::Replay(replay(kept))),
            _ => Err(ApiError::conflict(
                "idempotency_key_reused",
                "This Idempotency-Key was used with another request; use a new key for a new request.",
            )),
        }
    }

    /// Keeps the response to a claimed key (a 5xx is not kept: the request may
    /// be retried), and answers it.
    pub async fn finish(&self, claim: Claim, response: Response) -> Response {
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_KEPT_BYTES).await {
            Ok(bytes) => bytes,
            Err(e) => {
                self.forget(&claim.key).await;
                return ApiError::internal(format!("keeping an idempotent response: {e}")).into_response();
            }
        };
        if parts.status.is_server_error() {
            self.forget(&claim.key).await;
        } else {
            let headers = [header::CONTENT_TYPE, header::LOCATION]
                .iter()
                .filter_map(|name| {
                    parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|v| (name.to_string(), v.to_owned()))
                })
                .collect();
            let kept = Kept {
                digest: claim.digest,
                status: parts.status.as_u16(),
                headers,
                body: base64::engine::general_purpose::STANDARD.encode(&bytes),
            };
            self.keep(&claim.key, Record::Done(kept)).await;
        }
        Response::from_parts(parts, Body::from(bytes))
    }

    async fn keep(&self, key: &str, record: Record) {
        match self {
            Idempotency::Local(map) => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                map.insert(key.to_owned(), (Instant::now() + KEEP, record));
            }
            Idempotency::Redis { conn, namespace } => {
                let mut conn = conn.clone();
                let Ok(value) = serde_json::to_string(&record) else { return };
                let set = redis::cmd("SET")
                    .arg(format!("{namespace}:{key}"))
                    .arg(value)
                    .arg("PX")
                    .arg(KEEP.as_millis() as u64)
                    .query_async::<()>(&mut conn)
                    .await;
                if let Err(e) = set {
                    tracing::warn!(error = %e, "keeping an idempotent response failed; a retry will be refused until the claim lapses");
                }
            }
        }
    }

    async fn forget(&self, key: &str) {
        match self {
            Idempotency::Local(map) => {
                map.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
            }
            Idempotency::Redis { conn, namespace } => {
                let mut conn = conn.clone();
                if let Err(e) = redis::cmd("DEL").arg(format!("{namespace}:{key}")).query_async::<()>(&mut conn).await {
                    tracing::warn!(error = %e, "releasing an idempotency key failed; it lapses by itself");
                }
            }
        }
    }
}

fn replay(kept: Kept) -> Response {
    let body = base64::engine::general_purpose::STANDARD.decode(kept.body.as_bytes()).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    for (name, value) in kept.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(REPLAYED.clone(), HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        let mut h = http::HeaderMap::new();
        assert_eq!(key_of(&h).unwrap(), None);
        h.insert(&IDEMPOTENCY_KEY, HeaderValue::from_static("4f6a-b2"));
        assert_eq!(key_of(&h).unwrap().as_deref(), Some("4f6a-b2"));
        for bad in ["", "has space", &"x".repeat(256)] {
            h.insert(&IDEMPOTENCY_KEY, HeaderValue::from_str(bad).unwrap());
            assert_eq!(key_of(&h).unwrap_err().code, "invalid_idempotency_key", "{bad:?}");
        }
    }

    #[test]
    fn the_digest_covers_method_path_and_body() {
        let d = digest(&http::Method::POST, "/v1/keys", b"{}");
        assert_eq!(d, digest(&http::Method::POST, "/v1/keys", b"{}"));
        assert_ne!(d, digest(&http::Method::POST, "/v1/keys", b"{ }"));
        assert_ne!(d, digest(&http::Method::POST, "/v1/crawl", b"{}"));
    }
}
