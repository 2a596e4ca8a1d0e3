-- Inbox: ids of messages already handled, written in the same transaction as their effects.
CREATE TABLE inbox (
    message_id  uuid PRIMARY KEY,
    topic       text NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now()
);

-- Outbox: messages to publish, written in the business transaction, relayed in seq order.
CREATE TABLE outbox (
    seq         bigserial PRIMARY KEY,
    topic       text NOT NULL,
    key         text,
    value       bytea NOT NULL,
    headers     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
