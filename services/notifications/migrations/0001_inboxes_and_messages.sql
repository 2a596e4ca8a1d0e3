-- Requests and notifications delivered to a worker's or a team's inbox (R-RQ1), one row per
-- request id however often `request.raised` / `notification.sent` is delivered.
CREATE TABLE inbox_items (
    request_id      text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('request', 'notification')),
    recipient_kind  text NOT NULL CHECK (recipient_kind IN ('worker', 'team')),
    recipient_id    text NOT NULL,
    person_id       text NOT NULL,
    step_id         text NOT NULL,
    step_type       text NOT NULL,
    name            text NOT NULL,
    note            text,
    required        boolean NOT NULL DEFAULT false,
    sent_by         text NOT NULL,
    sent_at         timestamptz NOT NULL,
    state           text NOT NULL CHECK (state IN ('open', 'completed', 'read', 'withdrawn')),
    due_at          timestamptz,            -- a request is overdue after this (R-S2)
    overdue         boolean NOT NULL DEFAULT false,
    reminded_at     timestamptz,            -- set once, when the overdue reminder went out
    closed_at       timestamptz,
    closed_by       text,
    closed_reason   text,                   -- completed | step_cancelled | step_returned
    delivered_at    timestamptz NOT NULL DEFAULT now()
);
-- The inbox endpoints: open first, newest first, per recipient.
CREATE INDEX inbox_items_recipient ON inbox_items (recipient_kind, recipient_id, (state = 'open') DESC, sent_at DESC);
CREATE INDEX inbox_items_open_by_step ON inbox_items (step_id) WHERE state = 'open';

-- Messages to people (R-T4): one delivery record per source message (the unique constraint
-- makes redelivery idempotent). No address, phone number or name is stored here.
CREATE TABLE messages (
    message_id          uuid PRIMARY KEY,
    source_message_id   uuid NOT NULL UNIQUE,   -- id of the message.requested it answers
    person_id           text NOT NULL,
    team_id             text,
    reason              text NOT NULL,
    template            text NOT NULL,
    channel             text CHECK (channel IN ('email', 'sms', 'letter')),
    status              text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'queued_for_print')),
    attempts            integer NOT NULL DEFAULT 0,
    error_code          text,
    provider_ref        text,
    params              jsonb NOT NULL DEFAULT '{}'::jsonb,  -- template parameters without personal data
    requested_at        timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX messages_person ON messages (person_id, requested_at DESC);
