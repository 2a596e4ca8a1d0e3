-- Workflows (R-W1): a chain of steps about one person.
CREATE TABLE workflows (
    workflow_id  uuid PRIMARY KEY,
    person_id    uuid NOT NULL,
    status       text NOT NULL DEFAULT 'open',
    origin       jsonb NOT NULL,
    started_at   timestamptz NOT NULL,
    started_by   text NOT NULL
);
CREATE INDEX workflows_person ON workflows (person_id);

-- Steps (R-W2, R-W3): state, assignee and form values; version for optimistic locking.
CREATE TABLE steps (
    step_id             uuid PRIMARY KEY,
    workflow_id         uuid NOT NULL REFERENCES workflows,
    person_id           uuid NOT NULL,
    linked_person_id    uuid,
    step_type           text NOT NULL,
    pack_version        integer NOT NULL,
    state               text NOT NULL,
    assignee_kind       text NOT NULL,
    assignee_id         text NOT NULL,
    priority            text NOT NULL DEFAULT 'normal',
    due_date            date,
    version             integer NOT NULL DEFAULT 1,
    values              jsonb NOT NULL DEFAULT '{}'::jsonb,
    completed_sections  integer[] NOT NULL DEFAULT '{}',
    provenance          jsonb NOT NULL,
    created_at          timestamptz NOT NULL,
    created_by          text NOT NULL,
    updated_at          timestamptz NOT NULL,
    updated_by          text NOT NULL
);
CREATE INDEX steps_person ON steps (person_id);
CREATE INDEX steps_assignee ON steps (assignee_kind, assignee_id, state);

-- Every change of a step: who, when, what (R-W2 audit).
CREATE TABLE step_history (
    entry_id    bigserial PRIMARY KEY,
    step_id     uuid NOT NULL REFERENCES steps,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    what        text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX step_history_step ON step_history (step_id, entry_id);
