"""Outbox retention: a broker that loses its log gets the retained window again; old rows are pruned.

The relay runs against its own Tansu (restarted here, so the session's broker is untouched) and
a schema of its own in the session's PostgreSQL.
"""

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from shared import db as shared_db
from shared import embedded, outbox, topics
from shared.broker import ensure_topics, make_relay
from shared.envelope import new_message
from shared.relay import LOG_CHECK_ROWS, OutboxRelay, recent_published_offsets
from shared.settings import Settings
from shared.testing import EventLog, poll_until

pytestmark = pytest.mark.faults
EVENTS = 60
RelaySetup = tuple[Settings, asyncpg.Pool, OutboxRelay]


@pytest.fixture
async def relay_setup(infra, own_broker: list[subprocess.Popen[bytes]]) -> AsyncIterator[RelaySetup]:
    schema = f"retention_{uuid.uuid4().hex[:8]}"
    settings = Settings(service_name=schema, kafka_bootstrap_servers=embedded.bootstrap_of(own_broker[0]),
                        database_url=infra.dsn, outbox_retention_hours=1, outbox_log_check_seconds=0.5,
                        outbox_poll_seconds=0.1)
    pool = await shared_db.open_pool(infra.dsn, schema)
    await shared_db.migrate(pool, schema, Path("/nonexistent"))
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    relay = make_relay(pool, producer, settings)
    try:
        yield settings, pool, relay
    finally:
        await relay.close()
        await producer.stop()
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def _queue(pool: asyncpg.Pool, n: int, subject: str | None = None) -> list[str]:
    messages = [new_message("referral.accepted", "retention-test", {"referral_id": f"r-{i}"},
                            subject=subject or str(uuid.uuid4())) for i in range(n)]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, [outbox.Outgoing.event(topics.REFERRALS_EVENTS, m.subject, m) for m in messages])
    return [str(m.id) for m in messages]


async def _published(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")


async def test_a_broker_that_lost_its_log_gets_the_retained_outbox_again(relay_setup, own_broker):
    """Published-but-unconsumed events survive an empty broker restart: the relay sees the end offset
    fall below what it had published and publishes the retained rows again (consumers dedupe by id)."""
    settings, pool, relay = relay_setup
    running = asyncio.create_task(relay.run())
    try:
        ids = await _queue(pool, EVENTS)
        await poll_until(lambda: _count_is(pool, EVENTS), 30, "all rows published and retained")

        port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
        own_broker.append(await asyncio.to_thread(embedded.restart_broker, port))

        async def republished() -> bool:
            return relay.republished >= EVENTS

        await poll_until(republished, 60, "retained rows re-published")
        await poll_until(lambda: _count_is(pool, EVENTS), 30, "re-published rows retained again")
        async with EventLog(settings.kafka_bootstrap_servers, [topics.REFERRALS_EVENTS], from_beginning=True) as log:
            seen = await log.wait_for(lambda s: s.body.get("id") in ids, 30, count=EVENTS)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert {s.body["id"] for s in seen} == set(ids)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == EVENTS  # kept for the retention window


async def test_a_lost_log_is_noticed_when_new_messages_reached_every_partition_before_the_check(relay_setup,
                                                                                            own_broker):
    """The lost messages are published again even when, before the relay looked, new messages landed on every
    partition of the restarted broker: the window of recent rows then starts at the new rows' low offsets, below
    the broker's end, and only the publishes that went back show what was lost (fault suite, fifteenth session:
    five referral and tray messages never answered after a broker restart)."""
    settings, pool, relay = relay_setup
    before = await _queue(pool, EVENTS)
    assert await relay.relay_once() == EVENTS

    port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
    own_broker.append(await asyncio.to_thread(embedded.restart_broker, port))
    await ensure_topics(settings)
    last_before = await pool.fetchval("SELECT max(seq) FROM outbox")
    after = await _queue(pool, EVENTS)
    await poll_until(_relayed_once(relay), 60, "the new messages published to the restarted broker")
    partitions = await pool.fetchval("SELECT count(DISTINCT published_partition) FROM outbox")
    assert await pool.fetchval("SELECT count(DISTINCT published_partition) FROM outbox WHERE seq > $1",
                               last_before) == partitions, "a partition got no new row"

    assert await relay.check_broker_log()
    while await relay.relay_once():
        pass
    async with EventLog(settings.kafka_bootstrap_servers, [topics.REFERRALS_EVENTS], from_beginning=True) as log:
        seen = await log.wait_for(lambda s: s.body.get("id") in before, 30, count=EVENTS)
    assert {s.body["id"] for s in seen} == set(before)
    assert set(after) <= {s.body.get("id") for s in log.matching(lambda s: True)}


async def test_a_broker_that_kept_its_log_is_not_taken_for_one_that_lost_it(relay_setup):
    """No false alarm when the window of recent rows begins inside a partition's last batch: the embedded
    broker then answers ListOffsets with an end below the window (its last batch's first offset + 1), but the
    log still holds every message, and publishing the retained outbox again would repeat every one (the hostile
    suite, seventeenth session: each dead letter copied to a .dlq topic twice)."""
    settings, pool, relay = relay_setup
    first, rest = _keys_on_two_partitions()
    await _queue(pool, 20, subject=first)  # one produce request, one batch: offsets 0-19 of its partition
    await _queue(pool, LOG_CHECK_ROWS - 5, subject=rest)  # so the window holds only the last 5 of those 20
    while await relay.relay_once():
        pass
    home = TopicPartition(topics.REFERRALS_EVENTS,
                          await pool.fetchval("SELECT DISTINCT published_partition FROM outbox WHERE key = $1", first))
    async with pool.acquire() as conn:
        window_starts_at = (await recent_published_offsets(conn))[(home.topic, home.partition)]
    assert window_starts_at == 15
    assert await _listed_end(settings, home) <= window_starts_at, "the broker's ListOffsets answer is not short"

    assert not await relay.check_broker_log()
    assert relay.republished == 0


async def _listed_end(settings: Settings, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


def _keys_on_two_partitions() -> tuple[str, str]:
    partitioner = DefaultPartitioner()
    partitions = list(range(Settings().topic_partitions))
    first = "window-first"
    home = partitioner(first.encode(), partitions, partitions)
    rest = next(key for key in (f"window-rest-{i}" for i in range(100))
                if partitioner(key.encode(), partitions, partitions) != home)
    return first, rest


def _relayed_once(relay: OutboxRelay) -> Callable[[], Awaitable[bool]]:
    async def relayed() -> bool:
        try:
            return await relay.relay_once() > 0
        except KafkaError:  # the producer still finding the restarted broker
            return False

    return relayed


async def test_published_rows_older_than_the_retention_window_are_pruned(relay_setup):
    """The outbox cannot grow without bound: published rows past OUTBOX_RETENTION_HOURS are deleted,
    rows still to publish never are."""
    _, pool, relay = relay_setup
    await _queue(pool, 10)
    assert await relay.relay_once() == 10
    await pool.execute("UPDATE outbox SET published_at = now() - interval '2 hours'"
                       " WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT 6)")
    await pool.execute("INSERT INTO outbox (topic, key, value, created_at)"
                       " VALUES ('never.published', NULL, 'x', now() - interval '3 hours')")

    assert await relay.prune() == 6
    assert await _published(pool) == 4
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1


async def _count_is(pool: asyncpg.Pool, n: int) -> bool:
    return await _published(pool) == n
