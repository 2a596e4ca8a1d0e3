"""The transactional outbox and the relay that publishes it to Kafka after commit."""

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import metrics
from shared.envelope import Envelope

log = logging.getLogger(__name__)


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
    await conn.executemany(
        "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4)",
        [(m.topic, m.key, m.value, m.headers) for m in messages],
    )


class OutboxRelay:
    """Publishes outbox rows in seq order; one relay per service holds the lock at a time."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        schema: str,
        *,
        poll_seconds: float = 0.5,
        batch_size: int = 500,
        linger_seconds: float = 0.005,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._schema = schema
        self._poll = poll_seconds
        self._batch = batch_size
        self._linger = linger_seconds
        self._wake = asyncio.Event()
        self.published = 0

    async def run(self) -> None:
        """Relay until cancelled; a lost database connection is re-established, never fatal."""
        while True:
            try:
                async with self._pool.acquire() as listener:
                    await listener.add_listener(f"{self._schema}_outbox", self._on_notify)
                    await self._loop(listener)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox listener lost, reconnecting", extra={"error": type(exc).__name__})
                await asyncio.sleep(self._poll)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _loop(self, listener: asyncpg.Connection) -> None:
        while not listener.is_closed():
            try:
                sent = await self.relay_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox relay failed, retrying", extra={"error": type(exc).__name__})
                sent = 0
                await asyncio.sleep(self._poll)
            except Exception as exc:  # a broker error: keep the rows and try again
                log.warning("outbox publish failed, retrying", extra={"error": type(exc).__name__})
                sent = 0
                await asyncio.sleep(self._poll)
            if sent < self._batch:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                    # linger: let a burst of commits gather into one publish round
                    await asyncio.sleep(self._linger)
                except TimeoutError:
                    pass

    async def relay_once(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            # advisory lock: one relay per service at a time keeps per-key order
            locked = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))", f"outbox:{self._schema}"
            )
            if not locked:
                return 0
            rows = await conn.fetch(
                "SELECT seq, topic, key, value, headers FROM outbox ORDER BY seq LIMIT $1",
                self._batch,
            )
            if rows:
                await self._publish(rows)
                await conn.execute("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows])
            backlog = await conn.fetchval("SELECT count(*) FROM outbox") if len(rows) == self._batch else 0
        metrics.OUTBOX_BACKLOG.labels(self._schema).set(backlog)
        self.published += len(rows)
        metrics.OUTBOX_PUBLISHED.labels(self._schema).inc(len(rows))
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        futures = []
        for row in rows:
            futures.append(
                await self._producer.send(
                    row["topic"],
                    value=row["value"],
                    key=row["key"].encode() if row["key"] is not None else None,
                    headers=[(k, v.encode()) for k, v in row["headers"].items()],
                )
            )
        await asyncio.gather(*futures)
