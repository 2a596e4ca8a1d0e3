"""The outbox relay: publishes outbox rows to Kafka in order after commit, and sets aside a row Kafka refuses."""

import asyncio
import logging
import time
from typing import Protocol

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import CorruptRecordException, InvalidTopicError, MessageSizeTooLargeError, RecordListTooLargeError
from aiokafka.structs import RecordMetadata

from shared import metrics, producers, quarantine
from shared.health import JobHealth
from shared.signing import Signer

log = logging.getLogger(__name__)

JOB = "outbox-relay"
# what Kafka says about one message, never about the broker or the connection: that row is set aside
ROW_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTopicError, CorruptRecordException,
              TypeError, ValueError, AttributeError)


class BrokerLog(Protocol):
    """What the relay asks the broker besides publishing (shared/broker.py BrokerLogWatch)."""

    async def missing(self, offsets: dict[tuple[str, int], int]) -> set[tuple[str, int]]:
        """The partitions whose log holds no message at the given offset (it ends at or before it)."""

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
        health: JobHealth | None = None,
        signer: Signer | None = None,
    ) -> None:
        self._pool = pool
        self._signer = signer
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
        self._went_back: set[str] = set()  # partitions where a publish landed below an acknowledged offset
        self._wake = asyncio.Event()
        self._health = health or JobHealth(schema)
        self._one_by_one = False  # after a batch Kafka refused: publish alone to find the row at fault
        # the last full round: published and acknowledged, marked by the next round while it publishes
        self._in_flight: list[tuple[asyncpg.Record, RecordMetadata]] = []
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
            await self.close()

    async def close(self) -> None:
        """Let go of the broker-log watch's connection (`run` does on its way out)."""
        if self._broker_log is not None:
            await self._broker_log.close()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _loop(self, listener: asyncpg.Connection) -> None:
        while not listener.is_closed():
            # cleared before the round, not after: a commit notified while the round runs wakes the next one
            self._wake.clear()
            try:
                sent = await self.relay_once()
                await self._housekeeping()
                self._health.succeeded(JOB)
            except Exception as exc:  # the database or the broker: keep the rows and try again
                log.warning("outbox relay failed, retrying", extra={"error": type(exc).__name__})
                self._health.failed(JOB, exc)
                sent = 0
                await asyncio.sleep(self._poll)
            if sent < self._batch:
                # commits notified while the round ran: a burst, whose next commits the linger gathers into one
                # round; a commit after a quiet spell goes at once
                burst = self._wake.is_set()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                    if burst:
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
        """One round: publish the next rows in seq order; the last full round's rows are marked meanwhile.

        A full round (a backlog) leaves its marking to the next round, in whose transaction it runs while
        that round's messages are on their way to the broker; a round that takes the last waiting rows
        marks them before it commits. A row is marked only once the broker has acknowledged it, so every
        row goes out at least once; rounds publish in seq order, each after the one before has landed.
        If the lock passes to another relay between a full round and its marking, that relay publishes
        those rows again (at least once: inboxes drop the copies).
        """
        try:
            return await self._round()
        except BaseException:
            self._in_flight = []  # unmarked: a later round publishes them again
            raise

    async def _round(self) -> int:
        earlier, self._in_flight = self._in_flight, []
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._locked(conn):
                return 0  # another relay holds the outbox: the unmarked rows are its to publish again
            rows = await conn.fetch(
                "SELECT seq, topic, key, value, headers FROM outbox WHERE published_at IS NULL"
                " AND seq <> ALL($2::bigint[]) ORDER BY seq LIMIT $1",
                self._batch, [row["seq"] for row, _ in earlier],
            )
            if self._one_by_one:
                await self._mark_published(conn, earlier)
                published, refused = await self._publish_one_by_one(rows)
                await self._mark_published(conn, published)
                for row, exc in refused:
                    await self._set_aside(conn, row, exc)
                marked = earlier + published
            else:
                landed = await self._publish_marking(conn, rows, earlier)
                if len(rows) == self._batch:
                    self._in_flight, marked = landed, earlier
                else:
                    await self._mark_published(conn, landed)
                    marked = earlier + landed
        self.published += len(marked)
        metrics.OUTBOX_PUBLISHED.labels(self._schema).inc(len(marked))
        return len(rows)

    async def _publish_marking(self, conn: asyncpg.Connection, rows: list[asyncpg.Record],
                               earlier: list[tuple[asyncpg.Record, RecordMetadata]]) -> list[
                                   tuple[asyncpg.Record, RecordMetadata]]:
        """Send the rows in order and mark the earlier round while they travel; each row with where it landed.

        When Kafka refuses a batch for one message's sake (too large, corrupt), the next round publishes
        every row alone, so that only the row at fault is set aside; any other failure keeps every row.
        """
        futures: list[asyncio.Future[RecordMetadata]] = []
        try:
            for row in rows:
                futures.append(await self._send(row))
            await self._mark_published(conn, earlier)
            landed = list(await asyncio.gather(*futures))
        except ROW_ERRORS:
            self._one_by_one = True  # refused before or after sending (e.g. over max_request_size): find it alone
            await asyncio.gather(*futures, return_exceptions=True)
            raise
        except BaseException:
            await asyncio.gather(*futures, return_exceptions=True)
            raise
        self._note_offsets(landed)
        return list(zip(rows, landed, strict=True))

    async def _publish_one_by_one(self, rows: list[asyncpg.Record]) -> tuple[
            list[tuple[asyncpg.Record, RecordMetadata]], list[tuple[asyncpg.Record, Exception]]]:
        """Each row sent and awaited alone: those that landed (and where), and those Kafka refused."""
        self._one_by_one = False
        published, refused = [], []
        for row in rows:
            try:
                meta = await (await self._send(row))
            except ROW_ERRORS as exc:
                refused.append((row, exc))
                continue
            published.append((row, meta))
        self._note_offsets([meta for _, meta in published])
        return published, refused

    async def _send(self, row: asyncpg.Record) -> "asyncio.Future[RecordMetadata]":
        """Signed now, not at commit: a row re-published after a broker restart gets a signature that is fresh."""
        value = row["value"]
        if self._signer is not None and producers.is_signed(row["topic"]):
            value = self._signer.signed(value)
        return await self._producer.send(
            row["topic"],
            value=value,
            key=row["key"].encode() if row["key"] is not None else None,
            headers=[(k, v.encode()) for k, v in row["headers"].items()],
        )

    def _note_offsets(self, landed: list[RecordMetadata]) -> None:
        for meta in landed:
            where = (meta.topic, meta.partition)
            if meta.offset < self._highest.get(where, -1):  # offsets only grow on a broker that kept its log
                self._went_back.add(f"{meta.topic}[{meta.partition}]")
            self._highest[where] = max(meta.offset, self._highest.get(where, -1))

    async def _set_aside(self, conn: asyncpg.Connection, row: asyncpg.Record, exc: Exception) -> None:
        """A row Kafka will never take leaves the outbox for dead_letters; the rows after it go on."""
        letter = quarantine.DeadLetter(job=JOB, kind="message", topic=row["topic"], key=row["key"],
                                       value=row["value"], headers=dict(row["headers"]),
                                       error=f"publish refused: {type(exc).__name__}")
        # a refused .dlq copy is not copied again: that would loop
        await quarantine.set_aside(conn, letter, self._schema, copy_to_dlq=not row["topic"].endswith(".dlq"))
        await conn.execute("DELETE FROM outbox WHERE seq = $1", row["seq"])

    async def _mark_published(self, conn: asyncpg.Connection,
                              landed: list[tuple[asyncpg.Record, RecordMetadata]]) -> None:
        if not landed:
            return
        seqs = [row["seq"] for row, _ in landed]
        if self._retention <= 0:
            await conn.execute("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", seqs)
            return
        await conn.execute(
            "UPDATE outbox o SET published_at = now(), published_partition = u.landed_partition,"
            " published_offset = u.landed_offset FROM unnest($1::bigint[], $2::int[], $3::bigint[])"
            " AS u(seq, landed_partition, landed_offset) WHERE o.seq = u.seq",
            seqs, [meta.partition for _, meta in landed], [meta.offset for _, meta in landed],
        )

    async def check_broker_log(self) -> bool:
        """True when the broker lost messages it had acknowledged; the retained rows are then queued again."""
        assert self._broker_log is not None
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._locked(conn):
                return False
            published = await recent_published_offsets(conn)
            gone = await self._broker_log.missing(published) if published else set()
            # a partition a publish went back on is proof alone: its recent window may hold the new broker's
            # rows, whose low offsets its end offset passes, and then hides the old ones it lost
            lost = sorted(self._went_back | {f"{t}[{p}]" for t, p in gone})
            self._went_back = set()
            self._highest = {} if lost else dict(published)
            if not lost:
                return False
            self._in_flight = []  # landed in the lost log: published again with the rest
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

    A log that still holds the window's first message kept the window. The lowest, not the highest, also
    keeps the check cheap: the broker's ListOffsets answer passes it on a healthy log, and only a partition
    whose window begins inside its last batch is fetched to be sure (shared/log_ends.py).
    """
    rows = await conn.fetch(
        "SELECT topic, published_partition, min(published_offset) AS lowest FROM"
        " (SELECT topic, published_partition, published_offset FROM outbox WHERE published_at IS NOT NULL"
        "  ORDER BY seq DESC LIMIT $1) recent GROUP BY 1, 2",
        LOG_CHECK_ROWS,
    )
    return {(r["topic"], r["published_partition"]): r["lowest"] for r in rows}
