-- Timers this service asked the scheduler for (R-S1, R-K6): the latest timer.set per key, so a
-- timer.due caused by an older set (moved since) or by a cancelled timer is recognised as stale.
CREATE TABLE timers (
    key             text PRIMARY KEY,
    step_id         uuid NOT NULL REFERENCES steps,
    kind            text NOT NULL,
    due_at          timestamptz NOT NULL,
    set_message_id  uuid NOT NULL,
    set_at          timestamptz NOT NULL
);
CREATE INDEX timers_step ON timers (step_id);
