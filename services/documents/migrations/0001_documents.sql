-- Documents of a person (R-D1, R-D2): finished steps' forms and uploaded files, in one list.
CREATE TABLE documents (
    document_id     uuid PRIMARY KEY,
    person_id       text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('form', 'upload')),
    document_type   text NOT NULL,          -- 'form' for a finished step; photo, consent_form, ... for uploads
    title           text NOT NULL,          -- the step type, or the uploaded file's type
    step_id         text,                   -- the finished step (form) or the step a file is attached to
    step_type       text,
    shareable       boolean NOT NULL,       -- only finished versions are shared (R-D1)
    created_at      timestamptz NOT NULL,
    created_by      text NOT NULL
);
-- One document per finished step, however often step.finished is delivered or re-emitted.
CREATE UNIQUE INDEX documents_one_per_finished_step ON documents (step_id) WHERE kind = 'form';
CREATE INDEX documents_of_person ON documents (person_id, created_at DESC);

-- The step as the workflow's read endpoint showed it on finishing: form, values, next actions, history.
CREATE TABLE step_snapshots (
    document_id     uuid PRIMARY KEY REFERENCES documents (document_id),
    finished_at     timestamptz NOT NULL,
    finished_by     text NOT NULL,
    pack_version    integer,
    snapshot        jsonb NOT NULL
);

-- Uploaded bytes (DOCUMENT_STORAGE=postgres). The filename may carry personal data: it stays here.
CREATE TABLE document_files (
    document_id     uuid PRIMARY KEY REFERENCES documents (document_id),
    content_type    text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    size            bigint NOT NULL CHECK (size > 0),
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    filename        text NOT NULL,
    storage         text NOT NULL DEFAULT 'postgres',
    content         bytea                   -- NULL when another storage holds the bytes
);
