-- audit_append (0007) claimed a chain's head by sorting all sixteen heads on every call. Nearly always this
-- backend's own chain is free: try it first through its primary key, and sort only when it is held.
-- Everything else (what is locked, how rows are linked, what is written) is as in 0007.
CREATE OR REPLACE FUNCTION audit_append(content_hashes text[], entries jsonb) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    own integer := pg_backend_pid() % 16;
    head record;
    prevs text[] := '{}';
    links text[] := '{}';
    prev text;
    total integer := coalesce(array_length(content_hashes, 1), 0);
BEGIN
    SELECT h.chain, h.seq, h.hash INTO head FROM audit_heads h WHERE h.chain = own FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        SELECT h.chain, h.seq, h.hash INTO head FROM audit_heads h
            ORDER BY (h.chain - own + 16) % 16 LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
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
