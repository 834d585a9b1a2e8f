-- A tenant's crawl jobs, every URL each discovered with its disposition, and the
-- pages captured. Ids are time-ordered (`job_…`); `seq` numbers are per job.
CREATE TABLE crawl_jobs (
    id TEXT PRIMARY KEY,
    start_url TEXT NOT NULL,
    -- The validated options, as JSON.
    options TEXT NOT NULL,
    -- maxPages after the plan's cap.
    max_pages BIGINT NOT NULL,
    status TEXT NOT NULL,
    current_url TEXT,
    sitemaps_read BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);

-- state: queued | captured | failed | excluded | over_budget | cancelled;
-- reason: the failure code or the exclusion rule.
CREATE TABLE crawl_urls (
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    seq BIGINT NOT NULL,
    depth BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    discovered_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, url)
);
CREATE UNIQUE INDEX crawl_urls_by_seq ON crawl_urls (job_id, seq);
CREATE INDEX crawl_urls_by_state ON crawl_urls (job_id, state);

-- seq: capture order, so a cursor stays valid while the crawl goes on.
CREATE TABLE crawl_pages (
    job_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    url TEXT NOT NULL,
    final_url TEXT NOT NULL,
    depth BIGINT NOT NULL,
    http_status BIGINT NOT NULL,
    title TEXT,
    content TEXT NOT NULL,
    -- JSON array of absolute URLs.
    links TEXT NOT NULL,
    token_count BIGINT NOT NULL,
    raw_token_count BIGINT NOT NULL,
    captured_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE UNIQUE INDEX crawl_pages_by_url ON crawl_pages (job_id, url);
