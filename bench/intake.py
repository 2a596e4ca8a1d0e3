"""Intake throughput and latency end to end, beside a raw aiokafka baseline on the same broker.

`python -m bench.intake [--referrals N]`: starts its own embedded broker and PostgreSQL, the
referrals and workflow services as processes, then prints referrals/s (burst) and p50/p99
latency (paced) from publish to `referral.accepted` and to `step.created`.
"""

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import infrastructure, percentile, running
from shared import fetch_wait, topics
from shared.broker import ensure_topics
from shared.settings import Settings
from shared.testing import EventLog, SigningProducer
from tests.factories import referral_message, unique_referral

SERVICES = ("referrals", "workflow")


async def burst(bootstrap: str, n: int) -> tuple[float, float]:
    """Publish n referrals at once; seconds until all are accepted and all first steps exist."""
    messages = [referral_message(unique_referral()) for _ in range(n)]
    ids = {str(m.id) for m in messages}
    async with EventLog(bootstrap, [topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS]) as log:
        producer = SigningProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
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
        producer = SigningProducer(bootstrap_servers=bootstrap, acks="all")
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


async def raw_baseline(bootstrap: str, n: int, paced_n: int, gap: float) -> tuple[float, list[float]]:
    """The same volume straight through aiokafka: produce, consume, nothing else."""
    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    await ensure_topics(Settings(kafka_bootstrap_servers=bootstrap), [topic])
    value = referral_message(unique_referral()).to_bytes()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=Settings().kafka_fetch_max_wait_ms)
    await consumer.start()
    fetch_wait.follow_traffic(consumer, Settings())  # as the services' consumers
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    producer = SigningProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
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
    reader = asyncio.create_task(consume(n + paced_n))
    for i in range(paced_n):
        key = f"p{i}".encode()
        sent[key] = time.monotonic()
        await producer.send_and_wait(topic, value, key=key)
        await asyncio.sleep(gap)
    await reader
    await producer.stop()
    await consumer.stop()
    return burst_seconds, [received[k] - t for k, t in sent.items()]


@dataclass(frozen=True)
class IntakeFigures:
    referrals: int
    paced: int
    gap: float
    accepted_seconds: float
    created_seconds: float
    to_accepted: list[float]
    to_created: list[float]
    raw_seconds: float
    raw_latency: list[float]


async def measure(bootstrap: str, n: int, paced_n: int, gap: float) -> IntakeFigures:
    """With the referrals and workflow services running: a burst, a paced run, then the raw baseline."""
    await paced(bootstrap, 20, gap)  # warm-up
    accepted_s, created_s = await burst(bootstrap, n)
    to_accepted, to_created = await paced(bootstrap, paced_n, gap)
    raw_s, raw_latency = await raw_baseline(bootstrap, n, paced_n, gap)
    return IntakeFigures(n, paced_n, gap, accepted_s, created_s, to_accepted, to_created, raw_s, raw_latency)


def report(f: IntakeFigures) -> None:
    def ms(values: list[float], p: float) -> float:
        return percentile(values, p) * 1000

    print(f"\nintake benchmark: {f.referrals} referrals in a burst, {f.paced} paced one every {f.gap * 1000:.0f} ms")
    print(f"{'path':<42}{'per second':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for path, seconds, latency in (("publish -> referral.accepted", f.accepted_seconds, f.to_accepted),
                                   ("publish -> step.created", f.created_seconds, f.to_created),
                                   ("raw aiokafka produce -> consume (baseline)", f.raw_seconds, f.raw_latency)):
        print(f"{path:<42}{f.referrals / seconds:>12.0f}{ms(latency, 50):>10.1f}{ms(latency, 99):>10.1f}")
    print(f"end-to-end throughput is {100 * f.raw_seconds / f.created_seconds:.1f}% of the raw baseline")


async def main(n: int, paced_n: int, gap: float) -> None:
    async with infrastructure("tessera-bench-intake-") as infra, \
            running(SERVICES, infra.env(), infra.work):
        figures = await measure(infra.bootstrap, n, paced_n, gap)
    report(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--referrals", type=int, default=2000)
    parser.add_argument("--paced", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.referrals, args.paced, args.gap_ms / 1000))
