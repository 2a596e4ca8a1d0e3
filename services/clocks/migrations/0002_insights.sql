-- The manager's dashboard read model (R-CL7): projections of allocation.events and clocks.events, kept by the
-- `insights` consumers. Every write is idempotent and order-tolerant (an event applied twice, or late, leaves the
-- same rows), so the tables are rebuilt by emptying them and reading the topics again from the start
-- (deploy/runbooks/insights.md); they are never written from anything but those events.
CREATE TABLE insight_tray_entries (
    entry_id        text PRIMARY KEY,
    team_id         text NOT NULL,
    person_id       text NOT NULL,
    placed_at       timestamptz,
    removed_at      timestamptz,
    next_review_at  timestamptz,
    next_review_as_of timestamptz                -- the time of the event that set next_review_at
);
CREATE INDEX insight_tray_entries_team ON insight_tray_entries (team_id) WHERE removed_at IS NULL;

-- the RAG of an entry from each event that rated it (placement, review): RAG over time without a daily job
CREATE TABLE insight_rag_changes (
    event_id   uuid PRIMARY KEY,
    entry_id   text NOT NULL,
    team_id    text NOT NULL,
    rag        text NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX insight_rag_changes_entry ON insight_rag_changes (entry_id, at);

CREATE TABLE insight_clocks (
    clock_id    text PRIMARY KEY,
    team_id     text,
    person_id   text NOT NULL,
    title       text NOT NULL,
    due_date    date,
    warned_at   timestamptz,
    breached_at timestamptz,
    stopped_at  timestamptz
);
CREATE INDEX insight_clocks_team ON insight_clocks (team_id) WHERE stopped_at IS NULL;

CREATE TABLE insight_allocations (
    relationship_id text PRIMARY KEY,
    team_id         text,
    worker_id       text NOT NULL,
    person_id       text NOT NULL,
    allocated_at    timestamptz,
    ended_at        timestamptz
);
CREATE INDEX insight_allocations_team ON insight_allocations (team_id) WHERE ended_at IS NULL;
