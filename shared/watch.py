"""What operations watch, measured by the service itself every OPS_SAMPLE_SECONDS (issue #18 §6).

Consumer lag per group and partition (the broker's end offset less the group's committed offset, for the
partitions this replica holds), the outbox's unpublished rows and the age of the oldest, the dead letters
nobody has re-driven or discarded yet, and whether the service is ready. Counters and histograms that
are counted where things happen (messages, dead letters set aside, timer lateness) are in shared/metrics.py;
deploy/prometheus/alerts.yaml and deploy/grafana/tessera.json read both.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import ProcessCollector

from shared import metrics

log = logging.getLogger(__name__)

JOB = "ops-sampling"
BROKER_TIMEOUT_SECONDS = 5.0


class Watch:
    """Sets the sampled gauges of one service; a failed sample keeps the last values and counts a job failure."""

    def __init__(self, service: str, pool: asyncpg.Pool, subscribers: Callable[[], Iterable[Any]],
                 is_ready: Callable[[], Awaitable[bool]]) -> None:
        self._service = service
        self._pool = pool
        self._subscribers = subscribers
        self._is_ready = is_ready
        self._lag_labels: set[tuple[str, str, str, str]] = set()
        self._letter_jobs: set[str] = set()

    async def run(self, every_seconds: float) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(every_seconds)

    async def sample(self) -> None:
        for part in (self._sample_database, self._sample_consumers, self._sample_readiness):
            try:
                await part()
            except Exception as exc:  # noqa: BLE001  a dependency is down (/readyz says so): the last values stay
                metrics.JOB_FAILURES.labels(self._service, JOB).inc()
                log.info("sampling failed", extra={"part": part.__name__, "error": type(exc).__name__})

    async def _sample_database(self) -> None:
        async with self._pool.acquire() as conn:
            backlog = await conn.fetchrow(
                "SELECT count(*) AS rows, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS age"
                " FROM outbox WHERE published_at IS NULL")
            letters = await conn.fetch("SELECT job, count(*) AS open FROM dead_letters"
                                       " WHERE resolved_at IS NULL GROUP BY job")
        metrics.OUTBOX_BACKLOG.labels(self._service).set(backlog["rows"])
        metrics.OUTBOX_OLDEST_AGE.labels(self._service).set(float(backlog["age"]))
        open_letters = {r["job"]: r["open"] for r in letters}
        for job in self._letter_jobs | set(open_letters):
            metrics.DEAD_LETTERS_OPEN.labels(self._service, job).set(open_letters.get(job, 0))
        self._letter_jobs |= set(open_letters)

    async def _sample_consumers(self) -> None:
        seen: set[tuple[str, str, str, str]] = set()
        for subscriber in self._subscribers():
            consumer: AIOKafkaConsumer | None = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            group = subscriber.group_id
            assigned = sorted(consumer.assignment())
            for topic in subscriber.topic_names_for_subscribe:
                metrics.CONSUMER_ASSIGNED.labels(self._service, group, topic).set(
                    sum(1 for tp in assigned if tp.topic == topic))
            for tp, lag in (await lag_of(consumer, assigned)).items():
                labels = (self._service, group, tp.topic, str(tp.partition))
                metrics.CONSUMER_LAG.labels(*labels).set(lag)
                seen.add(labels)
        for gone in self._lag_labels - seen:  # moved to another replica: its lag is theirs to report
            metrics.CONSUMER_LAG.remove(*gone)
        self._lag_labels = seen

    async def _sample_readiness(self) -> None:
        metrics.READY.labels(self._service).set(1 if await self._is_ready() else 0)


async def lag_of(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Messages in each partition after the group's committed offset (all of it when nothing is committed yet).

    The end is the broker's end offset, or the high watermark of the consumer's last fetch when that is further:
    the embedded Tansu reports a partition's end offset as its last batch's first offset + 1, short by the rest
    of that batch; its fetch answers carry the true high watermark.
    """
    if not partitions:
        return {}
    ends = await asyncio.wait_for(consumer.end_offsets(partitions), BROKER_TIMEOUT_SECONDS)
    starts = await asyncio.wait_for(consumer.beginning_offsets(partitions), BROKER_TIMEOUT_SECONDS)
    lag = {}
    for tp in partitions:
        committed = await asyncio.wait_for(consumer.committed(tp), BROKER_TIMEOUT_SECONDS)
        end = max(ends[tp], consumer.highwater(tp) or 0)
        lag[tp] = max(0, end - (committed if committed is not None else starts[tp]))
    return lag


def became_ready(service: str) -> None:
    """Record how long this process took from its start to ready (a restart's recovery, as operations see it)."""
    started = process_start_time()
    if started is not None:
        metrics.START_TO_READY.labels(service).set(time.time() - started)
    metrics.READY.labels(service).set(1)


def process_start_time() -> float | None:
    """When the operating system started this process (Linux /proc); None where that is not known."""
    for family in ProcessCollector(registry=None).collect():
        for sample in family.samples:
            if sample.name == "process_start_time_seconds":
                return float(sample.value)
    return None
