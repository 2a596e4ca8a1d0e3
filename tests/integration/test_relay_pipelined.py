"""Issue #18 §1: the outbox relay marks a full round while the next round's messages travel to the broker, and
still publishes every row at least once, in seq order per key. The relay on a broker of the test's own (no
service consumes it), a schema of its own, rounds of 50."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared import db as shared_db
from shared import embedded, outbox, topics
from shared.broker import ensure_topics
from shared.envelope import new_message
from shared.relay import OutboxRelay
from shared.settings import Settings
from shared.testing import EventLog

TOPIC = topics.REFERRALS_EVENTS
ROUND = 50
KEYS = [f"person-{i}" for i in range(4)]


@pytest.fixture
async def outbox_of_its_own(infra, own_broker) -> AsyncIterator[tuple[Settings, asyncpg.Pool, AIOKafkaProducer]]:
    schema = f"pipelined_{uuid.uuid4().hex[:8]}"
    settings = Settings(service_name=schema, kafka_bootstrap_servers=embedded.bootstrap_of(own_broker[0]),
                        database_url=infra.dsn)
    pool = await shared_db.open_pool(infra.dsn, schema)
    await shared_db.migrate(pool, schema, Path("/nonexistent"))
    await ensure_topics(settings, [TOPIC])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        yield settings, pool, producer
    finally:
        await producer.stop()
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


def relay_of(pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: Settings) -> OutboxRelay:
    return OutboxRelay(pool, producer, settings.schema, batch_size=ROUND, retention_seconds=3600)


async def queue(pool: asyncpg.Pool, count: int) -> dict[str, list[str]]:
    """`count` events over four keys, committed in one transaction; each key's message ids in seq order."""
    messages = [new_message("referral.accepted", "pipelined-test", {"referral_id": f"r-{i}"},
                            subject=KEYS[i % len(KEYS)]) for i in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, [outbox.Outgoing.event(TOPIC, m.subject, m) for m in messages])
    return {key: [str(m.id) for m in messages if m.subject == key] for key in KEYS}


async def unmarked(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")


def first_deliveries(log: EventLog) -> dict[str, list[str]]:
    """Each key's message ids in the order they first arrived (a copy sent again is not a new delivery)."""
    return {key: list(dict.fromkeys(s.body["id"] for s in log.matching(lambda s, k=key: s.key == k)))
            for key in KEYS}


async def test_a_full_round_is_marked_by_the_next_round_and_every_row_goes_out_once_in_order(outbox_of_its_own):
    """120 rows, rounds of 50: after the first round its 50 are on the topic but not yet marked; the second round
    marks them while publishing the next 50; the third takes the last 20 and marks everything. Each key's
    messages arrive in seq order, each once."""
    settings, pool, producer = outbox_of_its_own
    expected = await queue(pool, 120)
    relay = relay_of(pool, producer, settings)
    async with EventLog(settings.kafka_bootstrap_servers, [TOPIC], from_beginning=True) as log:
        assert await relay.relay_once() == ROUND
        await log.wait_for(lambda s: s.topic == TOPIC, count=50)
        assert await unmarked(pool) == 120, "the first round's rows were marked before the next round"
        assert await relay.relay_once() == ROUND
        assert await unmarked(pool) == 70
        assert await relay.relay_once() == 20
        assert await unmarked(pool) == 0
        await log.wait_for(lambda s: s.topic == TOPIC, count=120)
    assert first_deliveries(log) == expected
    assert len(log.seen) == 120
    assert relay.published == 120


async def test_another_relay_taking_the_lock_before_the_marking_publishes_those_rows_again(outbox_of_its_own):
    """A relay publishes a full round and stops (a crash, or another replica wins the lock before its next
    round): the second relay publishes those 50 again with the rest — at least once, nothing lost, each key in
    seq order on first delivery — and every row ends marked."""
    settings, pool, producer = outbox_of_its_own
    expected = await queue(pool, 120)
    first, second = relay_of(pool, producer, settings), relay_of(pool, producer, settings)
    async with EventLog(settings.kafka_bootstrap_servers, [TOPIC], from_beginning=True) as log:
        assert await first.relay_once() == ROUND
        while await second.relay_once():
            pass
        await log.wait_for(lambda s: s.topic == TOPIC, count=170)
    assert await unmarked(pool) == 0
    assert first_deliveries(log) == expected
    assert len(log.seen) == 170  # the first round's 50 twice
