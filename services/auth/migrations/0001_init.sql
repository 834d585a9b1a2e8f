-- API keys: only a keyed digest of the secret is stored.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    rotated_from TEXT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id);

-- Tenant users; passwords as argon2id PHC strings.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);
CREATE UNIQUE INDEX users_by_tenant_email ON users (tenant_id, email);

-- Platform admin keys: digests only.
CREATE TABLE admin_keys (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Ed25519 keys signing internal and access tokens; public halves are the JWKS.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    private_pkcs8 TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
