"""Verify before acting: a consumed message's signature is checked before its handler runs (shared/signing.py).

A command that fails gets `command.rejected` with code `unauthenticated` (the sender needs an answer); an event
goes to `<topic>.dlq` with its reason. Either way the refusal is in the audit chain and nothing else happens.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
from faststream import BaseMiddleware

from shared import audit, metrics, outbox, producers, quarantine
from shared.commands.base import CommandRejected, Reason
from shared.envelope import Envelope, Undecodable, decode
from shared.signing import Unauthenticated, Verifier, issuer_of

log = logging.getLogger(__name__)
REFUSED = "message.refused_unauthenticated"


class SignatureMiddleware(BaseMiddleware):
    """Lets a message on a signed topic reach its handler only if its producer and actor are verified."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        record = msg.raw_message
        if not producers.is_signed(record.topic):
            return await call_next(msg)
        try:
            envelope = decode(record.value)
        except Undecodable:
            return await call_next(msg)  # the handler's decode dead-letters it, naming what is wrong
        verifier: Verifier = self.context.get("verifier")
        try:
            verifier.verify(json.loads(record.value), record.topic, record.timestamp / 1000)
        except Unauthenticated as refused:
            service = self.context.get("service", "tessera")
            await refuse(self.context.get("pool"), record, envelope, refused.reason, service)
            metrics.MESSAGES.labels(service, record.topic, "unauthenticated").inc()
            return None
        return await call_next(msg)


async def refuse(pool: asyncpg.Pool, record: Any, envelope: Envelope, reason: str, service: str) -> None:
    """Answer a command `unauthenticated`, or set an event aside; audit the refusal in the same transaction."""
    async with pool.acquire() as conn, conn.transaction():
        if record.topic in producers.COMMAND_TOPICS:
            await outbox.add(conn, [_rejection(record, envelope, reason, service)])
        else:
            await quarantine.set_aside(conn, quarantine.of_record(record, f"unauthenticated: {reason}"), service)
        await audit.append(conn, [_refusal(record.topic, envelope, reason)])
    log.warning("message refused: unauthenticated", extra={
        "topic": record.topic, "message_id": str(envelope.id), "type": envelope.type[:100], "reason": reason[:200]})


def _rejection(record: Any, envelope: Envelope, reason: str, service: str) -> outbox.Outgoing:
    answer = CommandRejected.because(envelope.type[:200], [Reason(code="unauthenticated", message=reason)])
    key = record.key.decode("utf-8", "replace") if record.key is not None else envelope.subject
    return outbox.Emitter(issuer_of(service)).event(producers.ANSWERS[record.topic], answer, envelope,
                                                    key or str(envelope.id))


def _refusal(topic: str, envelope: Envelope, reason: str) -> audit.Entry:
    """Who is not known: the entry names what was claimed (type, source) and why it was refused."""
    return audit.Entry(
        at=datetime.now(UTC), actor_id="unauthenticated", actor_roles=(), action=REFUSED,
        subject=envelope.subject, object_id=None, message_id=str(envelope.id), causation_id=None,
        cause_type=envelope.type, source=envelope.source, details={"topic": topic, "reason": reason[:500]})
