//! What the crawl endpoints answer, in camelCase as Anno's clients read it.

use crate::crawl::options::CrawlOptions;
use crate::crawl::store::{JobRecord, JobStatus, UrlRecord, UrlState};
use anno_tenancy::rfc3339;
use serde::Serialize;

/// `202` to `POST /v1/crawl`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub job_id: String,
    pub status: &'static str,
    pub start_url: String,
    pub started_at: String,
}

/// A job as `GET /v1/crawl/{id}` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub job_id: String,
    pub status: &'static str,
    pub start_url: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub progress: Progress,
    pub urls: UrlCounts,
    pub options: CrawlOptions,
    /// Why the job ended before it ran out of pages to capture:
    /// `quota_exceeded` when the tenant's units ran out. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// The limit that stopped it (`units-minute`, `units-month`), as the
    /// `RateLimit` headers name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_policy: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Pages captured.
    pub pages_completed: u64,
    /// Pages captured, failed, or still to fetch.
    pub pages_total: u64,
    pub pages_failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_url: Option<String>,
}

/// Every discovered URL, by disposition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlCounts {
    pub discovered: u64,
    pub queued: u64,
    pub captured: u64,
    pub failed: u64,
    pub excluded: u64,
    pub over_budget: u64,
    pub cancelled: u64,
}

impl UrlCounts {
    /// Counts `n` more URLs in `state`.
    pub fn add(&mut self, state: UrlState, n: i64) {
        let n = u64::try_from(n).unwrap_or(0);
        self.discovered += n;
        match state {
            UrlState::Queued => self.queued += n,
            UrlState::Captured => self.captured += n,
            UrlState::Failed => self.failed += n,
            UrlState::Excluded => self.excluded += n,
            UrlState::OverBudget => self.over_budget += n,
            UrlState::Cancelled => self.cancelled += n,
        }
    }
}

impl Job {
    pub fn new(job: JobRecord, urls: UrlCounts) -> Job {
        let (stop_reason, stop_policy) = match job.stop {
            Some(stop) => (Some(stop.reason), stop.policy),
            None => (None, None),
        };
        Job {
            progress: Progress {
                pages_completed: urls.captured,
                pages_total: urls.captured + urls.failed + urls.queued,
                pages_failed: urls.failed,
                current_url: job.current_url.filter(|_| job.status == JobStatus::Running),
            },
            urls,
            job_id: job.id,
            status: job.status.as_str(),
            start_url: job.start_url,
            started_at: rfc3339(job.created_at),
            finished_at: job.finished_at.map(rfc3339),
            options: job.options,
            stop_reason,
            stop_policy,
        }
    }
}

/// One captured page of `GET /v1/crawl/{id}/results`, as it is stored.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrawlPage {
    /// Capture order within the job: the cursor.
    #[serde(skip)]
    pub seq: i64,
    pub url: String,
    /// Where redirects, if any, led.
    pub final_url: String,
    pub depth: u32,
    /// Always `captured`.
    pub status: &'static str,
    pub http_status: u16,
    pub title: Option<String>,
    /// The page's content as Markdown.
    pub content: String,
    /// Every absolute URL the page links to.
    pub links: Vec<String>,
    /// o200k_base tokens of `content`.
    pub token_count: i64,
    /// o200k_base tokens of the raw HTML.
    pub raw_token_count: i64,
}

/// One discovered URL of `GET /v1/crawl/{id}/urls`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrawlUrl {
    pub url: String,
    pub depth: u32,
    /// `captured`, `failed:<code>`, `excluded:<rule>`, `over_budget`, `cancelled`,
    /// or, while the job runs, `queued`.
    pub disposition: String,
}

impl From<UrlRecord> for CrawlUrl {
    fn from(u: UrlRecord) -> Self {
        let disposition = match (u.state, u.reason) {
            (state @ (UrlState::Failed | UrlState::Excluded), Some(reason)) => format!("{}:{reason}", state.as_str()),
            (state, _) => state.as_str().to_owned(),
        };
        CrawlUrl { url: u.url, depth: u.depth, disposition }
    }
}
