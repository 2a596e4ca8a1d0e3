-- Statutory clocks (R-CL1): one row per timescale of one subject (a step, a tray entry), running,
-- paused or stopped, with the definition it started with (R-CL5) and the points it has fired (R-CL6).
CREATE TABLE clocks (
    clock_id            text PRIMARY KEY,       -- uuid5 of the clock's name and subject
    name                text NOT NULL,
    definition          jsonb NOT NULL,         -- the definition as it was when the clock started
    definition_version  integer NOT NULL,       -- the clocks file's version then
    subject_key         text NOT NULL,
    person_id           text NOT NULL,
    team_id             text,
    state               text NOT NULL CHECK (state IN ('running', 'paused', 'stopped')),
    started_at          timestamptz NOT NULL,
    due_date            date NOT NULL,
    fired               text[] NOT NULL DEFAULT '{}',
    warned_at           timestamptz,
    breached_at         timestamptz,
    paused_at           timestamptz,
    paused_reason       text,
    stopped_at          timestamptz,
    stopped_by          text,
    version             integer NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX clocks_person ON clocks (person_id, started_at);
CREATE INDEX clocks_team_open ON clocks (team_id, due_date) WHERE state <> 'stopped';
