-- Which crawl jobs exist and which are running, across every tenant, so that a
-- starting core can find the jobs to resume. The jobs themselves live in each
-- tenant's own storage. A running job is worked by the one core holding its lease.
CREATE TABLE crawl_index (
    job_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    status TEXT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX crawl_index_by_status ON crawl_index (status, lease_until);
