-- Plans are data: limits and features as JSON, seeded with the defaults at start.
CREATE TABLE plans (
    name TEXT PRIMARY KEY,
    limits TEXT NOT NULL,
    features TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    plan TEXT NOT NULL REFERENCES plans (name),
    status TEXT NOT NULL,
    trial_ends_at BIGINT,
    limit_overrides TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT,
    purge_after BIGINT,
    purged_at BIGINT
);
-- One live tenant per domain; a deleted tenant's domain can be onboarded again.
CREATE UNIQUE INDEX tenants_live_domain ON tenants (domain) WHERE deleted_at IS NULL;
CREATE INDEX tenants_trials ON tenants (status, trial_ends_at);
