//! `/v1/content/fetch`, `/extract` and `/batch-fetch`: a page fetched (or
//! sent), through the cache, extracted, and written in the asked format.

use crate::cache::{CachedPage, Visibility, digest};
use crate::metrics::metrics;
use crate::options::{ContentOptions, Format, Resolved};
use crate::stream::{self, Source};
use crate::{State, cache::Cache};
use anno_api::token::Caller;
use anno_errors::{ApiError, ApiJson, ApiQuery, parse_json};
use anno_extract::Document;
use anno_fetch::{Accept, FetchError, FetchRequest, Validators};
use anno_tenancy::{Scope, TenantId, now_ms};
use axum::body::{Body, Bytes};
use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchBody {
    url: String,
    #[serde(default)]
    options: Option<ContentOptions>,
}

/// A page as obtained, before extraction.
struct Obtained {
    page: Arc<CachedPage>,
    from_cache: bool,
    age: Option<u64>,
}

impl State {
    /// The page at `url`, from the cache when a copy is young enough (or
    /// still valid after a conditional request), else from its site.
    async fn obtain(&self, tenant: &TenantId, url: &str, opts: &Resolved) -> Result<Obtained, ApiError> {
        let url = self.inner.fetcher.check_url(url).map_err(refused)?;
        allowed(&opts.fetch, &url)?;
        let url = url.to_string();
        // The tenant may keep its pages to itself; sharing is never more than
        // the installation allows.
        let shared = self.inner.settings.shared_public_cache && opts.fetch.shared_cache.unwrap_or(true);
        let visibility = Visibility { tenant, shared, private: false };
        let key = Cache::page_key(&url, visibility);
        let max_age = opts.max_age.unwrap_or(self.inner.settings.default_max_age.as_secs());
        let cache = &self.inner.cache;
        let counter = |result: &str| metrics().cache.with_label_values(&["page", result]).inc();
        let mut stale = None;
        if opts.use_cache {
            match cache.page(&key).await {
                Some(page) => {
                    let age = age_of(&page);
                    if age <= max_age {
                        counter("hit");
                        return Ok(Obtained { page, from_cache: true, age: Some(age) });
                    }
                    stale = Some(page);
                }
                None => counter("miss"),
            }
        }
        let validators =
            stale.as_ref().map(|p| Validators { etag: p.etag.clone(), last_modified: p.last_modified.clone() });
        let request = FetchRequest {
            url: url.clone(),
            headers: Vec::new(),
            validators: validators.filter(|v| v.etag.is_some() || v.last_modified.is_some()),
            respect_robots: self.inner.settings.respect_robots,
            accept: Accept::Html,
        };
        let started = Instant::now();
        let fetched = self.inner.fetcher.fetch(&request).await;
        let result = match &fetched {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        metrics().fetch_duration.with_label_values(&[result]).observe(started.elapsed().as_secs_f64());
        let fetched = fetched.map_err(refused)?;
        // A redirect may lead where the policy does not allow.
        allowed(&opts.fetch, &fetched.final_url)?;
        if fetched.not_modified {
            if let Some(stale) = stale {
                counter("revalidated");
                let page = CachedPage { fetched_at: now_ms(), ..CachedPage::clone(&stale) };
                cache.put_page(&key, page.clone()).await;
                return Ok(Obtained { page: Arc::new(page), from_cache: true, age: Some(0) });
            }
        }
        let page = CachedPage {
            final_url: fetched.final_url.to_string(),
            status: fetched.status,
            content_type: fetched.content_type.clone(),
            etag: fetched.validators.etag.clone(),
            last_modified: fetched.validators.last_modified.clone(),
            fetched_at: now_ms(),
            redirects: fetched.redirects.iter().map(ToString::to_string).collect(),
            body: fetched.body.clone(),
        };
        if !page.body.is_empty() {
            cache.put_page(&key, page.clone()).await;
        }
        Ok(Obtained { page: Arc::new(page), from_cache: false, age: None })
    }

    /// The page extracted, from the document cache when these bytes at this
    /// URL were extracted the same way before.
    async fn document(
        &self,
        body: Bytes,
        url: &str,
        content_type: Option<&str>,
        opts: &Resolved,
    ) -> Result<(Arc<Document>, String), ApiError> {
        let checksum = digest(&body);
        let key = Cache::document_key(&checksum, &format!("{url}\u{1f}{}", opts.extraction_key()));
        let counter = |result: &str| metrics().cache.with_label_values(&["document", result]).inc();
        if let Some(doc) = self.inner.cache.document(&key) {
            counter("hit");
            return Ok((doc, checksum));
        }
        counter("miss");
        let (url, content_type, options) = (url.to_owned(), content_type.map(str::to_owned), opts.engine());
        let started = Instant::now();
        let doc =
            tokio::task::spawn_blocking(move || anno_extract::extract(&body, &url, content_type.as_deref(), &options))
                .await
                .map_err(ApiError::internal)?;
        metrics().extract_duration.observe(started.elapsed().as_secs_f64());
        let doc = Arc::new(doc);
        self.inner.cache.put_document(&key, doc.clone());
        Ok((doc, checksum))
    }

    /// Fetch and extract one URL.
    async fn process(
        &self,
        tenant: &TenantId,
        url: &str,
        opts: &Resolved,
        started: Instant,
    ) -> Result<(Source, Arc<Document>), ApiError> {
        let obtained = self.obtain(tenant, url, opts).await?;
        let page = &obtained.page;
        let (doc, checksum) =
            self.document(page.body.clone(), &page.final_url, page.content_type.as_deref(), opts).await?;
        let source = Source {
            url: url.to_owned(),
            final_url: page.final_url.clone(),
            status: page.status,
            content_type: page.content_type.clone(),
            fetched_at: page.fetched_at,
            duration_ms: started.elapsed().as_millis() as u64,
            from_cache: obtained.from_cache,
            age: obtained.age,
            redirects: page.redirects.clone(),
            checksum,
            supplied: false,
        };
        Ok((source, doc))
    }
}

/// Refuses a URL whose host the tenant's fetch policy does not allow.
fn allowed(policy: &anno_api::config::FetchPolicy, url: &url::Url) -> Result<(), ApiError> {
    policy.allow(url.host_str().unwrap_or_default()).inspect_err(|_| {
        metrics().blocked.with_label_values(&["policy"]).inc();
    })
}

fn age_of(page: &CachedPage) -> u64 {
    u64::try_from((now_ms() - page.fetched_at).max(0) / 1000).unwrap_or(0)
}

/// A fetch that failed, as the caller's problem; refusals are counted by reason.
fn refused(error: FetchError) -> ApiError {
    if let FetchError::Blocked(reason) = &error {
        metrics().blocked.with_label_values(&[reason.as_str()]).inc();
    }
    ApiError::from(error)
}

/// Counts a content request for its tenant.
fn record(tenant: &TenantId, endpoint: &str, started: Instant, result: Result<&Document, &ApiError>) {
    let m = metrics();
    let label = anno_telemetry::tenant_label(tenant.as_str());
    let outcome = match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.code.to_string(),
    };
    m.tenant_requests.with_label_values(&[label.as_str(), endpoint, outcome.as_str()]).inc();
    m.tenant_response_time.with_label_values(&[label.as_str(), endpoint]).observe(started.elapsed().as_secs_f64());
    if let Ok(Some(tokens)) = result.map(|d| d.tokens.as_ref()) {
        m.token_reduction.observe(tokens.reduction.clamp(0.0, 1.0));
    }
}

/// A response delivering one page: one billable unit.
fn one_unit(mut response: Response) -> Response {
    response.headers_mut().insert(HeaderName::from_static("x-anno-units"), HeaderValue::from_static("1"));
    response
}

pub async fn fetch(
    Extract(state): Extract<State>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FetchBody>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant(Scope::ContentFetch)?.tenant_id;
    let config = state.tenant_config(&caller, &tenant).await?;
    let opts = body.options.unwrap_or_default().resolve("options", &headers, &config.config)?;
    let started = Instant::now();
    let result = state.process(&tenant, &body.url, &opts, started).await;
    record(&tenant, "fetch", started, result.as_ref().map(|(_, d)| d.as_ref()));
    let (source, doc) = result?;
    state.charge(&caller, &tenant, "fetch").await?;
    Ok(one_unit(stream::respond(opts.format, &source, &doc)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtractBody {
    html: String,
    url: String,
    #[serde(default)]
    options: Option<ContentOptions>,
}

/// The options of `/v1/content/extract` when the body is the HTML itself.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtractQuery {
    url: Option<String>,
    format: Option<Format>,
    max_nodes: Option<u32>,
    max_tokens: Option<u32>,
    only_main_content: Option<bool>,
    include_links: Option<bool>,
    include_images: Option<bool>,
    /// One selector list (`article, .post`).
    include_selectors: Option<String>,
    exclude_selectors: Option<String>,
}

impl ExtractQuery {
    fn options(self) -> (Option<String>, ContentOptions) {
        let options = ContentOptions {
            format: self.format,
            max_nodes: self.max_nodes,
            max_tokens: self.max_tokens,
            only_main_content: self.only_main_content,
            include_links: self.include_links,
            include_images: self.include_images,
            include_selectors: self.include_selectors.map(|s| vec![s]),
            exclude_selectors: self.exclude_selectors.map(|s| vec![s]),
            ..ContentOptions::default()
        };
        (self.url, options)
    }
}

fn media_type(headers: &HeaderMap) -> String {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    value.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// A URL the sent HTML is read as coming from: absolute http(s).
fn base_url(url: Option<&str>) -> Result<String, ApiError> {
    let Some(url) = url else {
        return Err(ApiError::bad_request("invalid_url", "Send the page's `url` (its links are made absolute to it)."));
    };
    match url::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u.to_string()),
        _ => Err(ApiError::bad_request("invalid_url", "The `url` must be an absolute http or https URL.")),
    }
}

pub async fn extract(
    Extract(state): Extract<State>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ExtractQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant(Scope::ContentFetch)?.tenant_id;
    let started = Instant::now();
    let limit = state.inner.settings.max_html_bytes;
    let media = media_type(&headers);
    let (html, url, options, content_type) = match media.as_str() {
        "text/html" | "application/xhtml+xml" => {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let (url, options) = query.options();
            (body, base_url(url.as_deref())?, options, content_type)
        }
        "application/json" => {
            let (url, query_options) = query.options();
            if url.is_some() {
                return Err(ApiError::bad_request("invalid_url", "Send the `url` in the JSON body, not the query."));
            }
            let parsed: ExtractBody = parse_json(&body)?;
            let options =
                parsed.options.unwrap_or(ContentOptions { format: query_options.format, ..Default::default() });
            (Bytes::from(parsed.html), base_url(Some(&parsed.url))?, options, Some("text/html".to_owned()))
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the page as `Content-Type: text/html` with `?url=`, or JSON `{\"html\", \"url\"}`.",
            ));
        }
    };
    if html.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "page_too_large",
            format!("The page is larger than {limit} bytes."),
        ));
    }
    let config = state.tenant_config(&caller, &tenant).await?;
    let opts = options.resolve("options", &headers, &config.config)?;
    let result = state.document(html, &url, content_type.as_deref(), &opts).await;
    record(&tenant, "extract", started, result.as_ref().map(|(d, _)| d.as_ref()));
    let (doc, checksum) = result?;
    state.charge(&caller, &tenant, "extract").await?;
    let source = Source {
        url: url.clone(),
        final_url: url,
        status: 200,
        content_type,
        fetched_at: now_ms(),
        duration_ms: started.elapsed().as_millis() as u64,
        from_cache: false,
        age: None,
        redirects: Vec::new(),
        checksum,
        supplied: true,
    };
    Ok(one_unit(stream::respond(opts.format, &source, &doc)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchBody {
    urls: Vec<String>,
    #[serde(default)]
    options: Option<ContentOptions>,
}

/// Most URLs fetched at once in one batch, whatever the caller asks.
const MAX_PARALLELISM: u32 = 16;

fn line(kind: &str, payload: Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({ "type": kind, "payload": payload })).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

pub async fn batch_fetch(
    Extract(state): Extract<State>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant(Scope::ContentFetch)?.tenant_id;
    let config = state.tenant_config(&caller, &tenant).await?;
    let opts = body.options.unwrap_or_default().resolve("options", &headers, &config.config)?;
    if opts.format != Format::Ndjson {
        return Err(ApiError::invalid_field("options.format", "a batch is an event stream: only `ndjson`"));
    }
    if body.urls.is_empty() {
        return Err(ApiError::invalid_field("urls", "at least one URL"));
    }
    let limit = state.urls_per_batch(&caller, &tenant).await?;
    if body.urls.len() > limit as usize {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_too_large",
            format!("This plan allows {limit} URLs per batch; {} were sent.", body.urls.len()),
        ));
    }
    let parallel = opts
        .parallel
        .unwrap_or(state.inner.settings.batch_parallelism)
        .clamp(1, MAX_PARALLELISM)
        .min(body.urls.len() as u32);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(run_batch(state, caller, tenant, body.urls, opts, parallel, tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}

/// Fetches the batch's URLs in a sliding window of `parallel`, writing each
/// one's events as it finishes. Stops when the client goes away.
async fn run_batch(
    state: State,
    caller: Caller,
    tenant: TenantId,
    urls: Vec<String>,
    opts: Resolved,
    parallel: u32,
    tx: mpsc::Sender<Bytes>,
) {
    let total = urls.len();
    let start = json!({ "totalUrls": total, "parallelism": parallel, "timestamp": now_ms() });
    if tx.send(line("batch_start", start)).await.is_err() {
        return;
    }
    let (opts, caller) = (&opts, &caller);
    let units = std::sync::atomic::AtomicU64::new(0);
    let units = &units;
    let work = futures::stream::iter(urls.into_iter().enumerate()).map(|(index, url)| {
        let (state, tenant, tx) = (state.clone(), tenant.clone(), tx.clone());
        async move {
            let begin = json!({ "url": url, "index": index, "timestamp": now_ms() });
            if tx.send(line("source_start", begin)).await.is_err() {
                return;
            }
            let started = Instant::now();
            let result = tokio::select! {
                result = state.process(&tenant, &url, opts, started) => result,
                () = tx.closed() => return,
            };
            record(&tenant, "batch", started, result.as_ref().map(|(_, d)| d.as_ref()));
            // A page is charged before it is sent; one that finds no unit left is an error item.
            let result = match result {
                Ok(page) => state.charge(caller, &tenant, "batch").await.map(|()| page),
                Err(e) => Err(e),
            };
            let end = match result {
                Ok((source, doc)) => {
                    units.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    for event in stream::events(&source, &doc) {
                        let wrapped = json!({ "url": url, "index": index, "event": event });
                        if tx.send(line("source_event", wrapped)).await.is_err() {
                            return;
                        }
                    }
                    json!({ "url": url, "index": index, "status": "success", "units": 1, "timestamp": now_ms() })
                }
                Err(e) => json!({
                    "url": url,
                    "index": index,
                    "status": "error",
                    "error": { "code": e.code, "message": e.detail, "status": e.status.as_u16() },
                    "units": 0,
                    "timestamp": now_ms(),
                }),
            };
            let _ = tx.send(line("source_end", end)).await;
        }
    });
    let mut work = work.buffer_unordered(parallel as usize);
    while work.next().await.is_some() {
        if tx.is_closed() {
            return;
        }
    }
    let units = units.load(std::sync::atomic::Ordering::Relaxed);
    let _ = tx.send(line("batch_end", json!({ "totalUrls": total, "units": units, "timestamp": now_ms() }))).await;
}
