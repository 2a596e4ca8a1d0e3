"""Subscribers of the documents service: a finished step becomes a document of the person (R-D1), and a
letter notifications queued for print is rendered and kept as one (R-T4)."""

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from faststream.kafka import KafkaRouter
from pydantic import BaseModel

from services.documents import domain, render, storage, store
from services.documents.clients import StepReader
from shared import inbox, metrics, outbox, topics
from shared.broker import Context, KafkaMessage, subscriber
from shared.envelope import Envelope, Undecodable, decode, parse
from shared.events.documents import DocumentRendered
from shared.events.notifications import MessageSent
from shared.events.workflow import StepFinished
from shared.readers import PersonReader

EMIT = outbox.Emitter("tessera/documents")
GROUP = "documents"
log = logging.getLogger(__name__)
router = KafkaRouter()
M = TypeVar("M", bound=BaseModel)


class StepMissing(LookupError):
    """The workflow does not know a step it said was finished: retried, then dead-lettered for a person to see."""


class PersonMissing(LookupError):
    """Referrals has no record of the person a letter is for: retried, then dead-lettered for a person to see."""


@dataclass(frozen=True)
class LetterKit:
    """What rendering a queued letter needs: the person's record, the templates, the fonts, the file store."""

    people: PersonReader
    templates: Mapping[str, domain.LetterTemplate]
    fonts: render.Fonts
    blobs: storage.BlobStore | None


@subscriber(router, GROUP, topics.WORKFLOW_EVENTS, types={StepFinished.TYPE})
async def on_workflow_event(
    msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"), steps: StepReader = Context("steps"),
) -> None:
    """`step.finished` keeps the finished form as a document; other workflow events are not ours."""
    envelope = decode(msg.body)
    if envelope.type != StepFinished.TYPE:
        return
    outcome = await keep_finished_step(pool, steps, envelope)
    metrics.MESSAGES.labels(GROUP, topics.WORKFLOW_EVENTS, outcome).inc()


async def keep_finished_step(pool: asyncpg.Pool, steps: StepReader, envelope: Envelope) -> str:
    """Read the step (outside any transaction), then inbox, document, snapshot and event in one.

    An unreachable workflow raises readers.Unavailable (a ConnectionError): the middleware retries with
    backoff and the offset is not committed, so the document is never lost.
    """
    finished = parse(StepFinished, envelope)
    step_id = _uuid(finished.step_id, "step_id")
    if await store.message_handled(pool, envelope.id) or await store.document_exists_for_step(pool, step_id):
        return "duplicate"  # no read of the workflow for a redelivery
    step = await steps.get(step_id)
    if step is None:
        raise StepMissing("the workflow has no such step")
    doc = domain.keep_finished_step(
        document_id=str(uuid.uuid4()), step_id=step_id, person_id=finished.person_id,
        step_type=finished.step_type, actor=finished.actor, finished_at=envelope.time, step=step)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.WORKFLOW_EVENTS):
            return "duplicate"
        if not await store.insert_step_document(conn, doc):
            return "duplicate"
        rendered = DocumentRendered(document_id=doc.document_id, person_id=doc.person_id, step_id=doc.step_id,
                                    step_type=doc.step_type)
        await outbox.add(conn, [EMIT.event(topics.DOCUMENTS_EVENTS, rendered, envelope, doc.person_id)])
    log.info("finished step kept as a document", extra={"document_id": doc.document_id, "step_id": step_id})
    return "handled"


@subscriber(router, GROUP, topics.NOTIFICATIONS_EVENTS, types={MessageSent.TYPE})
async def on_notifications_event(
    msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"), kit: LetterKit = Context("letter_kit"),
) -> None:
    """`message.sent` of a letter to the person queued for print is rendered and kept; other messages
    (email, SMS, copies to the referrer or representative, letters GOV.UK Notify posts) are not ours."""
    envelope = decode(msg.body)
    if envelope.type != MessageSent.TYPE or envelope.data.get("channel") != "letter" \
            or envelope.data.get("recipient", "person") != "person" \
            or envelope.data.get("status", "queued_for_print") != "queued_for_print":  # GOV.UK Notify posts its own
        return
    outcome = await keep_queued_letter(pool, kit, envelope)
    metrics.MESSAGES.labels(GROUP, topics.NOTIFICATIONS_EVENTS, outcome).inc()


async def keep_queued_letter(pool: asyncpg.Pool, kit: LetterKit, envelope: Envelope) -> str:
    """R-T4: render the letter (person from referrals, team from the event), store its PDF, then inbox,
    document, letter and `document.rendered` in one transaction. One letter per message, however delivered.

    Referrals or the file store unreachable raise a ConnectionError: retried with backoff, nothing lost.
    """
    sent = parse(MessageSent, envelope)
    if await store.message_handled(pool, envelope.id) or await store.letter_exists(pool, sent.message_id):
        return "duplicate"
    try:
        template = domain.template_for_message(kit.templates, sent.template)
    except domain.LetterUnavailable as exc:
        raise Undecodable(str(exc)) from None  # no retry can print it: dead-lettered for a person to see
    person = await kit.people.require(sent.person_id)
    if person is None:
        raise PersonMissing("referrals has no record of the letter's person")
    view = domain.message_letter_view(
        template, person, {"team_name": sent.team_name, "team_number": sent.team_number,
                   "regular_contact": sent.regular_contact},
        envelope.time.date(), person_id=sent.person_id, message_id=sent.message_id)
    letter = await _rendered(kit, envelope, sent, view)
    stored = await storage.keep(kit.blobs, letter.checked, letter.content)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.NOTIFICATIONS_EVENTS):
            return "duplicate"
        if not await store.insert_letter(conn, letter, stored):
            return "duplicate"
        rendered = DocumentRendered(document_id=str(letter.document_id), person_id=sent.person_id, kind="letter",
                                    message_id=sent.message_id)
        await outbox.add(conn, [EMIT.event(topics.DOCUMENTS_EVENTS, rendered, envelope, sent.person_id)])
    log.info("letter rendered for print", extra={"document_id": str(letter.document_id),
                                                 "message_id": sent.message_id, "missing": list(view.missing)})
    return "handled"


async def _rendered(kit: LetterKit, envelope: Envelope, sent: MessageSent, view: domain.LetterView) -> store.Letter:
    content = await asyncio.to_thread(render.render_letter, view, kit.fonts)
    checked = domain.CheckedFile("application/pdf", len(content), hashlib.sha256(content).hexdigest())
    return store.Letter(
        document_id=uuid.uuid4(), person_id=sent.person_id, message_id=sent.message_id, title=view.name,
        template=sent.template, reason=sent.reason, team_id=sent.team_id, checked=checked, content=content,
        queued_at=envelope.time, created_by=envelope.source)


def _uuid(value: str, name: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Undecodable(f"invalid {name}: not a UUID") from None
