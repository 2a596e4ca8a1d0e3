"""Subscribers of the workflow service: decode, call the domain, persist, emit."""

import logging
import uuid
from datetime import UTC, datetime

import asyncpg
from faststream import Context
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from services.workflow import domain, store
from shared import inbox, metrics, outbox, topics
from shared.broker import subscriber
from shared.envelope import Envelope, decode, new_message
from shared.events.referrals import ReferralAccepted
from shared.events.workflow import Assignee, StepCreated, WorkflowStarted

SOURCE = "tessera/workflow"
GROUP = "workflow"
PACK_VERSION = 1
log = logging.getLogger(__name__)
router = KafkaRouter()


@subscriber(router, GROUP, topics.REFERRALS_EVENTS)
async def on_referral_event(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """An accepted referral starts a workflow with its first step; other events are not ours."""
    envelope = decode(msg.body)
    if envelope.type != ReferralAccepted.TYPE:
        return
    accepted = ReferralAccepted.model_validate(envelope.data)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.REFERRALS_EVENTS):
            metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "duplicate").inc()
            return
        if await store.workflow_exists(conn, accepted.workflow_id):
            return
        await outbox.add(conn, await _start(conn, envelope, accepted))
    metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "handled").inc()


async def _start(conn: asyncpg.Connection, cause: Envelope, accepted: ReferralAccepted) -> list[outbox.Outgoing]:
    referral = domain.ReferralToStart(
        referral_id=accepted.referral_id, person_id=accepted.person_id,
        workflow_id=accepted.workflow_id, first_step_type=accepted.first_step_type,
        urgency=accepted.urgency, cared_for_person_id=accepted.cared_for_person_id,
    )
    workflow, step = domain.start_from_referral(
        referral, step_id=str(uuid.uuid4()), now=datetime.now(UTC), actor=f"system:{cause.source}",
        pack_version=PACK_VERSION,
    )
    await store.insert_workflow(conn, workflow)
    await store.insert_step(conn, step)
    log.info("workflow started", extra={"workflow_id": workflow.workflow_id, "step_id": step.step_id,
                                        "person_id": step.person_id})
    started = WorkflowStarted(workflow_id=workflow.workflow_id, person_id=workflow.person_id,
                              first_step_type=step.step_type, origin="referral",
                              referral_id=accepted.referral_id)
    created = StepCreated(
        step_id=step.step_id, workflow_id=step.workflow_id, person_id=step.person_id,
        step_type=step.step_type, assignee=Assignee(kind=step.assignee_kind, id=step.assignee_id),
        state="incoming", priority=step.priority, linked_person_id=step.linked_person_id,
        pack_version=step.pack_version,
    )
    return [_event(started, cause, step.person_id), _event(created, cause, step.person_id)]


def _event(data: WorkflowStarted | StepCreated, cause: Envelope, key: str) -> outbox.Outgoing:
    envelope = new_message(data.TYPE, SOURCE, data, subject=key, cause=cause, dataschema=f"{data.TYPE}/1")
    return outbox.Outgoing.event(topics.WORKFLOW_EVENTS, key, envelope)
