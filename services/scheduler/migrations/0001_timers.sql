-- Timers waiting to fall due; a fired or cancelled timer is deleted in the transaction that
-- fires or cancels it, so the table holds only pending timers.
CREATE TABLE timers (
    key             text PRIMARY KEY,
    due_at          timestamptz NOT NULL,
    owner           text NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    subject         text NOT NULL,          -- Kafka key of the timer.due (the owner's ordering key)
    set_by          uuid NOT NULL,          -- id of the timer.set message that set it last
    correlation_id  text,
    generation      integer NOT NULL DEFAULT 1,  -- 1 when set, +1 each time it is moved
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- The firing job's claim: due_at <= now ORDER BY due_at LIMIT n FOR UPDATE SKIP LOCKED.
CREATE INDEX timers_due_at ON timers (due_at);
CREATE INDEX timers_owner_due_at ON timers (owner, due_at);

-- A controllable clock for tests: read only when SCHEDULER_TEST_CLOCK is on.
CREATE TABLE clock (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    offset_seconds  double precision NOT NULL DEFAULT 0
);
INSERT INTO clock DEFAULT VALUES;
