-- Every change anywhere takes the next number of one platform-wide sequence:
-- replicas compare numbers to notice a change notice they missed.
CREATE TABLE config_sequence (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO config_sequence (id, seq) VALUES (1, 0);

-- The layers: `platform`, `plan:<name>`, `tenant:<id>`, and `flags` (which
-- only records the last flag change). A document holds only what the layer sets.
CREATE TABLE config_layers (
    scope TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    document TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

-- Each version of each layer and flag, as it was after the change.
CREATE TABLE config_history (
    seq BIGINT PRIMARY KEY,
    scope TEXT NOT NULL,
    version BIGINT NOT NULL,
    action TEXT NOT NULL,
    document TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE UNIQUE INDEX config_history_scope_version ON config_history (scope, version);

CREATE TABLE flags (
    flag_key TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    version BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
