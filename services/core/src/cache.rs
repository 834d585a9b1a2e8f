//! The fetch cache: L1 in this process (moka), L2 in Redis when the platform
//! runs distributed. Pages are keyed by tenant unless the tenant shares the
//! public cache; extracted documents are keyed by the body's digest, the
//! engine's version and the extraction options, so a hit skips extraction.

use anno_extract::Document;
use anno_tenancy::{TenantId, cache_key};
use bytes::Bytes;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// The engine's version: a new engine never serves an old engine's documents.
pub const ENGINE_VERSION: &str = concat!("anno-extract/", env!("CARGO_PKG_VERSION"));

/// A fetched page as cached.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedPage {
    pub final_url: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// When it was fetched or last revalidated (ms since the epoch).
    pub fetched_at: i64,
    pub redirects: Vec<String>,
    #[serde(skip)]
    pub body: Bytes,
}

impl CachedPage {
    /// A header line of JSON, then the body: no base64 for megabytes of HTML.
    fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    fn decode(bytes: &[u8]) -> Option<CachedPage> {
        let split = memchr::memchr(b'\n', bytes)?;
        let mut page: CachedPage = serde_json::from_slice(&bytes[..split]).ok()?;
        page.body = Bytes::copy_from_slice(&bytes[split + 1..]);
        Some(page)
    }
}

#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// Bytes of pages kept in process.
    pub memory_bytes: u64,
    /// How long a page is kept at most, whatever `maxAge` callers send.
    pub ttl: Duration,
    /// Largest page written to Redis.
    pub max_shared_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings { memory_bytes: 256 << 20, ttl: Duration::from_secs(24 * 3600), max_shared_bytes: 2 << 20 }
    }
}

#[derive(Clone)]
pub struct Cache {
    pages: moka::sync::Cache<String, Arc<CachedPage>>,
    documents: moka::sync::Cache<String, Arc<Document>>,
    redis: Option<(redis::aio::ConnectionManager, String)>,
    settings: CacheSettings,
}

/// Where a fetched page may be cached and found again.
#[derive(Clone, Copy, Debug)]
pub struct Visibility<'a> {
    pub tenant: &'a TenantId,
    /// The tenant's policy lets it share public pages with other tenants.
    pub shared: bool,
    /// The fetch carried the tenant's own headers or cookies.
    pub private: bool,
}

pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Cache {
    pub fn new(settings: CacheSettings, redis: Option<(redis::aio::ConnectionManager, String)>) -> Self {
        let pages = moka::sync::Cache::builder()
            .max_capacity(settings.memory_bytes)
            .weigher(|key: &String, page: &Arc<CachedPage>| {
                u32::try_from(key.len() + page.body.len() + 512).unwrap_or(u32::MAX)
            })
            .time_to_live(settings.ttl)
            .build();
        let documents = moka::sync::Cache::builder()
            .max_capacity(settings.memory_bytes / 2)
            .weigher(|key: &String, doc: &Arc<Document>| {
                let size = doc.markdown.len() + doc.text.len() * 2 + 1024;
                u32::try_from(key.len() + size).unwrap_or(u32::MAX)
            })
            .time_to_live(settings.ttl)
            .build();
        Cache { pages, documents, redis, settings }
    }

    /// The key of a page: the tenant's own unless it may share and the fetch
    /// was not private.
    pub fn page_key(url: &str, visibility: Visibility<'_>) -> String {
        let tenant = (visibility.private || !visibility.shared).then_some(visibility.tenant);
        cache_key(tenant, "page", &digest(url.as_bytes()))
    }

    pub fn document_key(body_digest: &str, extraction_key: &str) -> String {
        let options = digest(extraction_key.as_bytes());
        cache_key(None, "doc", &format!("{ENGINE_VERSION}:{body_digest}:{}", &options[..16]))
    }

    pub async fn page(&self, key: &str) -> Option<Arc<CachedPage>> {
        if let Some(page) = self.pages.get(key) {
            return Some(page);
        }
        let (conn, namespace) = self.redis.as_ref()?;
        let mut conn = conn.clone();
        let bytes: Option<Vec<u8>> = match conn.get(format!("{namespace}:{key}")).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(error = %e, "reading the shared page cache failed");
                None
            }
        };
        let page = Arc::new(CachedPage::decode(&bytes?)?);
        self.pages.insert(key.to_owned(), page.clone());
        Some(page)
    }

    pub async fn put_page(&self, key: &str, page: CachedPage) {
        let page = Arc::new(page);
        self.pages.insert(key.to_owned(), page.clone());
        let Some((conn, namespace)) = &self.redis else { return };
        if page.body.len() > self.settings.max_shared_bytes {
            return;
        }
        let mut conn = conn.clone();
        let result: redis::RedisResult<()> =
            conn.set_ex(format!("{namespace}:{key}"), page.encode(), self.settings.ttl.as_secs().max(1)).await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "writing the shared page cache failed");
        }
    }

    pub fn document(&self, key: &str) -> Option<Arc<Document>> {
        self.documents.get(key)
    }

    pub fn put_document(&self, key: &str, document: Arc<Document>) {
        self.documents.insert(key.to_owned(), document);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_private_unless_the_tenant_shares_and_sent_nothing_of_its_own() {
        let t: TenantId = "ten_0123456789abcdefghjkmnpqrs".parse().unwrap();
        let url = "https://example.com/a";
        let own = Cache::page_key(url, Visibility { tenant: &t, shared: false, private: false });
        assert!(own.starts_with("tenant:ten_0123456789abcdefghjkmnpqrs:page:"), "{own}");
        let shared = Cache::page_key(url, Visibility { tenant: &t, shared: true, private: false });
        assert!(shared.starts_with("public:page:"), "{shared}");
        let with_headers = Cache::page_key(url, Visibility { tenant: &t, shared: true, private: true });
        assert_eq!(with_headers, own);
    }

    /// L2: a page one core wrote is found by another (an empty L1) through
    /// Redis, and a tenant's key is not another tenant's.
    #[tokio::test]
    async fn pages_are_shared_between_cores_through_redis() {
        if !anno_bus::testing::redis_available().await {
            return;
        }
        let namespace = format!("anno-test-cache-{:016x}", rand_suffix());
        let bus = anno_bus::Bus::redis(&anno_bus::testing::redis_url(), &namespace).await.unwrap();
        let redis = || bus.redis_connection().map(|(c, n)| (c, n.to_owned()));
        let (one, two) = (Cache::new(CacheSettings::default(), redis()), Cache::new(CacheSettings::default(), redis()));
        let t: TenantId = "ten_0123456789abcdefghjkmnpqrs".parse().unwrap();
        let other: TenantId = "ten_1123456789abcdefghjkmnpqrs".parse().unwrap();
        let key =
            |tenant| Cache::page_key("https://example.com/a", Visibility { tenant, shared: false, private: false });
        let page = CachedPage {
            final_url: "https://example.com/a".into(),
            status: 200,
            content_type: None,
            etag: None,
            last_modified: None,
            fetched_at: 5,
            redirects: vec![],
            body: Bytes::from_static(b"<p>shared</p>"),
        };
        one.put_page(&key(&t), page).await;
        let found = two.page(&key(&t)).await.expect("the other core finds it in Redis");
        assert_eq!((found.body.as_ref(), found.fetched_at), (b"<p>shared</p>".as_ref(), 5));
        assert!(two.page(&key(&other)).await.is_none(), "another tenant's key misses");
    }

    fn rand_suffix() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }

    #[test]
    fn a_cached_page_round_trips_with_its_body() {
        let page = CachedPage {
            final_url: "https://example.com/b".into(),
            status: 200,
            content_type: Some("text/html".into()),
            etag: Some("\"v1\"".into()),
            last_modified: None,
            fetched_at: 1,
            redirects: vec!["https://example.com/a".into()],
            body: Bytes::from_static(b"<p>one\ntwo</p>"),
        };
        let back = CachedPage::decode(&page.encode()).unwrap();
        assert_eq!((back.body, back.etag, back.redirects), (page.body, page.etag, page.redirects));
    }
}
