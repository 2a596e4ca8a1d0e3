-- Break-glass (issue #21): a command on a person allowed only because its actor gave a reason (access_reason)
-- keeps the reason here, as referrals does, with who, which command (message_id = the outcome's causationid
-- and the audit row's message_id) and when, for a read endpoint. Written in the command's transaction: a
-- refused command leaves no row.
CREATE TABLE access_reasons (
    message_id    uuid PRIMARY KEY,
    person_id     uuid NOT NULL,
    actor         text NOT NULL,
    roles         text[] NOT NULL DEFAULT '{}',
    team_ids      text[] NOT NULL DEFAULT '{}',
    command_type  text NOT NULL,
    reason        text NOT NULL,
    at            timestamptz NOT NULL
);
CREATE INDEX access_reasons_person ON access_reasons (person_id, at);
