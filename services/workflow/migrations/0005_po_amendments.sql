-- Purchase orders through their life (R-F7): an order's current terms after its amendments, and each
-- amendment once under the source key of the next action that made it ('next-action:<id>'), so a
-- redelivered command amends (and publishes) nothing again.
ALTER TABLE po_requests ADD COLUMN current jsonb;  -- null: as requested
ALTER TABLE po_requests ADD COLUMN end_reason text;
CREATE TABLE po_amendments (
    source_key     text PRIMARY KEY,
    po_request_id  uuid NOT NULL REFERENCES po_requests,
    step_id        uuid NOT NULL,
    changes        jsonb NOT NULL,
    amended_at     timestamptz NOT NULL
);
CREATE INDEX po_requests_live ON po_requests (person_id) WHERE end_requested_at IS NULL;
