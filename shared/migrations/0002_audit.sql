-- Audit: one row per change (an event this service publishes), written in the business
-- transaction and chained: hash = sha256(prev_hash || canonical JSON of the row), see shared/audit.py.
CREATE TABLE audit_log (
    seq           bigint PRIMARY KEY,
    at            timestamptz NOT NULL,
    actor_id      text NOT NULL,
    actor_roles   text[] NOT NULL,
    action        text NOT NULL,
    subject       text,
    object_id     text,
    message_id    uuid NOT NULL,
    causation_id  text,
    cause_type    text,
    source        text NOT NULL,
    prev_hash     text NOT NULL,
    hash          text NOT NULL
);

-- The chain's head, read under a transaction-level lock held until commit, so concurrent
-- writers append one after another. A VOLATILE plpgsql statement takes a fresh snapshot:
-- it sees a head committed while it waited for the lock.
CREATE FUNCTION audit_head(OUT seq bigint, OUT hash text) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('audit:' || current_schema()));
    SELECT a.seq, a.hash INTO seq, hash FROM audit_log a ORDER BY a.seq DESC LIMIT 1;
END $$;

-- Append-only for the application; an owner who disables this is still caught by the verify command.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
