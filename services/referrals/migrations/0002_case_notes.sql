-- Case notes (R-P3): dated entries with a title and type, an author and workers notified.
CREATE TABLE case_notes (
    note_id            uuid PRIMARY KEY,
    person_id          uuid NOT NULL REFERENCES people,
    title              text NOT NULL,
    type               text NOT NULL,
    text               text NOT NULL,
    author             text NOT NULL,
    notify_worker_ids  text[] NOT NULL DEFAULT '{}',
    written_at         timestamptz NOT NULL
);
CREATE INDEX case_notes_person ON case_notes (person_id, written_at);

ALTER TABLE person_relationships ADD COLUMN ended_by text;
