-- Bytes may live outside PostgreSQL (DOCUMENT_STORAGE=folder|s3): the row keeps where, under which key.
ALTER TABLE document_files ADD COLUMN storage_key text;
ALTER TABLE document_files ADD CONSTRAINT document_files_storage_known
    CHECK (storage IN ('postgres', 'folder', 's3'));
ALTER TABLE document_files ADD CONSTRAINT document_files_bytes_somewhere
    CHECK (CASE WHEN storage = 'postgres' THEN content IS NOT NULL ELSE content IS NULL AND storage_key IS NOT NULL END);

-- Letters to people (R-T4), rendered when notifications queues one for print.
ALTER TABLE documents DROP CONSTRAINT documents_kind_check;
ALTER TABLE documents ADD CONSTRAINT documents_kind_check CHECK (kind IN ('form', 'upload', 'letter'));

CREATE TABLE letters (
    document_id     uuid PRIMARY KEY REFERENCES documents (document_id),
    message_id      text NOT NULL UNIQUE,   -- the notifications delivery record: one letter per message
    template        text NOT NULL,
    reason          text NOT NULL,
    team_id         text,
    queued_at       timestamptz NOT NULL,
    printed_at      timestamptz,
    printed_by      text
);
CREATE INDEX letters_to_print ON letters (queued_at) WHERE printed_at IS NULL;
