-- Audit appends without a row lock (issue #18 §2). 0007 claimed a chain by locking its audit_heads row FOR UPDATE
-- and moved that row on every append: a tuple lock and a new row version a transaction, about a fifth of a step
-- transaction's cost. Now a writer claims a chain with a transaction-level advisory lock (this backend's own chain
-- first; it waits only if all sixteen are held, for its own) and reads the chain's last row through its
-- (chain, chain_seq) index. audit_heads is moved by each checkpoint to the heads it records (shared/audit.py):
-- it names, for each chain, a row the chain must still reach. How rows are linked is as in 0007.
CREATE OR REPLACE FUNCTION audit_append(content_hashes text[], entries jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    own integer := pg_backend_pid() % 16;
    chains integer := hashtext('audit-chain:' || current_schema());  -- advisory locks are per database
    claimed integer;
    head_seq bigint;
    prev text;
    prevs text[] := '{}';
    links text[] := '{}';
    total integer := coalesce(array_length(content_hashes, 1), 0);
BEGIN
    FOR k IN 0 .. 15 LOOP
        IF pg_try_advisory_xact_lock(chains, (own + k) % 16) THEN
            claimed := (own + k) % 16;
            EXIT;
        END IF;
    END LOOP;
    IF claimed IS NULL THEN
        claimed := own;
        PERFORM pg_advisory_xact_lock(chains, own);
    END IF;
    -- a statement of a VOLATILE function takes a fresh snapshot: it sees the rows of whoever held the chain before
    SELECT a.chain_seq, a.hash INTO head_seq, prev FROM audit_log a
        WHERE a.chain = claimed ORDER BY a.chain_seq DESC LIMIT 1;
    IF NOT FOUND THEN  -- the chain's first row follows the head 0007 gave it (the sealed old chain's last hash)
        SELECT h.seq, h.hash INTO head_seq, prev FROM audit_heads h WHERE h.chain = claimed;
    END IF;
    FOR i IN 1 .. total LOOP
        prevs[i] := prev;
        prev := encode(sha256(convert_to(prev || ':' || claimed || ':' || (head_seq + i) || ':'
                                         || content_hashes[i], 'UTF8')), 'hex');
        links[i] := prev;
    END LOOP;
    INSERT INTO audit_log (chain, chain_seq, at, actor_id, actor_roles, action, subject, object_id, message_id,
                           causation_id, cause_type, source, prev_hash, hash, details)
    SELECT claimed, head_seq + r.i, r.at, r.actor_id, ARRAY(SELECT jsonb_array_elements_text(r.actor_roles)),
           r.action, r.subject, r.object_id, r.message_id, r.causation_id, r.cause_type, r.source, prevs[r.i],
           links[r.i], r.details
    FROM jsonb_to_recordset(entries) AS r(i integer, at timestamptz, actor_id text, actor_roles jsonb, action text,
         subject text, object_id text, message_id uuid, causation_id text, cause_type text, source text,
         details jsonb)
    ORDER BY r.i;
END $$;
