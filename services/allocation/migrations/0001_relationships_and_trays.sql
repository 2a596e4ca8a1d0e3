-- A case per person: what allocation knows from referrals, and a version that every command on the
-- person bumps under a row lock, so two managers acting on one case at once are serialised.
CREATE TABLE cases (
    person_id            uuid PRIMARY KEY,
    version              integer NOT NULL DEFAULT 0,
    urgency              text,
    service              text,
    ordinarily_resident  boolean,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- R-A1: worker relationships; open while ended_at is null.
CREATE TABLE worker_relationships (
    relationship_id  uuid PRIMARY KEY,
    person_id        uuid NOT NULL REFERENCES cases (person_id),
    worker_id        text NOT NULL,
    relationship     text NOT NULL,
    start_date       date NOT NULL,
    end_date         date,
    end_reason       text,
    created_at       timestamptz NOT NULL,
    created_by       text NOT NULL,
    ended_at         timestamptz
);
CREATE UNIQUE INDEX worker_relationships_one_open
    ON worker_relationships (person_id, worker_id, relationship) WHERE ended_at IS NULL;
CREATE INDEX worker_relationships_open_by_worker
    ON worker_relationships (worker_id) WHERE ended_at IS NULL;

-- R-A2: organisational relationships; shown until midnight (Europe/London) at the end of end_date.
CREATE TABLE org_relationships (
    relationship_id  uuid PRIMARY KEY,
    person_id        uuid NOT NULL REFERENCES cases (person_id),
    team_id          text NOT NULL,
    relationship     text NOT NULL,
    start_date       date NOT NULL,
    end_date         date,
    end_reason       text,
    created_at       timestamptz NOT NULL,
    created_by       text NOT NULL,
    ended_at         timestamptz
);
CREATE UNIQUE INDEX org_relationships_one_open
    ON org_relationships (person_id, team_id, relationship) WHERE ended_at IS NULL;
CREATE INDEX org_relationships_by_person ON org_relationships (person_id);

-- R-T1..R-T7: Planned Work Tray entries; a person is on at most one tray at a time.
-- The *_rank columns order priority/complexity (high first) and RAG (red first) for sorting.
CREATE TABLE tray_entries (
    entry_id          uuid PRIMARY KEY,
    person_id         uuid NOT NULL REFERENCES cases (person_id),
    team_id           text NOT NULL,
    priority          text NOT NULL,
    urgent            boolean NOT NULL,
    complexity        text NOT NULL,
    support           text NOT NULL,
    risk              text NOT NULL,
    rag               text NOT NULL,
    priority_rank     smallint GENERATED ALWAYS AS (CASE priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END) STORED,
    complexity_rank   smallint GENERATED ALWAYS AS (CASE complexity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END) STORED,
    rag_rank          smallint GENERATED ALWAYS AS (CASE rag WHEN 'red' THEN 0 WHEN 'amber' THEN 1 ELSE 2 END) STORED,
    rationale         text NOT NULL,
    placed_at         timestamptz NOT NULL,
    placed_by         text NOT NULL,
    next_review_at    timestamptz NOT NULL,
    review_overdue    boolean NOT NULL DEFAULT false,
    reviews           integer NOT NULL DEFAULT 0,
    last_reviewed_at  timestamptz,
    last_contacted    boolean,
    escalated_at      timestamptz,
    red_escalated     boolean NOT NULL DEFAULT false,
    removed_at        timestamptz,
    removed_reason    text,
    version           integer NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX tray_entries_one_open_per_person ON tray_entries (person_id) WHERE removed_at IS NULL;
CREATE INDEX tray_entries_open_by_team ON tray_entries (team_id, placed_at) WHERE removed_at IS NULL;
CREATE INDEX tray_entries_open_by_team_rank
    ON tray_entries (team_id, priority_rank, rag_rank, placed_at) WHERE removed_at IS NULL;
