-- Who started each job, what its captured pages are charged against, and why
-- it stopped early. A job resumed after a restart has no caller to ask the
-- tenant service with, so it charges against this snapshot of the plan.
-- created_by: the API key or user id; the usage ledger credits its pages to it.
ALTER TABLE crawl_jobs ADD COLUMN created_by TEXT;
-- quota: {"unitsPerMinute", "unitsPerMonth", "concurrentRequests"} as JSON,
-- null fields unlimited; NULL for jobs made before it was kept (unlimited).
ALTER TABLE crawl_jobs ADD COLUMN quota TEXT;
-- stop_reason: `quota_exceeded` when the tenant's units ran out mid-crawl;
-- stop_policy: which quota (`units-minute`, `units-month`).
ALTER TABLE crawl_jobs ADD COLUMN stop_reason TEXT;
ALTER TABLE crawl_jobs ADD COLUMN stop_policy TEXT;
