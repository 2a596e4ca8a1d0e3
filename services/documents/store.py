"""asyncpg queries for the documents service's tables."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.documents import domain, storage

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


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


async def letter_exists(conn: Conn, message_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM letters WHERE message_id = $1", message_id))


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


@dataclass(frozen=True)
class Letter:
    """A letter queued for print (R-T4), rendered: its record and PDF bytes."""

    document_id: uuid.UUID
    person_id: str
    message_id: str
    title: str
    template: str
    reason: str
    team_id: str | None
    checked: domain.CheckedFile
    content: bytes
    queued_at: datetime
    created_by: str


async def insert_upload(conn: asyncpg.Connection, upload: Upload, stored: storage.Stored) -> None:
    await conn.execute(
        "INSERT INTO documents (document_id, person_id, kind, document_type, title, step_id, step_type,"
        " shareable, created_at, created_by) VALUES ($1, $2, 'upload', $3, $4, $5, NULL, true, $6, $7)",
        upload.document_id, upload.person_id, upload.document_type,
        upload.document_type.replace("_", " ").capitalize(), upload.step_id, upload.created_at, upload.created_by)
    await save_file(conn, upload.document_id, upload.checked, upload.filename, upload.content, stored)


async def insert_letter(conn: asyncpg.Connection, letter: Letter, stored: storage.Stored) -> bool:
    """False when the message already has its letter (a re-emitted message.sent). A message's events share
    its person's partition, so they are handled one after another; the unique index is the backstop."""
    if await letter_exists(conn, letter.message_id):
        return False
    await conn.execute(
        "INSERT INTO documents (document_id, person_id, kind, document_type, title, step_id, step_type,"
        " shareable, created_at, created_by) VALUES ($1, $2, 'letter', 'letter', $3, NULL, NULL, true, $4, $5)",
        letter.document_id, letter.person_id, letter.title, letter.queued_at, letter.created_by)
    await conn.execute(
        "INSERT INTO letters (document_id, message_id, template, reason, team_id, queued_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        letter.document_id, letter.message_id, letter.template, letter.reason, letter.team_id, letter.queued_at)
    await save_file(conn, letter.document_id, letter.checked, f"{letter.title}.pdf", letter.content, stored)
    return True


async def save_file(conn: asyncpg.Connection, document_id: uuid.UUID, checked: domain.CheckedFile, filename: str,
                    content: bytes, stored: storage.Stored) -> None:
    """The file's record: its bytes in the bytea column (DOCUMENT_STORAGE=postgres), or where the folder or
    object store already holds them (written before this transaction; see storage.keep)."""
    await conn.execute(
        "INSERT INTO document_files (document_id, content_type, size, sha256, filename, storage, storage_key,"
        " content) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        document_id, checked.content_type, checked.size, checked.sha256, filename, stored.storage, stored.key,
        content if stored.storage == "postgres" else None)


async def documents_of_person(conn: Conn, person_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT d.*, s.finished_at, s.finished_by, f.content_type, f.size, f.sha256, f.filename,"
        " l.message_id, l.printed_at"
        " FROM documents d LEFT JOIN step_snapshots s USING (document_id)"
        " LEFT JOIN document_files f USING (document_id) LEFT JOIN letters l USING (document_id)"
        " WHERE d.person_id = $1 ORDER BY d.created_at DESC, d.document_id", person_id)


async def load_document(conn: Conn, document_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT d.*, s.finished_at, s.finished_by, s.snapshot, f.content_type, f.size, f.sha256, f.filename,"
        " f.storage, f.storage_key, l.message_id, l.printed_at, l.printed_by"
        " FROM documents d LEFT JOIN step_snapshots s USING (document_id)"
        " LEFT JOIN document_files f USING (document_id) LEFT JOIN letters l USING (document_id)"
        " WHERE d.document_id = $1", document_id)


async def load_content(conn: Conn, document_id: uuid.UUID) -> bytes | None:
    """The bytes kept in PostgreSQL (storage `postgres`)."""
    content: Any = await conn.fetchval("SELECT content FROM document_files WHERE document_id = $1", document_id)
    return bytes(content) if content is not None else None


# --- letters to print (R-T4) -------------------------------------------------------------------


async def letters_to_print(conn: Conn, limit: int, person_id: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT l.*, d.person_id, d.title FROM letters l JOIN documents d USING (document_id)"
        " WHERE l.printed_at IS NULL AND ($2::text IS NULL OR d.person_id = $2)"
        " ORDER BY l.queued_at, l.document_id LIMIT $1", limit, person_id)


async def mark_printed(conn: Conn, document_id: uuid.UUID, by: str, at: datetime) -> asyncpg.Record | None:
    """The letter, marked printed now unless it was already (then as it was marked); None if no such letter."""
    await conn.execute("UPDATE letters SET printed_at = $2, printed_by = $3"
                       " WHERE document_id = $1 AND printed_at IS NULL", document_id, at, by)
    return await conn.fetchrow("SELECT l.*, d.person_id, d.title FROM letters l JOIN documents d USING (document_id)"
                               " WHERE l.document_id = $1", document_id)
