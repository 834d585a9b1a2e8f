-- The audit trail. One row per event, in per-chain sequence; one head row per
-- chain, locked while the chain grows; one export setting per tenant.

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    -- A tenant id, or 'platform' for calls without a tenant.
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    time_ms BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    method TEXT NOT NULL,
    route TEXT,
    path TEXT NOT NULL,
    status BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    request_digest TEXT,
    request_bytes BIGINT NOT NULL,
    response_digest TEXT,
    response_bytes BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    stored_at BIGINT NOT NULL,
    UNIQUE (chain, seq)
);

CREATE INDEX audit_events_by_chain ON audit_events (chain, id);

CREATE TABLE audit_chains (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE audit_exports (
    tenant_id TEXT PRIMARY KEY,
    -- Changes with every PUT, so a delivery under an old setting cannot move the new one.
    generation TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT,
    secret TEXT,
    -- The seq of the last event delivered.
    cursor_seq BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_delivered_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
