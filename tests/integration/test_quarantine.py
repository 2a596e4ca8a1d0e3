"""Issue #20 §2, §4: a row a background job cannot process is set aside alone; operators re-drive it.

The outbox relay on a broker of the test's own (no service consumes it), a schema of its own.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared import db as shared_db
from shared import embedded, outbox, quarantine, topics
from shared.broker import ensure_topics, make_relay
from shared.envelope import new_message
from shared.health import JobHealth
from shared.relay import OutboxRelay
from shared.settings import Settings
from shared.testing import EventLog
from tools import quarantine as tool

TOPIC = topics.REFERRALS_EVENTS


@pytest.fixture
async def relay(infra, own_broker) -> AsyncIterator[tuple[Settings, asyncpg.Pool, OutboxRelay, JobHealth]]:
    schema = f"quarantine_{uuid.uuid4().hex[:8]}"
    settings = Settings(service_name=schema, kafka_bootstrap_servers=embedded.bootstrap_of(own_broker[0]),
                        database_url=infra.dsn, outbox_poll_seconds=0.1)
    pool = await shared_db.open_pool(infra.dsn, schema)
    await shared_db.migrate(pool, schema, Path("/nonexistent"))
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    health = JobHealth(schema)
    try:
        yield settings, pool, make_relay(pool, producer, settings, health), health
    finally:
        await producer.stop()
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


def _event(note: str, padding: int = 0) -> outbox.Outgoing:
    message = new_message("referral.accepted", "quarantine-test", {"referral_id": note, "padding": "y" * padding},
                          subject=str(uuid.uuid4()))
    return outbox.Outgoing.event(TOPIC, message.subject, message)


async def test_a_row_kafka_refuses_is_set_aside_and_the_rows_after_it_are_published(relay):
    """Over max_request_size Kafka never takes it: before, the relay retried it forever and published nothing
    else; now it moves to dead_letters (its .dlq copy truncated), and the rows before and after it go out."""
    settings, pool, relay_, health = relay
    before, after = _event("before"), _event("after")
    too_big = _event("too big", padding=2_000_000)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, [before, too_big, after])
    async with EventLog(settings.kafka_bootstrap_servers, [TOPIC, topics.dlq(TOPIC)], from_beginning=True) as log:
        task = asyncio.create_task(relay_.run())
        try:
            await log.wait_for(lambda s: s.topic == TOPIC, count=2, timeout=30)
            [copy] = await log.wait_for(lambda s: s.topic == topics.dlq(TOPIC), timeout=30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    published = [s.value for s in log.matching(lambda s: s.topic == TOPIC)]
    # in order; a row sent in the refused round may go out twice (at least once: inboxes drop the copy)
    assert list(dict.fromkeys(published)) == [before.value, after.value]
    assert copy.headers["dlq_error"] == "publish refused: MessageSizeTooLargeError"
    assert copy.headers["dlq_job"] == "outbox-relay" and copy.headers["dlq_truncated"] == "true"
    letter = await pool.fetchrow("SELECT * FROM dead_letters")
    assert letter["value"] == too_big.value and letter["topic"] == TOPIC and letter["key"] == too_big.key
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    assert health.failing() == {}


async def test_an_operator_lists_redrives_and_discards_dead_letters(relay):
    """The runbook's steps (deploy/runbooks/quarantine.md): list shows ids and reasons without values; a
    re-drive publishes the original bytes to the topic and records who did it; a discard records why."""
    settings, pool, _, _ = relay
    fixed, junk = _event("fixed"), _event("junk")
    async with pool.acquire() as conn, conn.transaction():
        for message in (fixed, junk):
            await _set_aside(conn, message, settings.service_name)
    conn = await tool.connect(settings)
    try:
        listed = await tool.open_letters(conn)
        assert [r["error"] for r in listed] == ["handler failed: KeyError"] * 2
        async with EventLog(settings.kafka_bootstrap_servers, [TOPIC]) as log:
            await tool.redrive(conn, settings, listed[0]["id"], by="ops-1")
            [again] = await log.wait_for(lambda s: s.topic == TOPIC, timeout=30)
        await tool.discard(conn, listed[1]["id"], "producer's test data", by="ops-2")
        assert await tool.open_letters(conn) == []
        resolved = await tool.open_letters(conn, include_resolved=True)
    finally:
        await conn.close()
    assert again.value == fixed.value and "dlq_error" not in again.headers
    assert [(r["resolution"], r["resolved_by"]) for r in resolved] == [
        ("redriven", "ops-1"), ("discarded: producer's test data", "ops-2")]
    with pytest.raises(SystemExit):
        await _redrive_twice(settings, listed[0]["id"])


async def _set_aside(conn: asyncpg.Connection, message: outbox.Outgoing, service: str) -> None:
    await quarantine.set_aside(conn, quarantine.DeadLetter(
        job=TOPIC, kind="message", topic=TOPIC, key=message.key, value=message.value, error="handler failed: KeyError",
        headers={**message.headers, "dlq_original_topic": TOPIC}), service, copy_to_dlq=False)


async def _redrive_twice(settings: Settings, letter_id: int) -> None:
    conn = await tool.connect(settings)
    try:
        await tool.redrive(conn, settings, letter_id, by="ops-1")
    finally:
        await conn.close()
