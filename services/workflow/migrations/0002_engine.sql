-- The step engine (R-W4..R-W9, R-NA, R-RQ): next actions and forms on the step, requests apart.
ALTER TABLE steps
    ADD COLUMN next_actions jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN forms        jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN return_note  text;
CREATE INDEX steps_person_state ON steps (person_id, state);

ALTER TABLE workflows ADD COLUMN closed_at timestamptz;

-- Requests and notifications sent from a step (R-RQ1); a request blocks finish while open (R-RQ2).
CREATE TABLE requests (
    request_id       uuid PRIMARY KEY,
    step_id          uuid NOT NULL REFERENCES steps,
    person_id        uuid NOT NULL,
    name             text NOT NULL,
    kind             text NOT NULL,
    required         boolean NOT NULL,
    to_kind          text NOT NULL,
    to_id            text NOT NULL,
    note             text,
    state            text NOT NULL,
    sent_by          text NOT NULL,
    sent_at          timestamptz NOT NULL,
    completed_by     text,
    completed_at     timestamptz,
    completion_note  text
);
CREATE INDEX requests_step ON requests (step_id, sent_at);
CREATE INDEX requests_recipient ON requests (to_kind, to_id, state);
