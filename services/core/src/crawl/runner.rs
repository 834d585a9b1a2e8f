//! Working one job: breadth-first from the start URL (and the sitemaps' pages),
//! a bounded set of fetches at a time, every discovered URL given exactly one
//! disposition.
//!
//! One coordinator task per job owns the frontier and is the job's only writer;
//! fetch-and-extract tasks only report back. Each page is settled in one
//! transaction with the URLs it led to, so a job stopped at any point resumes
//! from its stored URLs, fetching again only what was not settled.
//!
//! A running job holds one of its tenant's concurrency slots (under the job's
//! id, renewed with its lease), waiting without fetching while none is free.
//! Each captured page costs one unit, charged inside the transaction that
//! stores it: a page the quotas refuse is not stored, and the job ends there.
//!
//! The charge's usage record has the id `<job id>:<page seq>`, and the ledger
//! stores each id once. Page sequence numbers are given in order by this one
//! writer and restored from the stored pages on resume, so when a charge
//! counted but its page was not stored (the commit failed, or the process
//! stopped between the two), the resumed job gives the next page it captures
//! the same number and the same id: the ledger still holds one record per
//! stored page. (The limiter's own counters count such a page twice; they are
//! only raised to the ledger, never lowered.)

use crate::crawl::links::{self, path_and_query};
use crate::crawl::options::{CrawlOptions, Exclusion, Rules};
use crate::crawl::plan::JobQuota;
use crate::crawl::store::{self, JobStatus, NewUrl, Settled, Stop, UrlRecord, UrlState};
use crate::crawl::wire::CrawlPage;
use crate::crawl::{Inner, index, sitemap};
use anno_fetch::{Accept, FetchError, FetchRequest, Fetcher};
use anno_limits::{Charged, Limit, UsageRecord};
use anno_store::{Db, StoreError};
use anno_tenancy::{TenantId, now_ms};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

/// URLs one job records at most; links found past this are not followed or listed.
pub const MAX_URLS_PER_JOB: usize = 100_000;
/// Largest page content stored when a page is plain text rather than HTML.
const MAX_TEXT_CONTENT: usize = 1024 * 1024;
/// How often a job waiting for a concurrency slot asks again.
const SLOT_RETRY: Duration = Duration::from_secs(1);

/// A job being worked.
pub struct Job {
    pub id: String,
    pub tenant: TenantId,
    pub db: Db,
    pub start: Url,
    pub options: CrawlOptions,
    pub rules: Rules,
    pub sitemaps_read: bool,
    /// The API key or user its pages are credited to in the ledger.
    pub created_by: Option<String>,
    /// The tenant's quotas and concurrency when the job was created.
    pub quota: JobQuota,
}

/// What is known and what is still to fetch, shallowest first.
pub struct Frontier {
    queue: BinaryHeap<Reverse<(u32, i64, String)>>,
    known: HashSet<String>,
    /// The last sequence number given to a URL, and to a captured page.
    last_url_seq: i64,
    last_page_seq: i64,
    captured: u64,
}

impl Frontier {
    pub fn new(start: &NewUrl) -> Frontier {
        let mut frontier = Frontier::restore(Vec::new(), 0);
        frontier.commit(std::slice::from_ref(start));
        frontier
    }

    /// The frontier of a job stopped part-way, from its stored URLs.
    pub fn restore(urls: Vec<UrlRecord>, last_page_seq: i64) -> Frontier {
        let mut frontier =
            Frontier { queue: BinaryHeap::new(), known: HashSet::new(), last_url_seq: 0, last_page_seq, captured: 0 };
        for u in urls {
            frontier.last_url_seq = frontier.last_url_seq.max(u.seq);
            match u.state {
                UrlState::Queued => frontier.queue.push(Reverse((u.depth, u.seq, u.url.clone()))),
                UrlState::Captured => frontier.captured += 1,
                _ => {}
            }
            frontier.known.insert(u.url);
        }
        frontier
    }

    /// Gives each newly found URL its disposition. Nothing changes until
    /// [`Frontier::commit`], after the URLs are stored.
    async fn admit(&self, fetcher: &Fetcher, job: &Job, found: Vec<(Url, u32)>, captured: u64) -> Vec<NewUrl> {
        let mut out: Vec<NewUrl> = Vec::new();
        let mut here = HashSet::new();
        for (url, depth) in found {
            if self.known.len() + out.len() >= MAX_URLS_PER_JOB {
                break;
            }
            if self.known.contains(url.as_str()) || !here.insert(url.as_str().to_owned()) {
                continue;
            }
            let (state, reason) = match job.rules.exclusion(&url, depth) {
                Some(rule) => (UrlState::Excluded, Some(rule.as_str())),
                None if job.options.respect_robots && !robots_allow(fetcher, &url).await => {
                    (UrlState::Excluded, Some(Exclusion::Robots.as_str()))
                }
                None if captured >= u64::from(job.options.max_pages) => (UrlState::OverBudget, None),
                None => (UrlState::Queued, None),
            };
            let seq = self.last_url_seq + out.len() as i64 + 1;
            out.push(NewUrl { url: url.into(), seq, depth, state, reason });
        }
        out
    }

    fn commit(&mut self, urls: &[NewUrl]) {
        for u in urls {
            self.last_url_seq = self.last_url_seq.max(u.seq);
            if u.state == UrlState::Queued {
                self.queue.push(Reverse((u.depth, u.seq, u.url.clone())));
            }
            self.known.insert(u.url.clone());
        }
    }

    /// Nothing left to fetch within the budget.
    fn exhausted(&self, max_pages: u64) -> bool {
        self.queue.is_empty() || self.captured >= max_pages
    }

    fn pop(&mut self) -> Option<Item> {
        self.queue.pop().map(|Reverse((depth, _, url))| Item { url, depth })
    }
}

async fn robots_allow(fetcher: &Fetcher, url: &Url) -> bool {
    fetcher.robots(url).await.allowed(&path_and_query(url))
}

struct Item {
    url: String,
    depth: u32,
}

/// What a fetch-and-extract task reports.
enum Visit {
    Page(Box<Captured>),
    Failed(FetchError),
    /// The task panicked (a defect): the URL fails rather than the job.
    Crashed,
}

struct Captured {
    final_url: Url,
    status: u16,
    title: Option<String>,
    content: String,
    links: Vec<Url>,
    token_count: usize,
    raw_token_count: usize,
}

#[derive(Clone, Copy)]
struct PageOptions {
    respect_robots: bool,
    only_main_content: bool,
    max_tokens: Option<u32>,
}

/// Why the coordinator stopped.
enum Exit {
    /// Nothing left to fetch within the budget.
    Done,
    /// The tenant's units ran out: the page that found none was not stored.
    Quota(Limit),
    /// The caller cancelled the job.
    Cancelled,
    /// This instance is shutting down; the job stays running for a resume.
    Halted,
    /// The job is no longer ours: cancelled elsewhere, or another instance took it.
    Lost,
    /// Storage failed; the job is given back to be resumed later.
    Store(StoreError),
}

/// Works the job to its end (or until stopped), then records how it ended.
pub async fn run(inner: Arc<Inner>, job: Job, mut frontier: Frontier, token: CancellationToken) {
    let exit = work(&inner, &job, &mut frontier, &token).await;
    // The slot is given back first, so that a job seen to have ended holds
    // none; but a job another instance took over holds it there, under the same id.
    let handed_over = matches!(exit, Exit::Lost) && runs_elsewhere(&job).await;
    if !handed_over && job.quota.concurrent_requests.is_some() {
        inner.limits.release(&job.tenant, &job.id).await;
    }
    if let Err(e) = conclude(&inner, &job, &frontier, exit).await {
        tracing::warn!(error = %e, job.id = %job.id, tenant.id = %job.tenant, "recording the end of a crawl failed");
    }
}

/// Whether a job this instance lost is still running (so another instance
/// works it). When storage cannot say, it is presumed to: its slot then lapses
/// by itself after a lease period.
async fn runs_elsewhere(job: &Job) -> bool {
    match store::find_job(&job.db, &job.id).await {
        Ok(found) => found.is_some_and(|j| j.status == JobStatus::Running),
        Err(_) => true,
    }
}

/// Takes or extends the job's concurrency slot; false when the tenant has none free.
async fn hold_slot(inner: &Inner, job: &Job) -> bool {
    match job.quota.concurrent_requests {
        Some(slots) => inner.limits.hold(&job.tenant, &job.id, slots, inner.settings.lease).await,
        None => true,
    }
}

/// Renews the job's lease and its slot: whether it holds a slot, or the exit
/// when the job is no longer ours.
async fn renew(inner: &Inner, job: &Job, holding: bool) -> Result<bool, Exit> {
    if let Some(exit) = renew_lease(inner, job).await {
        return Err(exit);
    }
    let held = hold_slot(inner, job).await;
    if holding && !held {
        tracing::warn!(job.id = %job.id, tenant.id = %job.tenant, "a crawl lost its concurrency slot; it waits for one");
    }
    Ok(held)
}

async fn work(inner: &Inner, job: &Job, frontier: &mut Frontier, token: &CancellationToken) -> Exit {
    let stopped = || if inner.shutdown.is_cancelled() { Exit::Halted } else { Exit::Cancelled };
    let period = (inner.settings.lease / 3).max(Duration::from_millis(100));
    let mut renew_at = tokio::time::interval_at(Instant::now() + period, period);
    let mut slot_retry = tokio::time::interval_at(Instant::now() + SLOT_RETRY, SLOT_RETRY);
    slot_retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Nothing is fetched, sitemaps included, before the job holds a slot.
    let mut holding = hold_slot(inner, job).await;
    if !holding {
        tracing::info!(job.id = %job.id, tenant.id = %job.tenant, "a crawl waits for a concurrency slot");
    }
    while !holding {
        tokio::select! {
            biased;
            () = token.cancelled() => return stopped(),
            _ = renew_at.tick() => if let Some(exit) = renew_lease(inner, job).await {
                return exit;
            },
            _ = slot_retry.tick() => holding = hold_slot(inner, job).await,
        }
    }
    if job.options.use_sitemap && !job.sitemaps_read {
        let discover = sitemap::discover(&inner.fetcher, &job.start);
        tokio::pin!(discover);
        let found = loop {
            tokio::select! {
                biased;
                () = token.cancelled() => return stopped(),
                _ = renew_at.tick() => match renew(inner, job, holding).await {
                    Ok(held) => holding = held,
                    Err(exit) => return exit,
                },
                found = &mut discover => break found,
            }
        };
        let found = found.into_iter().map(|url| (url, 1)).collect();
        let urls = frontier.admit(&inner.fetcher, job, found, frontier.captured).await;
        match retry(|| store::record_sitemap_urls(&job.db, &job.id, &urls, now_ms())).await {
            Ok(()) => frontier.commit(&urls),
            Err(e) => return Exit::Store(e),
        }
    }
    let options = PageOptions {
        respect_robots: job.options.respect_robots,
        only_main_content: job.options.only_main_content,
        max_tokens: job.options.max_tokens,
    };
    let max_pages = u64::from(job.options.max_pages);
    let concurrency = job.options.concurrency.max(1) as usize;
    // Dropping the set (on any return) aborts the fetches still running.
    let mut tasks = JoinSet::new();
    let mut in_flight = HashMap::new();
    loop {
        // Without a slot (lost at a renewal), what is in flight finishes and
        // nothing new starts until one is free again.
        while holding && tasks.len() < concurrency && frontier.captured + (tasks.len() as u64) < max_pages {
            let Some(item) = frontier.pop() else { break };
            if let Err(e) = store::set_current_url(&job.db, &job.id, &item.url, now_ms()).await {
                tracing::debug!(error = %e, job.id = %job.id, "recording the current URL failed");
            }
            let handle = tasks.spawn(visit(inner.fetcher.clone(), item.url.clone(), options));
            in_flight.insert(handle.id(), item);
        }
        if tasks.is_empty() && (holding || frontier.exhausted(max_pages)) {
            return Exit::Done;
        }
        tokio::select! {
            biased;
            () = token.cancelled() => return stopped(),
            _ = renew_at.tick() => match renew(inner, job, holding).await {
                Ok(held) => holding = held,
                Err(exit) => return exit,
            },
            _ = slot_retry.tick(), if !holding => holding = hold_slot(inner, job).await,
            Some(joined) = tasks.join_next_with_id() => {
                let (id, visit) = match joined {
                    Ok((id, visit)) => (id, visit),
                    Err(e) => (e.id(), Visit::Crashed),
                };
                let Some(item) = in_flight.remove(&id) else { continue };
                match record(inner, job, frontier, item, visit).await {
                    Ok(Settled::Done) => {}
                    Ok(Settled::NotQueued) => return Exit::Lost,
                    Ok(Settled::Declined(limit)) => return Exit::Quota(limit),
                    Err(e) => return Exit::Store(e),
                }
            }
        }
    }
}

/// Keeps the job ours; an exit when it no longer is (cancelled, or taken over).
async fn renew_lease(inner: &Inner, job: &Job) -> Option<Exit> {
    let now = now_ms();
    match index::renew(&inner.core, &job.id, &inner.owner, now + lease_ms(inner), now).await {
        Ok(true) => None,
        Ok(false) => Some(Exit::Lost),
        // The lease outlasts a few failed renewals.
        Err(e) => {
            tracing::warn!(error = %e, job.id = %job.id, "renewing a crawl lease failed");
            None
        }
    }
}

pub fn lease_ms(inner: &Inner) -> i64 {
    i64::try_from(inner.settings.lease.as_millis()).unwrap_or(i64::MAX)
}

/// Settles a visited URL with what its page led to, charging a captured page
/// one unit as it is stored. `NotQueued` when the URL was no longer queued (the
/// job was cancelled meanwhile); `Declined` when the quotas refused the page,
/// which is then not stored.
async fn record(
    inner: &Inner,
    job: &Job,
    frontier: &mut Frontier,
    item: Item,
    visit: Visit,
) -> Result<Settled<Limit>, StoreError> {
    let now = now_ms();
    let (outcome, page, discovered) = match visit {
        Visit::Page(page) => {
            let found = page.links.iter().map(|url| (url.clone(), item.depth + 1)).collect();
            let discovered = frontier.admit(&inner.fetcher, job, found, frontier.captured + 1).await;
            let record = CrawlPage {
                seq: frontier.last_page_seq + 1,
                status: UrlState::Captured.as_str(),
                url: item.url.clone(),
                final_url: page.final_url.into(),
                depth: item.depth,
                http_status: page.status,
                title: page.title,
                content: page.content,
                links: page.links.into_iter().map(String::from).collect(),
                token_count: i64::try_from(page.token_count).unwrap_or(i64::MAX),
                raw_token_count: i64::try_from(page.raw_token_count).unwrap_or(i64::MAX),
            };
            ((UrlState::Captured, None), Some(record), discovered)
        }
        Visit::Failed(FetchError::RobotsDisallowed) => {
            ((UrlState::Excluded, Some(Exclusion::Robots.as_str())), None, Vec::new())
        }
        Visit::Failed(e) => ((UrlState::Failed, Some(e.code())), None, Vec::new()),
        Visit::Crashed => ((UrlState::Failed, Some("internal_error")), None, Vec::new()),
    };
    // Charged once however often the write is tried.
    let charged = AtomicBool::new(false);
    let gate = || async {
        match &page {
            Some(page) if !charged.load(Ordering::SeqCst) => {
                let counted: Result<(), Limit> = charge(inner, job, page.seq).await;
                charged.store(counted.is_ok(), Ordering::SeqCst);
                counted
            }
            _ => Ok(()),
        }
    };
    let settled =
        retry(|| store::settle(&job.db, &job.id, &item.url, outcome, page.as_ref(), &discovered, now, gate)).await?;
    if settled == Settled::Done {
        if page.is_some() {
            frontier.captured += 1;
            frontier.last_page_seq += 1;
        }
        frontier.commit(&discovered);
    }
    Ok(settled)
}

/// Charges the job's page `seq` one unit against the tenant's quotas, and
/// records it for the ledger; the quota that refused it otherwise.
async fn charge(inner: &Inner, job: &Job, seq: i64) -> Result<(), Limit> {
    let record = UsageRecord {
        id: format!("{}:{seq}", job.id),
        tenant_id: job.tenant.clone(),
        key_id: job.created_by.clone(),
        units: 1,
        at: now_ms(),
        source: "crawl".to_owned(),
    };
    match inner.limits.charge(&record, &job.quota.policy()).await {
        Charged::Counted { .. } => Ok(()),
        Charged::Refused(limit) => Err(limit),
    }
}

/// A storage write, tried again after a short pause when the database was unavailable.
async fn retry<T, F, Fut>(mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        match write().await {
            Err(StoreError::Unavailable(_)) if attempt < 3 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Records how the job ended.
async fn conclude(inner: &Inner, job: &Job, frontier: &Frontier, exit: Exit) -> Result<(), StoreError> {
    let (db, id, now) = (&job.db, job.id.as_str(), now_ms());
    let stop = match &exit {
        Exit::Quota(limit) => Some(Stop::quota(*limit)),
        _ => None,
    };
    match exit {
        Exit::Done | Exit::Quota(_) => {
            // What is still queued was left for want of budget (or of units).
            store::settle_queued(db, id, UrlState::OverBudget).await?;
            let status = if frontier.captured == 0 { JobStatus::Failed } else { JobStatus::Completed };
            if store::finish_job(db, id, status, stop.as_ref(), now).await? {
                index::finish(&inner.core, id, status.as_str(), now).await?;
                let reason = stop.as_ref().and_then(|s| s.policy.as_deref()).unwrap_or("done");
                tracing::info!(job.id = %id, tenant.id = %job.tenant, pages = frontier.captured, status = status.as_str(), reason, "crawl finished");
            }
        }
        Exit::Cancelled => {
            store::finish_job(db, id, JobStatus::Cancelled, None, now).await?;
            store::settle_queued(db, id, UrlState::Cancelled).await?;
            index::finish(&inner.core, id, JobStatus::Cancelled.as_str(), now).await?;
        }
        Exit::Halted => index::release(&inner.core, id, &inner.owner, now).await?,
        Exit::Lost => {
            let status = store::find_job(db, id).await?.map(|j| j.status);
            if status == Some(JobStatus::Cancelled) {
                store::settle_queued(db, id, UrlState::Cancelled).await?;
            }
        }
        Exit::Store(e) => {
            tracing::warn!(error = %e, job.id = %id, tenant.id = %job.tenant, "crawl storage failed; the job will be resumed");
            index::release(&inner.core, id, &inner.owner, now).await?;
        }
    }
    Ok(())
}

/// Fetches and extracts one page.
async fn visit(fetcher: Fetcher, url: String, options: PageOptions) -> Visit {
    let request =
        FetchRequest { url, respect_robots: options.respect_robots, accept: Accept::Html, ..Default::default() };
    let page = match fetcher.fetch(&request).await {
        Ok(page) => page,
        Err(e) => return Visit::Failed(e),
    };
    // Parsing and counting tokens is CPU work: off the async threads.
    match tokio::task::spawn_blocking(move || read_page(&page, options)).await {
        Ok(captured) => Visit::Page(Box::new(captured)),
        Err(_) => Visit::Crashed,
    }
}

fn read_page(page: &anno_fetch::Page, options: PageOptions) -> Captured {
    let content_type = page.content_type.as_deref();
    let links = links::page_links(&page.body, content_type, &page.final_url);
    let extract_options = anno_extract::Options {
        main_content: options.only_main_content,
        max_tokens: options.max_tokens.map(|n| n as usize),
        ..anno_extract::Options::default()
    };
    let doc = anno_extract::extract(&page.body, page.final_url.as_str(), content_type, &extract_options);
    let (content, token_count, raw_token_count) = match doc.tokens {
        Some(tokens) => (doc.markdown, tokens.markdown, tokens.raw),
        // Not HTML: plain text is its own content; anything else has none.
        None => {
            let plain = content_type.is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/plain"));
            let text = match plain {
                true => String::from_utf8_lossy(&page.body[..page.body.len().min(MAX_TEXT_CONTENT)]).into_owned(),
                false => String::new(),
            };
            let count = anno_extract::tokens::count(&text);
            (text, count, count)
        }
    };
    Captured {
        final_url: page.final_url.clone(),
        status: page.status,
        title: doc.metadata.title,
        content,
        links,
        token_count,
        raw_token_count,
    }
}
