"""The transactional outbox: messages to publish, written in the transaction that decided them.

shared/relay.py publishes them after commit.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg

from shared import audit
from shared.envelope import Envelope


@dataclass(frozen=True)
class Outgoing:
    """A message to publish once the transaction that decided it commits."""

    topic: str
    key: str | None
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def event(cls, topic: str, key: str | None, envelope: Envelope) -> "Outgoing":
        return cls(topic, key, envelope.to_bytes(), ce_headers(envelope))


def ce_headers(envelope: Envelope) -> dict[str, str]:
    return {
        "content-type": "application/cloudevents+json",
        "ce_id": str(envelope.id),
        "ce_type": envelope.type,
    }


async def add(conn: asyncpg.Connection, messages: Iterable[Outgoing]) -> None:
    """Queue the messages for the relay and audit the events among them, in the caller's transaction."""
    messages = list(messages)
    await conn.executemany(
        "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4)",
        [(m.topic, m.key, m.value, m.headers) for m in messages],
    )
    await audit.record(conn, [(m.topic, m.value) for m in messages])
