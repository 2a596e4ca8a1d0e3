"""Intake throughput and latency end to end, beside a raw aiokafka baseline on the same broker.

`python -m bench.intake [--referrals N]`: starts its own embedded broker and PostgreSQL, the
referrals and workflow services as processes, then prints referrals/s (burst) and p50/p99
latency (paced) from publish to `referral.accepted` and to `step.created`.
"""

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared import embedded, topics
from shared.broker import FETCH_MAX_WAIT_MS, ensure_topics
from shared.settings import Settings
from shared.testing import EventLog, ServiceProcess, free_port
from tests.factories import referral_message, unique_referral


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def burst(bootstrap: str, n: int) -> tuple[float, float]:
    """Publish n referrals at once; seconds until all are accepted and all first steps exist."""
    messages = [referral_message(unique_referral()) for _ in range(n)]
    ids = {str(m.id) for m in messages}
    async with EventLog(bootstrap, [topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS]) as log:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        start = time.monotonic()
        for m in messages:
            await producer.send(topics.REFERRALS_INTAKE, m.to_bytes(), key=m.data["referral_id"].encode())
        await producer.flush()
        await producer.stop()
        accepted = await log.wait_for(lambda s: s.type == "referral.accepted" and s.body.get("causationid") in ids,
                                      600, n)
        created = await log.wait_for(lambda s: s.type == "step.created" and s.body.get("correlationid") in ids,
                                     600, n)
    return max(s.received for s in accepted) - start, max(s.received for s in created) - start


async def paced(bootstrap: str, n: int, gap: float) -> tuple[list[float], list[float]]:
    """Publish one referral every `gap` seconds; latency of each to accepted and to step.created."""
    sent: dict[str, float] = {}
    async with EventLog(bootstrap, [topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS]) as log:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        for _ in range(n):
            m = referral_message(unique_referral())
            sent[str(m.id)] = time.monotonic()
            await producer.send_and_wait(topics.REFERRALS_INTAKE, m.to_bytes(), key=m.data["referral_id"].encode())
            await asyncio.sleep(gap)
        await producer.stop()
        accepted = await log.wait_for(lambda s: s.type == "referral.accepted" and s.body.get("causationid") in sent,
                                      120, n)
        created = await log.wait_for(lambda s: s.type == "step.created" and s.body.get("correlationid") in sent,
                                     120, n)
    return ([s.received - sent[s.body["causationid"]] for s in accepted],
            [s.received - sent[s.body["correlationid"]] for s in created])


async def raw_baseline(bootstrap: str, n: int, gap: float) -> tuple[float, list[float]]:
    """The same volume straight through aiokafka: produce, consume, nothing else."""
    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    await ensure_topics(Settings(kafka_bootstrap_servers=bootstrap), [topic])
    value = referral_message(unique_referral()).to_bytes()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    received: dict[bytes, float] = {}

    async def consume(expected: int) -> None:
        while len(received) < expected:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    received[r.key] = time.monotonic()

    start = time.monotonic()
    reader = asyncio.create_task(consume(n))
    for i in range(n):
        await producer.send(topic, value, key=f"b{i}".encode())
    await producer.flush()
    await reader
    burst_seconds = max(received.values()) - start
    sent: dict[bytes, float] = {}
    reader = asyncio.create_task(consume(n + 200))
    for i in range(200):
        key = f"p{i}".encode()
        sent[key] = time.monotonic()
        await producer.send_and_wait(topic, value, key=key)
        await asyncio.sleep(gap)
    await reader
    await producer.stop()
    await consumer.stop()
    return burst_seconds, [received[k] - t for k, t in sent.items()]


async def main(n: int, paced_n: int, gap: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    broker = embedded.start_broker(free_port(), work / "broker.log")
    bootstrap = broker.args[-1].removeprefix("tcp://")
    database = embedded.Database(work / "pgdata")
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": database.dsn, "LOG_LEVEL": "WARNING",
           "OUTBOX_POLL_SECONDS": "0.2"}
    await ensure_topics(Settings(kafka_bootstrap_servers=bootstrap))
    services = [ServiceProcess(name, env, work) for name in ("referrals", "workflow")]
    try:
        for s in services:
            s.start()
        for s in services:
            await s.ready()
        await paced(bootstrap, 20, gap)  # warm-up
        accepted_s, created_s = await burst(bootstrap, n)
        to_accepted, to_created = await paced(bootstrap, paced_n, gap)
        raw_s, raw_latency = await raw_baseline(bootstrap, n, gap)
    finally:
        for s in services:
            s.stop()
        embedded.stop_process(broker)
        database.stop()
    print(f"\nintake benchmark: {n} referrals in a burst, {paced_n} paced one every {gap * 1000:.0f} ms")
    print(f"{'path':<42}{'per second':>12}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'publish -> referral.accepted':<42}{n / accepted_s:>12.0f}{pct(to_accepted, 50):>10.1f}"
          f"{pct(to_accepted, 99):>10.1f}")
    print(f"{'publish -> step.created':<42}{n / created_s:>12.0f}{pct(to_created, 50):>10.1f}"
          f"{pct(to_created, 99):>10.1f}")
    print(f"{'raw aiokafka produce -> consume (baseline)':<42}{n / raw_s:>12.0f}{pct(raw_latency, 50):>10.1f}"
          f"{pct(raw_latency, 99):>10.1f}")
    print(f"end-to-end throughput is {100 * raw_s / created_s:.1f}% of the raw baseline")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--referrals", type=int, default=2000)
    parser.add_argument("--paced", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.referrals, args.paced, args.gap_ms / 1000))
