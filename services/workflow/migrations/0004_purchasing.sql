-- Purchase orders (R-F1, R-F2): the row is written in the transaction that decides the order and
-- adds it to the outbox, and `source_key` is unique (one per next action: 'next-action:<id>';
-- one PVI order per confirmed brokerage order: 'pvi:<po_request_id>'), so each order is
-- published once however often a command or a brokerage event is redelivered.
CREATE TABLE po_requests (
    po_request_id         uuid PRIMARY KEY,
    source_key            text NOT NULL UNIQUE,
    person_id             uuid NOT NULL,
    step_id               uuid NOT NULL,
    kind                  text NOT NULL,
    requested             jsonb NOT NULL,            -- the purchase_order.requested data as published
    requested_at          timestamptz NOT NULL,
    watching_provision    boolean NOT NULL DEFAULT false,  -- its 48-hour lack-of-provision timer is set
    offered_at            timestamptz,
    offered_provider      text,
    confirmed_at          timestamptz,
    confirmed_provider    text,
    confirmed_start_date  date,
    end_date              date,
    end_requested_at      timestamptz
);
CREATE INDEX po_requests_person ON po_requests (person_id, kind);

-- R-F2: people whose brokerage order had no provider offer within 48 hours; an offer removes them.
CREATE TABLE lack_of_provision (
    po_request_id  uuid PRIMARY KEY REFERENCES po_requests,
    person_id      uuid NOT NULL,
    since          timestamptz NOT NULL
);
CREATE INDEX lack_of_provision_since ON lack_of_provision (since);
