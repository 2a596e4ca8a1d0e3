-- Dead letters: what a consumer or a background job set aside, with its error, so that one bad
-- message or row never blocks the rest. Durable here (the embedded broker forgets its .dlq topics
-- on restart); tools/quarantine lists, re-drives and discards them (deploy/runbooks/quarantine.md).
CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    job             text NOT NULL,          -- the consumer's topic, or the background job ("fire-due", "outbox-relay")
    kind            text NOT NULL,          -- "message": value is a message of `topic`; "timer": value is a timer row
    topic           text NOT NULL,          -- where a re-drive publishes it (a message's own topic)
    key             text,
    value           bytea NOT NULL,
    headers         jsonb NOT NULL DEFAULT '{}'::jsonb,
    error           text NOT NULL,
    set_aside_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,            -- when an operator re-drove or discarded it
    resolution      text,                   -- "redriven" | "discarded: <reason>"
    resolved_by     text                    -- the operator who did it
);
CREATE INDEX dead_letters_open ON dead_letters (set_aside_at) WHERE resolved_at IS NULL;
