"""The transactional outbox: messages to publish, written in the transaction that decided them.

shared/relay.py publishes them after commit.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pydantic import BaseModel

from shared import audit, topics
from shared.envelope import Envelope, new_message
from shared.events.base import Event
from shared.events.scheduler import TimerCancel, TimerSet


@dataclass(frozen=True)
class Outgoing:
    """A message to publish once the transaction that decided it commits."""

    topic: str
    key: str | None
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)
    message_id: uuid.UUID = field(default_factory=uuid.uuid4)  # the envelope's id; a .dlq copy has its own

    @classmethod
    def event(cls, topic: str, key: str | None, envelope: Envelope) -> "Outgoing":
        return cls(topic, key, envelope.to_bytes(), ce_headers(envelope), envelope.id)


@dataclass(frozen=True)
class Emitter:
    """The one way a service puts what it decided on a topic: each message in its envelope, from `source`,
    keyed (and subject) by `key`, carrying on the correlation of the message that caused it."""

    source: str

    def event(self, topic: str, data: Event, cause: Envelope | None, key: str) -> Outgoing:
        return self._event(topic, data, cause, key)

    def outcome(self, topic: str, events: Sequence[Event], cause: Envelope | None, key: str) -> list[Outgoing]:
        """The events of one outcome, each carrying `outcomecount` so a reader knows it has them all."""
        return [self._event(topic, data, cause, key, outcomecount=len(events)) for data in events]

    def command(self, topic: str, kind: str, data: BaseModel | dict[str, Any], cause: Envelope | None,
                key: str) -> Outgoing:
        return Outgoing.event(topic, key, new_message(kind, self.source, data, subject=key, cause=cause))

    def timer(self, data: TimerSet | TimerCancel, cause: Envelope | None, key: str) -> Outgoing:
        """A timer.set or timer.cancel for the scheduler."""
        return self._event(topics.SCHEDULER_TIMERS, data, cause, key)

    def _event(self, topic: str, data: Event, cause: Envelope | None, key: str, **extensions: Any) -> Outgoing:
        envelope = new_message(data.TYPE, self.source, data.envelope_data(), subject=key, cause=cause,
                               dataschema=data.dataschema())
        if extensions:
            envelope = Envelope.model_validate({**envelope.model_dump(), **extensions})
        return Outgoing.event(topic, key, envelope)


def ce_headers(envelope: Envelope) -> dict[str, str]:
    return {
        "content-type": "application/cloudevents+json",
        "ce_id": str(envelope.id),
        "ce_type": envelope.type,
    }


QUEUE = ("INSERT INTO outbox (topic, key, value, headers) SELECT t, k, v, h FROM"
         " unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[]) WITH ORDINALITY AS m(t, k, v, h, n) ORDER BY n")
# the events' audit rows go with them in the same round trip (a data-modifying WITH runs whether read or not)
QUEUE_AND_AUDIT = f"WITH queued AS ({QUEUE}) SELECT audit_append($5::text[], $6::text::jsonb)"


async def add(conn: asyncpg.Connection, messages: Iterable[Outgoing]) -> None:
    """Queue the messages for the relay, in order, and audit the events among them, in the caller's transaction
    and in one round trip."""
    messages = list(messages)
    if not messages:
        return
    columns = ([m.topic for m in messages], [m.key for m in messages], [m.value for m in messages],
               [m.headers for m in messages])
    entries = audit.entries_for((m.topic, m.value) for m in messages)
    if entries:
        await conn.execute(QUEUE_AND_AUDIT, *columns, *audit.append_arguments(entries))
    else:
        await conn.execute(QUEUE, *columns)
