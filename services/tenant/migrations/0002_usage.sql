-- The usage ledger: each delivery once (by its id), and a daily roll-up by key.
CREATE TABLE usage_records (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    key_id TEXT,
    units BIGINT NOT NULL,
    at BIGINT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX usage_records_tenant_at ON usage_records (tenant_id, at);

CREATE TABLE usage_daily (
    tenant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    key_id TEXT NOT NULL,
    units BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, key_id)
);
