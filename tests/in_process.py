"""A service's handlers called in this process (issue #16 §6): its own migrated schema on the real PostgreSQL,
messages signed by their sender, no broker.

A consumed message goes through what stands between the broker and the handler in a running service — the
dead-letter middleware (what can never be handled is set aside in `dead_letters`, a copy queued for
`<topic>.dlq`) and the signature check — and then the handler; what it decided is read back from the outbox
rows the relay would publish. Only the fetch from Kafka and the relay to it are left out: those are proved
through the real broker by each service's own integration tests.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.structs import ConsumerRecord
from faststream import ContextRepo

from shared import db, signing
from shared.broker import DeadLetterMiddleware
from shared.envelope import Envelope, new_message
from shared.identity import SignatureMiddleware
from shared.testing import KEYS_ENV, Seen, signed_as_sender
from tests.workflow_harness import Outcome

SERVICES = Path(__file__).parent.parent / "services"


async def service_pool(dsn: str, service: str) -> asyncpg.Pool:
    """A pool on the service's own schema, migrated as the service migrates it at start-up."""
    pool = await db.open_pool(dsn, service, max_size=3)
    await db.migrate(pool, service, SERVICES / service)
    return pool


@dataclass(frozen=True)
class Delivered:
    """A consumed record as a subscriber receives it (what the handlers read of faststream's KafkaMessage)."""

    raw_message: ConsumerRecord

    @property
    def body(self) -> bytes:
        return self.raw_message.value or b""


@dataclass
class Consumer:
    """One service's subscriber chain in process: dead-lettering, signature check, then `handler`."""

    pool: asyncpg.Pool
    service: str
    handler: Any
    context: dict[str, Any]

    async def deliver(self, topic: str, value: bytes, key: str | None = None, *, signed: bool = True) -> None:
        """`value` consumed from `topic`, signed by its usual sender unless `signed=False`."""
        value = signed_as_sender(topic, value) if signed else value
        record = ConsumerRecord(topic=topic, partition=0, offset=0, timestamp=int(time.time() * 1000),
                                timestamp_type=0, key=key.encode() if key else None, value=value, checksum=None,
                                serialized_key_size=-1, serialized_value_size=len(value), headers=())
        repo = ContextRepo()
        repo.set_global("pool", self.pool)
        repo.set_global("service", self.service)
        repo.set_global("verifier", signing.load_verifier(Path(os.environ[KEYS_ENV])))
        delivered = Delivered(record)

        async def handle(msg: Delivered) -> Any:
            return await self.handler(msg, pool=self.pool, **self.context)

        async def verified(msg: Delivered) -> Any:
            return await SignatureMiddleware(msg, context=repo).consume_scope(handle, msg)

        await DeadLetterMiddleware(delivered, context=repo).consume_scope(verified, delivered)

    async def send(self, topic: str, type_: str, who: dict[str, Any], *, key: str | None = None,
                   **data: Any) -> Outcome:
        """A command from the desk as `who`, handled; its one outcome as the outbox holds it."""
        envelope = new_message(type_, "test-front-end", {"actor": who, **data}, subject=key)
        await self.deliver(topic, envelope.to_bytes(), key)
        return await outcome_of(self.pool, envelope)

    async def event(self, topic: str, type_: str, source: str, data: dict[str, Any], key: str) -> Envelope:
        """An event of another service, consumed once; the envelope (to deliver again or look up)."""
        envelope = new_message(type_, source, data, subject=key)
        await self.deliver(topic, envelope.to_bytes(), key)
        return envelope


async def queued(pool: asyncpg.Pool, cause: Envelope, topic: str | None = None) -> list[Seen]:
    """What the handling of `cause` queued in the outbox (on `topic`), in order, as a reader would see it."""
    rows = await pool.fetch("SELECT seq, topic, key, value, headers FROM outbox ORDER BY seq")
    seen = [Seen(r["topic"], 0, r["seq"], r["key"], bytes(r["value"]), r["headers"], 0.0) for r in rows]
    return [s for s in seen if s.body.get("causationid") == str(cause.id) and topic in (None, s.topic)]


async def outcome_of(pool: asyncpg.Pool, command: Envelope) -> Outcome:
    """The command's answer: its events or one `command.rejected`, on the service's events topic."""
    answers = [s for s in await queued(pool, command) if s.type != "timer.set" and s.topic.endswith(".events")]
    return Outcome(command, answers)


async def set_aside_once(pool: asyncpg.Pool, topic: str, value: bytes) -> tuple[asyncpg.Record, dict[str, Any]]:
    """The one `dead_letters` row of a message consumed from `topic` and set aside, found by its bytes, and the
    headers of its one `<topic>.dlq` copy queued in the outbox."""
    [letter] = await pool.fetch("SELECT job, topic, key, error FROM dead_letters WHERE value = $1", value)
    [copy] = await pool.fetch("SELECT headers FROM outbox WHERE topic = $1 AND value = $2", f"{topic}.dlq", value)
    return letter, copy["headers"]
