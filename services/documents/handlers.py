"""Subscribers of the documents service: a finished step becomes a document of the person (R-D1)."""

import logging
import uuid
from typing import TypeVar

import asyncpg
from faststream import Context
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError

from services.documents import domain, store
from services.documents.clients import StepReader
from shared import inbox, metrics, outbox, topics
from shared.broker import subscriber
from shared.envelope import Envelope, Undecodable, decode, describe_errors, new_message
from shared.events.documents import DocumentRendered
from shared.events.workflow import StepFinished

SOURCE = "tessera/documents"
GROUP = "documents"
log = logging.getLogger(__name__)
router = KafkaRouter()
M = TypeVar("M", bound=BaseModel)


class StepMissing(LookupError):
    """The workflow does not know a step it said was finished: retried, then dead-lettered for a person to see."""


@subscriber(router, GROUP, topics.WORKFLOW_EVENTS)
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
    finished = _parse(StepFinished, envelope)
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
        await outbox.add(conn, [_event(rendered, envelope, doc.person_id)])
    log.info("finished step kept as a document", extra={"document_id": doc.document_id, "step_id": step_id})
    return "handled"


def _parse(model: type[M], envelope: Envelope) -> M:
    try:
        return model.model_validate(envelope.data)
    except ValidationError as exc:
        raise Undecodable(f"invalid {envelope.type[:100]}: {describe_errors(exc)}") from None


def _uuid(value: str, name: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Undecodable(f"invalid {name}: not a UUID") from None


def _event(event: BaseModel, cause: Envelope | None, person_id: str) -> outbox.Outgoing:
    envelope = new_message(event.TYPE, SOURCE, event, subject=person_id, cause=cause)  # type: ignore[attr-defined]
    return outbox.Outgoing.event(topics.DOCUMENTS_EVENTS, person_id, envelope)
