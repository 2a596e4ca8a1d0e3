"""HTTP of the documents service: a person's documents, PDFs of forms and letters, uploads and files."""

import asyncio
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.datastructures import UploadFile
from starlette.types import Message

from services.documents import domain, render, storage, store
from services.documents.clients import StepReader
from services.documents.settings import DocumentsSettings
from shared import audit, bearer, outbox, topics
from shared.commands.base import RuleBroken
from shared.events.documents import DocumentAttached
from shared.readers import PersonReader, Unavailable

router = APIRouter(tags=["documents"])
log = logging.getLogger(__name__)
SOURCE = "tessera/documents"
EMIT = outbox.Emitter(SOURCE)
UPLOAD_REFUSAL_STATUS = {"empty": 422, "too_large": 413, "unsupported": 415}
# multipart framing and the small form fields around the file
FORM_OVERHEAD_BYTES = 64 * 1024
PRIVATE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass
class Deps:
    """What the endpoints reach: the other services' reads, the fonts, the letter templates, the limits."""

    settings: DocumentsSettings
    steps: StepReader
    people: PersonReader
    fonts: render.Fonts
    letters: dict[str, domain.LetterTemplate]
    blobs: storage.BlobStore | None = None


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _deps(request: Request) -> Deps:
    return request.app.state.deps


def _pdf(content: bytes, filename: str) -> Response:
    headers = {**PRIVATE, "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename)}"}
    return Response(content, media_type="application/pdf", headers=headers)


def _item(row: asyncpg.Record) -> dict[str, Any]:
    document_id = str(row["document_id"])
    form = row["kind"] == "form"
    return {
        "document_id": document_id, "person_id": row["person_id"], "kind": row["kind"],
        "document_type": row["document_type"], "title": row["title"],
        "step_id": row["step_id"], "step_type": row["step_type"], "shareable": row["shareable"],
        "created_at": row["created_at"].isoformat(), "created_by": row["created_by"],
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
        "finished_by": row["finished_by"],
        "content_type": "application/pdf" if form else row["content_type"],
        "size": row["size"], "sha256": row["sha256"], "filename": row["filename"],
        "pdf": f"/documents/{document_id}.pdf" if form or row["content_type"] == "application/pdf" else None,
        "file": f"/documents/{document_id}",
        "message_id": row["message_id"],  # letters: the message to the person this letter is
        "printed_at": row["printed_at"].isoformat() if row["printed_at"] else None,
    }


@router.get("/people/{person_id}/documents")
async def documents_of_person(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    """R-D1, R-D2, R-T4: finished steps' forms, uploaded files and letters sent, newest first; never drafts."""
    return [_item(r) for r in await store.documents_of_person(_pool(request), str(person_id))]


async def _form_pdf(request: Request, row: asyncpg.Record) -> Response:
    deps = _deps(request)
    person = await deps.people.record(row["person_id"])
    view = domain.form_view(row["snapshot"], person=person, printed_at=datetime.now(UTC),
                            finished_at=row["finished_at"], finished_by_actor=row["finished_by"])
    content = await asyncio.to_thread(render.render_form, view, deps.fonts)
    return _pdf(content, f"{row['step_type']}.pdf")


@router.get("/documents/{document_id}.pdf")
async def document_pdf(document_id: uuid.UUID, request: Request) -> Response:
    """R-D1: the PDF of a finished step's form as it was on finishing, or an uploaded PDF as it was uploaded."""
    row = await store.load_document(_pool(request), document_id)
    if row is None:
        raise HTTPException(404, "no such document")
    bearer.require_person_of(request, row["person_id"])
    if row["kind"] == "form":
        return await _form_pdf(request, row)
    if row["content_type"] != "application/pdf":
        raise HTTPException(404, f"this document is a {row['content_type']} file, not a PDF:"
                                 f" GET /documents/{document_id}")
    return await _file(request, row)


@router.get("/documents/{document_id}")
async def document_file(document_id: uuid.UUID, request: Request) -> Response:
    """R-D2: an uploaded file's bytes as uploaded (its sniffed type); a form document's PDF."""
    row = await store.load_document(_pool(request), document_id)
    if row is None:
        raise HTTPException(404, "no such document")
    bearer.require_person_of(request, row["person_id"])
    if row["kind"] == "form":
        return await _form_pdf(request, row)
    return await _file(request, row)


async def _file(request: Request, row: asyncpg.Record) -> Response:
    try:
        content = await _stored_bytes(request, row)
    except storage.StorageUnavailable:
        raise HTTPException(503, "the file's storage cannot be read now: try again") from None
    if content is None:
        raise HTTPException(404, f"the file's bytes are not in this storage ({row['storage']})")
    if hashlib.sha256(content).hexdigest() != row["sha256"]:
        log.error("stored file does not match its sha256", extra={"document_id": str(row["document_id"])})
        raise HTTPException(500, "the stored file does not match its sha256 and is not served")
    # attachment + sandbox: a browser never runs anything from an uploaded file in our origin
    headers = {**PRIVATE, "Content-Security-Policy": "sandbox", "X-Document-SHA256": row["sha256"],
               "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row['filename'])}"}
    return Response(content, media_type=row["content_type"], headers=headers)


async def _stored_bytes(request: Request, row: asyncpg.Record) -> bytes | None:
    if row["storage"] == "postgres":
        return await store.load_content(_pool(request), row["document_id"])
    blobs = _deps(request).blobs
    if blobs is None or blobs.name != row["storage"]:
        return None  # kept under another DOCUMENT_STORAGE than this one
    return await blobs.get(row["storage_key"])


@router.get("/steps/{step_id}/document.pdf")
async def current_document(step_id: uuid.UUID, request: Request) -> Response:
    """R-D1 "output current document": the step as it is now; one not finished is marked DRAFT, and is
    never kept or listed."""
    deps = _deps(request)
    step = await _step(deps, step_id)
    bearer.require_person_of(request, step.get("person_id"))
    person = await deps.people.record(str(step.get("person_id")))
    view = domain.form_view(step, person=person, printed_at=datetime.now(UTC))
    content = await asyncio.to_thread(render.render_form, view, deps.fonts)
    prefix = "DRAFT " if view.draft else ""
    return _pdf(content, f"{prefix}{view.step_type}.pdf")


@router.get("/steps/{step_id}/letters/{letter_name}.pdf")
async def letter_pdf(step_id: uuid.UUID, letter_name: str, request: Request) -> Response:
    """R-W9: a letter the step's pack offers (e.g. Home Visit Letter), with the person's name and address and
    the step's values; the name as the pack spells it or as a slug (`home-visit-letter`)."""
    deps = _deps(request)
    step = await _step(deps, step_id)
    bearer.require_person_of(request, step.get("person_id"))
    offered = [str(f.get("name")) for f in step.get("optional_forms") or [] if f.get("kind") == "letter"]
    name = next((n for n in offered if letter_name in (n, _slug(n))), letter_name)
    try:
        person = await deps.people.require(str(step.get("person_id")))
    except Unavailable:
        raise HTTPException(503, "the person record cannot be read now (referrals): try again") from None
    if person is None:
        raise HTTPException(404, "the step's person has no record")
    try:
        view = domain.letter_view(step, name, person, deps.letters, datetime.now(UTC).date())
    except domain.LetterUnavailable as exc:
        raise HTTPException(404, f"{exc}; this step offers: {', '.join(offered) or 'no letters'}") from None
    content = await asyncio.to_thread(render.render_letter, view, deps.fonts)
    return _pdf(content, f"{name}.pdf")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


async def _step(deps: Deps, step_id: uuid.UUID) -> dict[str, Any]:
    try:
        step = await deps.steps.get(str(step_id))
    except Unavailable:
        raise HTTPException(503, "the step cannot be read now (workflow): try again") from None
    if step is None:
        raise HTTPException(404, "no such step")
    return step


# --- uploads (R-D2) ----------------------------------------------------------------------------


@router.post("/people/{person_id}/documents", status_code=201)
async def upload(person_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """R-D2: attach a file made outside the system (multipart: `file`, `type`, optional `step_id`). Who uploads
    is the worker of the bearer token, never a form field. The type is sniffed from the bytes; the file name and
    declared content type are not trusted. Emits `document.attached` (no bytes, no file name)."""
    actor = _worker(request, "an upload")
    deps = _deps(request)
    limit = deps.settings.upload_max_bytes
    form = await (await _capped(request, limit + FORM_OVERHEAD_BYTES)).form(max_files=1, max_fields=10)
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise HTTPException(422, "no file: send it as the multipart part named 'file'")
    document_type = _field(form.get("type"))
    if document_type not in domain.DOCUMENT_TYPES:
        raise HTTPException(422, f"type must be one of {', '.join(domain.DOCUMENT_TYPES)}")
    raw_step = _field(form.get("step_id"))
    try:
        step_id = str(uuid.UUID(raw_step)) if raw_step else None
    except ValueError:
        raise HTTPException(422, "step_id is not a step id (a UUID)") from None
    data = await file.read(limit + 1)
    try:
        checked = domain.check_upload(data, allowed=deps.settings.upload_allowed_types, max_bytes=limit,
                                      max_pixels=deps.settings.upload_max_image_pixels)
    except RuleBroken as refused:
        log.info("upload refused", extra={"code": refused.code})
        raise HTTPException(UPLOAD_REFUSAL_STATUS[refused.code], str(refused.reasons[0].message)) from None
    await _check_owner(deps, str(person_id), step_id)
    upload = store.Upload(
        document_id=uuid.uuid4(), person_id=str(person_id), step_id=step_id, document_type=document_type,
        filename=domain.safe_filename(file.filename, checked.content_type), checked=checked, content=data,
        created_at=datetime.now(UTC), created_by=actor)
    attached = DocumentAttached(
        document_id=str(upload.document_id), person_id=upload.person_id, step_id=step_id,
        document_type=document_type, sha256=checked.sha256, content_type=checked.content_type, size=checked.size,
        actor=actor)
    try:
        stored = await storage.keep(deps.blobs, checked, data)
    except storage.StorageUnavailable as exc:
        log.warning("upload not stored", extra={"storage": deps.settings.document_storage, "error": str(exc)})
        raise HTTPException(503, "the file could not be stored now: try again") from None
    async with _pool(request).acquire() as conn, conn.transaction():
        await store.insert_upload(conn, upload, stored)
        await outbox.add(conn, [EMIT.event(topics.DOCUMENTS_EVENTS, attached, None, upload.person_id)])
    log.info("file attached", extra={"document_id": attached.document_id, "content_type": checked.content_type,
                                     "size": checked.size})
    row = await store.load_document(_pool(request), upload.document_id)
    assert row is not None
    return _item(row)


def _worker(request: Request, act: str) -> str:
    """The worker the bearer token names: a service's own token (no worker) does no worker's act."""
    reader = bearer.reader_of(request)
    if reader.actor is None:
        raise HTTPException(403, f"{act} is a worker's act: read with the signed-in worker's token")
    return reader.worker_id


def _field(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


async def _capped(request: Request, limit: int) -> Request:
    """The request with its body read, refused with 413 past `limit` before anything is parsed or spooled."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the upload is larger than the {limit - FORM_OVERHEAD_BYTES}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"the upload is larger than the {limit - FORM_OVERHEAD_BYTES}-byte limit")
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    return Request(request.scope, replay)


async def _check_owner(deps: Deps, person_id: str, step_id: str | None) -> None:
    try:
        if await deps.people.require(person_id) is None:
            raise HTTPException(404, "no such person")
        if step_id is not None:
            step = await deps.steps.get(step_id)
            if step is None:
                raise HTTPException(404, "no such step")
            if str(step.get("person_id")) != person_id:
                raise HTTPException(422, "the step is not one of this person's steps")
    except Unavailable:
        raise HTTPException(503, "the person or step cannot be checked now: try again") from None


# --- letters to print (R-T4) -------------------------------------------------------------------


def _letter(row: asyncpg.Record) -> dict[str, Any]:
    document_id = str(row["document_id"])
    return {
        "document_id": document_id, "person_id": row["person_id"], "message_id": row["message_id"],
        "title": row["title"], "template": row["template"], "reason": row["reason"], "team_id": row["team_id"],
        "queued_at": row["queued_at"].isoformat(),
        "printed_at": row["printed_at"].isoformat() if row["printed_at"] else None, "printed_by": row["printed_by"],
        "pdf": f"/documents/{document_id}.pdf",
    }


@router.get("/letters/print-queue")
async def print_queue(request: Request, limit: int = Query(200, ge=1, le=1000),
                      person_id: str | None = None) -> list[dict[str, Any]]:
    """R-T4: letters rendered for people who are reached by post and not yet marked printed, oldest first;
    `person_id` answers "has the letter to this person gone?"."""
    return [_letter(r) for r in await store.letters_to_print(_pool(request), limit, person_id)]


@router.post("/letters/{document_id}/printed")
async def letter_printed(document_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """R-T4: business support marks a letter printed (and posted): the worker of the bearer token, recorded in the
    audit chain; marking it again changes nothing."""
    worker = _worker(request, "marking a letter printed")
    now = datetime.now(UTC)
    async with _pool(request).acquire() as conn, conn.transaction():
        row = await store.mark_printed(conn, document_id, worker, now)
        if row is None:
            raise HTTPException(404, "no such letter")
        if row["printed_at"] == now:
            await audit.append(conn, [audit.Entry(
                at=now, actor_id=f"worker:{worker}", actor_roles=tuple(sorted(bearer.reader_of(request).roles)),
                action="letter.marked_printed", subject=row["person_id"], object_id=str(document_id),
                message_id=str(uuid.uuid4()), causation_id=None, cause_type=None, source=SOURCE)])
    log.info("letter marked printed", extra={"document_id": str(document_id)})
    return _letter(row)
