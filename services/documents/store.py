"""asyncpg queries for the documents service's tables."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.documents import domain

Conn = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True)
class Upload:
    """An uploaded file to keep: its record and bytes."""

    document_id: uuid.UUID
    person_id: str
    step_id: str | None
    document_type: str
    filename: str
    checked: domain.CheckedFile
    content: bytes
    created_at: datetime
    created_by: str


async def document_exists_for_step(conn: Conn, step_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM documents WHERE kind = 'form' AND step_id = $1", step_id))


async def message_handled(conn: Conn, message_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM inbox WHERE message_id = $1", message_id))


async def insert_step_document(conn: asyncpg.Connection, doc: domain.StepDocument) -> bool:
    """False when the step already has its document (a re-emitted step.finished)."""
    inserted = await conn.fetchval(
        "INSERT INTO documents (document_id, person_id, kind, document_type, title, step_id, step_type,"
        " shareable, created_at, created_by)"
        " VALUES ($1, $2, 'form', 'form', $3, $4, $3, true, $5, $6)"
        " ON CONFLICT (step_id) WHERE kind = 'form' DO NOTHING RETURNING 1",
        uuid.UUID(doc.document_id), doc.person_id, doc.step_type, doc.step_id, doc.finished_at, doc.finished_by)
    if not inserted:
        return False
    version = doc.snapshot.get("pack_version")
    await conn.execute(
        "INSERT INTO step_snapshots (document_id, finished_at, finished_by, pack_version, snapshot)"
        " VALUES ($1, $2, $3, $4, $5)",
        uuid.UUID(doc.document_id), doc.finished_at, doc.finished_by,
        version if isinstance(version, int) else None, dict(doc.snapshot))
    return True


async def insert_upload(conn: asyncpg.Connection, upload: Upload) -> None:
    await conn.execute(
        "INSERT INTO documents (document_id, person_id, kind, document_type, title, step_id, step_type,"
        " shareable, created_at, created_by) VALUES ($1, $2, 'upload', $3, $4, $5, NULL, true, $6, $7)",
        upload.document_id, upload.person_id, upload.document_type,
        upload.document_type.replace("_", " ").capitalize(), upload.step_id, upload.created_at, upload.created_by)
    await save_file(conn, upload)


async def save_file(conn: asyncpg.Connection, upload: Upload) -> None:
    """DOCUMENT_STORAGE=postgres: the bytes in a bytea column. Another storage writes its object first and
    records it here with `storage` set and `content` NULL, in the same transaction as the document row."""
    c = upload.checked
    await conn.execute(
        "INSERT INTO document_files (document_id, content_type, size, sha256, filename, storage, content)"
        " VALUES ($1, $2, $3, $4, $5, 'postgres', $6)",
        upload.document_id, c.content_type, c.size, c.sha256, upload.filename, upload.content)


async def documents_of_person(conn: Conn, person_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT d.*, s.finished_at, s.finished_by, f.content_type, f.size, f.sha256, f.filename"
        " FROM documents d LEFT JOIN step_snapshots s USING (document_id)"
        " LEFT JOIN document_files f USING (document_id)"
        " WHERE d.person_id = $1 ORDER BY d.created_at DESC, d.document_id", person_id)


async def load_document(conn: Conn, document_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT d.*, s.finished_at, s.finished_by, s.snapshot, f.content_type, f.size, f.sha256, f.filename"
        " FROM documents d LEFT JOIN step_snapshots s USING (document_id)"
        " LEFT JOIN document_files f USING (document_id) WHERE d.document_id = $1", document_id)


async def load_file(conn: Conn, document_id: uuid.UUID) -> bytes | None:
    """The uploaded bytes (DOCUMENT_STORAGE=postgres); another storage reads its object here."""
    content: Any = await conn.fetchval("SELECT content FROM document_files WHERE document_id = $1", document_id)
    return bytes(content) if content is not None else None
