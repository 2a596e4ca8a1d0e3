-- Audit chains (issue #18 §2): sixteen chains instead of one, so writers no longer queue on one lock.
-- A writer claims the head of a chain no one else holds (FOR UPDATE SKIP LOCKED) and appends after it:
-- each new row links to the previous row of its own chain (chain, chain_seq). The rows written before
-- this migration keep their hashes and stay one chain (chain NULL, seq 1..n, shared/audit.py verifies
-- them as before); every new chain starts from that chain's last hash, so the old chain is sealed into
-- all of them. Checkpoints hash every chain's head now and then, each linked to the one before.
ALTER TABLE audit_log
    ADD COLUMN chain     integer,
    ADD COLUMN chain_seq bigint;

CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain, chain_seq) WHERE chain IS NOT NULL;

-- seq stays the row's identity and rough order across chains, from a sequence now (gaps after a rollback)
CREATE SEQUENCE audit_log_seq OWNED BY audit_log.seq;
SELECT setval('audit_log_seq', coalesce((SELECT max(seq) FROM audit_log), 0) + 1, false);
ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT nextval('audit_log_seq');

CREATE TABLE audit_heads (
    chain  integer PRIMARY KEY,
    seq    bigint NOT NULL,   -- chain_seq of the chain's last row; 0 before its first
    hash   text NOT NULL      -- that row's hash; before the first row, the old chain's last hash
);

INSERT INTO audit_heads (chain, seq, hash)
SELECT chain, 0, coalesce((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), repeat('0', 64))
FROM generate_series(0, 15) AS chain;

-- The head of a chain no other transaction holds, locked until commit; the one of this backend's own
-- chain first, so one connection keeps to one chain. Only if all sixteen are held does it wait (its own).
CREATE FUNCTION audit_claim_head(OUT chain integer, OUT seq bigint, OUT hash text) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    own integer := pg_backend_pid() % 16;
BEGIN
    SELECT h.chain, h.seq, h.hash INTO chain, seq, hash FROM audit_heads h
        ORDER BY (h.chain - own + 16) % 16 LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        SELECT h.chain, h.seq, h.hash INTO chain, seq, hash FROM audit_heads h WHERE h.chain = own FOR UPDATE;
    END IF;
END $$;

DROP FUNCTION audit_head();

-- Checkpoints: every chain's head at a moment, hashed and linked to the checkpoint before
-- (digest = sha256(prev_digest || canonical JSON of at and heads), shared/audit.py). A digest kept
-- outside the database proves later that no row up to those heads was changed, deleted or cut off.
CREATE TABLE audit_checkpoints (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL,
    heads        jsonb NOT NULL,      -- [[chain, chain_seq, hash], ...] by chain
    prev_digest  text NOT NULL,
    digest       text NOT NULL UNIQUE
);

CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
