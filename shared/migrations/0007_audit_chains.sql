-- Audit chains (issue #18 §2): sixteen chains instead of one, so writers no longer queue on one lock.
-- A writer claims the head of a chain no one else holds (FOR UPDATE SKIP LOCKED) and appends after it:
-- each new row links to the previous row of its own chain (chain, chain_seq), in one call (audit_append). The rows written before
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

-- Append rows to the head of a chain no other transaction holds, locked until commit; the one of this
-- backend's own chain first, so one connection keeps to one chain. Only if all sixteen are held does it
-- wait (for its own). Each row's content hash comes from shared/audit.py (its canonical JSON); the link
-- hash = sha256(prev_hash || ':' || chain || ':' || chain_seq || ':' || content hash) is made here, so an
-- append is one round trip.
CREATE FUNCTION audit_append(content_hashes text[], entries jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    own integer := pg_backend_pid() % 16;
    head record;
    prevs text[] := '{}';
    links text[] := '{}';
    prev text;
    total integer := coalesce(array_length(content_hashes, 1), 0);
BEGIN
    SELECT h.chain, h.seq, h.hash INTO head FROM audit_heads h
        ORDER BY (h.chain - own + 16) % 16 LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        SELECT h.chain, h.seq, h.hash INTO head FROM audit_heads h WHERE h.chain = own FOR UPDATE;
    END IF;
    prev := head.hash;
    FOR i IN 1 .. total LOOP
        prevs[i] := prev;
        prev := encode(sha256(convert_to(prev || ':' || head.chain || ':' || (head.seq + i) || ':'
                                         || content_hashes[i], 'UTF8')), 'hex');
        links[i] := prev;
    END LOOP;
    INSERT INTO audit_log (chain, chain_seq, at, actor_id, actor_roles, action, subject, object_id, message_id,
                           causation_id, cause_type, source, prev_hash, hash, details)
    SELECT head.chain, head.seq + r.i, r.at, r.actor_id, ARRAY(SELECT jsonb_array_elements_text(r.actor_roles)),
           r.action, r.subject, r.object_id, r.message_id, r.causation_id, r.cause_type, r.source, prevs[r.i],
           links[r.i], r.details
    FROM jsonb_to_recordset(entries) AS r(i integer, at timestamptz, actor_id text, actor_roles jsonb, action text,
         subject text, object_id text, message_id uuid, causation_id text, cause_type text, source text,
         details jsonb)
    ORDER BY r.i;
    UPDATE audit_heads SET seq = head.seq + total, hash = prev WHERE chain = head.chain;
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
