"""KAFKA_ASSIGNMENT=all: a replica that reads every partition itself, with no group, still loses nothing.

The consumer checks its broker after every new connection (shared/every_partition.py): a broker that restarted
and forgot is read again from the beginning, even when its new log already reaches past the old position.
"""

import asyncio
import subprocess
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.conn import CloseReason

from shared import embedded, topics
from shared.broker import ensure_topics
from shared.every_partition import EveryPartition
from shared.settings import Settings
from shared.testing import EventLog, ServiceProcess, publish
from tests.factories import referral_message, unique_referral

TOPIC = "every-partition-test"
PARTITIONS = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]


async def _create_topic(bootstrap: str) -> None:
    await ensure_topics(Settings(kafka_bootstrap_servers=bootstrap, topic_partitions=len(PARTITIONS)), [TOPIC])


async def _produce(bootstrap: str, values: list[str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for number, value in enumerate(values):
            await producer.send_and_wait(TOPIC, value.encode(), partition=number % len(PARTITIONS))
    finally:
        await producer.stop()


async def _read(consumer: AIOKafkaConsumer, every: EveryPartition, count: int) -> list[str]:
    """As the subscriber reads: what came over a connection not yet checked is dropped, and read after the check."""
    values: list[str] = []
    async with asyncio.timeout(30):
        while len(values) < count:
            if every.check_due():
                await every.check()
                continue
            fetched = await consumer.getmany(timeout_ms=200)
            if every.check_due():
                continue
            values += [record.value.decode() for records in fetched.values() for record in records]
    return values


@pytest.fixture
async def consumer(own_broker: list[subprocess.Popen[bytes]]) -> AsyncIterator[AIOKafkaConsumer]:
    bootstrap = embedded.bootstrap_of(own_broker[0])
    await _create_topic(bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="every-partition-test",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    consumer.assign(PARTITIONS)
    yield consumer
    await consumer.stop()


async def test_a_broker_that_forgot_is_read_again_from_the_beginning_though_its_new_log_reaches_past_the_old_position(
        consumer: AIOKafkaConsumer, own_broker: list[subprocess.Popen[bytes]]):
    """R-C1: no referral lost to the embedded broker's restart, whose relays fill new logs before consumers return."""
    bootstrap = embedded.bootstrap_of(own_broker[0])
    every = EveryPartition(consumer)
    await _produce(bootstrap, [f"old-{n}" for n in range(10)])
    assert sorted(await _read(consumer, every, 10)) == sorted(f"old-{n}" for n in range(10))
    for partition in PARTITIONS:
        assert await every.commit(partition, 5)

    consumer.pause(*PARTITIONS)  # the consumer away while the restarted broker's log grows past offset 5
    own_broker.append(await asyncio.to_thread(embedded.restart_broker, int(bootstrap.rsplit(":", 1)[1])))
    await _create_topic(bootstrap)
    new = [f"new-{n}" for n in range(20)]
    await _produce(bootstrap, new)
    assert not await every.commit(PARTITIONS[0], 6), "a commit went to a broker not yet checked"
    consumer.resume(*PARTITIONS)

    assert sorted(await _read(consumer, every, 20)) == sorted(new)  # offsets 0-4 of each new log too


async def test_a_broken_connection_to_the_same_broker_goes_on_from_the_committed_offsets(
        consumer: AIOKafkaConsumer, own_broker: list[subprocess.Popen[bytes]]):
    bootstrap = embedded.bootstrap_of(own_broker[0])
    every = EveryPartition(consumer)
    await _produce(bootstrap, [f"first-{n}" for n in range(10)])
    await _read(consumer, every, 10)
    for partition in PARTITIONS:
        assert await every.commit(partition, 5)

    for connection in list(consumer._client._conns.values()):  # noqa: SLF001  a network blip, the broker unchanged
        connection.close(reason=CloseReason.CONNECTION_BROKEN)
    await _produce(bootstrap, [f"second-{n}" for n in range(4)])

    assert sorted(await _read(consumer, every, 4)) == sorted(f"second-{n}" for n in range(4))
    assert not every.check_due()


async def test_a_service_reading_every_partition_itself_loses_and_doubles_nothing_through_kill_9(
        infra, referrals: ServiceProcess, events: EventLog, db):
    """R-C1: kill -9 of referrals run as one replica with no group (make run's arrangement)."""
    referrals.stop()  # the session's referrals (a group member) is away while this one reads every partition
    alone = referrals.with_settings(KAFKA_ASSIGNMENT="all")
    try:
        alone.start()
        await alone.ready()
        batch = [unique_referral() for _ in range(200)]
        ids = {d["referral_id"] for d in batch}
        accepted = lambda s: s.type == "referral.accepted" and s.data["referral_id"] in ids  # noqa: E731
        await publish(infra.bootstrap, topics.REFERRALS_INTAKE,
                      [(d["referral_id"], referral_message(d).to_bytes()) for d in batch])
        await events.wait_for(accepted, timeout=60, count=20)
        alone.kill()
        alone.start()
        await alone.ready()
        await events.wait_until(lambda: {s.data["referral_id"] for s in events.matching(accepted)} == ids, 120)
        # one answer a referral (a copy of the same message, published again after the kill, is the same answer)
        answers = {(s.data["referral_id"], s.envelope.id) for s in events.matching(accepted)}
        assert sorted(referral for referral, _ in answers) == sorted(ids)
        stored = await db.fetchval("SELECT count(*) FROM referrals.referrals WHERE referral_id = ANY($1)", list(ids))
        assert stored == len(ids)
    finally:
        alone.stop()
        referrals.start()
        await referrals.ready()
