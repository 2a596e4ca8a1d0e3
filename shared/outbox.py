"""The transactional outbox and the relay that publishes it to Kafka after commit."""

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from shared import audit, metrics
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
    """Queue the messages for the relay and audit the events among them, in the caller's transaction."""
    messages = list(messages)
    await conn.executemany(
        "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4)",
        [(m.topic, m.key, m.value, m.headers) for m in messages],
    )
    await audit.record(conn, [(m.topic, m.value) for m in messages])


class BrokerLog(Protocol):
    """What the relay asks the broker besides publishing (shared/broker.py BrokerLogWatch)."""

    async def end_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]: ...

    async def recreate_topics(self) -> None: ...

    async def close(self) -> None: ...


RELAY_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
# the most recent published rows compared with the broker's end offsets; one partition that went back is enough
LOG_CHECK_ROWS = 2000
PRUNE_BATCH = 5000


class OutboxRelay:
    """Publishes outbox rows in seq order; one relay per service holds the lock at a time.

    A published row is kept for `retention_seconds` (0: deleted at once) with the partition and
    offset it landed at. The broker lost its log (the embedded Tansu keeps nothing across a
    restart) when a partition's end offset is at or below the start of what the relay recently
    published there, or when a publish lands at a lower offset than an earlier one: every retained
    row is then published again, in seq order, and consumers drop the copies through their inbox.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        schema: str,
        *,
        poll_seconds: float = 0.5,
        batch_size: int = 500,
        linger_seconds: float = 0.005,
        retention_seconds: float = 0.0,
        broker_log: BrokerLog | None = None,
        log_check_seconds: float = 5.0,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._schema = schema
        self._poll = poll_seconds
        self._batch = batch_size
        self._linger = linger_seconds
        self._retention = retention_seconds
        self._broker_log = broker_log if retention_seconds > 0 else None
        self._check_every = log_check_seconds
        self._next_check = 0.0
        self._next_prune = 0.0
        self._highest: dict[tuple[str, int], int] = {}  # per partition, an offset the broker already acknowledged
        self._went_back = False
        self._wake = asyncio.Event()
        self.published = 0
        self.republished = 0

    async def run(self) -> None:
        """Relay until cancelled; a lost database or broker connection is re-established, never fatal."""
        try:
            while True:
                try:
                    async with self._pool.acquire() as listener:
                        await listener.add_listener(f"{self._schema}_outbox", self._on_notify)
                        try:
                            await self._loop(listener)
                        finally:
                            if not listener.is_closed():
                                await listener.remove_listener(f"{self._schema}_outbox", self._on_notify)
                except RELAY_ERRORS as exc:
                    log.warning("outbox listener lost, reconnecting", extra={"error": type(exc).__name__})
                    await asyncio.sleep(self._poll)
        finally:
            if self._broker_log is not None:
                await self._broker_log.close()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _loop(self, listener: asyncpg.Connection) -> None:
        while not listener.is_closed():
            try:
                sent = await self.relay_once()
                await self._housekeeping()
            except RELAY_ERRORS as exc:
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

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._broker_log is not None and (self._went_back or now >= self._next_check):
            self._next_check = now + self._check_every
            await self.check_broker_log()
        if self._retention > 0 and now >= self._next_prune:
            self._next_prune = now + min(60.0, self._retention / 10)
            await self.prune()

    async def _locked(self, conn: asyncpg.Connection) -> bool:
        # advisory lock: one relay per service at a time keeps per-key order
        return await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", f"outbox:{self._schema}")

    async def relay_once(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._locked(conn):
                return 0
            rows = await conn.fetch(
                "SELECT seq, topic, key, value, headers FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1",
                self._batch,
            )
            if rows:
                landed = await self._publish(rows)
                await self._mark_published(conn, rows, landed)
            backlog = (await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                       if len(rows) == self._batch else 0)
        metrics.OUTBOX_BACKLOG.labels(self._schema).set(backlog)
        self.published += len(rows)
        metrics.OUTBOX_PUBLISHED.labels(self._schema).inc(len(rows))
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> list[RecordMetadata]:
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
        landed = list(await asyncio.gather(*futures))
        for meta in landed:
            where = (meta.topic, meta.partition)
            if meta.offset < self._highest.get(where, -1):
                self._went_back = True  # offsets only grow on a broker that kept its log
            self._highest[where] = max(meta.offset, self._highest.get(where, -1))
        return landed

    async def _mark_published(self, conn: asyncpg.Connection, rows: list[asyncpg.Record],
                              landed: list[RecordMetadata]) -> None:
        seqs = [r["seq"] for r in rows]
        if self._retention <= 0:
            await conn.execute("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", seqs)
            return
        await conn.execute(
            "UPDATE outbox o SET published_at = now(), published_partition = u.landed_partition,"
            " published_offset = u.landed_offset FROM unnest($1::bigint[], $2::int[], $3::bigint[])"
            " AS u(seq, landed_partition, landed_offset) WHERE o.seq = u.seq",
            seqs, [m.partition for m in landed], [m.offset for m in landed],
        )

    async def check_broker_log(self) -> bool:
        """True when the broker lost messages it had acknowledged; the retained rows are then queued again."""
        assert self._broker_log is not None
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._locked(conn):
                return False
            published = await recent_published_offsets(conn)
            ends = await self._broker_log.end_offsets(list(published)) if published else {}
            lost = sorted({f"{t}[{p}]" for (t, p), offset in published.items() if ends.get((t, p), 0) <= offset})
            self._went_back = False
            self._highest = {} if lost else dict(published)
            if not lost:
                return False
            log.warning("the broker lost published messages: publishing the retained outbox again",
                        extra={"partitions": lost[:20], "lost_partitions": len(lost)})
            await self._broker_log.recreate_topics()
            status = await conn.execute(
                "UPDATE outbox SET published_at = NULL, published_partition = NULL, published_offset = NULL"
                " WHERE published_at IS NOT NULL")
        self.republished += int(status.split()[-1])
        self._wake.set()
        return True

    async def prune(self) -> int:
        """Delete published rows older than the retention window, a batch at a time."""
        deleted = 0
        while True:
            status = await self._pool.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE published_at IS NOT NULL"
                " AND published_at < now() - make_interval(secs => $1) LIMIT $2)",
                self._retention, PRUNE_BATCH)
            batch = int(status.split()[-1])
            deleted += batch
            if batch < PRUNE_BATCH:
                return deleted


async def recent_published_offsets(conn: asyncpg.Connection) -> dict[tuple[str, int], int]:
    """The lowest offset per partition among the most recently published retained rows.

    The lowest, not the highest: Tansu reports a partition's end offset as the last batch's first
    offset + 1, so only an end offset at or below the start of the recent window proves a lost log.
    """
    rows = await conn.fetch(
        "SELECT topic, published_partition, min(published_offset) AS lowest FROM"
        " (SELECT topic, published_partition, published_offset FROM outbox WHERE published_at IS NOT NULL"
        "  ORDER BY seq DESC LIMIT $1) recent GROUP BY 1, 2",
        LOG_CHECK_ROWS,
    )
    return {(r["topic"], r["published_partition"]): r["lowest"] for r in rows}
