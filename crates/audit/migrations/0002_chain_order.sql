-- A chain's events are listed in chain order (by seq, the UNIQUE (chain, seq)
-- index), so the index by (chain, id) is no longer read; every stored event
-- paid for keeping it.
DROP INDEX IF EXISTS audit_events_by_chain;
