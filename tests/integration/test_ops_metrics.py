"""What operations watch (issue #18 §6), read from a running scheduler's /metrics while real traffic goes through
the embedded broker: its consumer lag while its handlers are held up, its outbox backlog and the age of the oldest
row while its relay is kept from publishing, the dead letters it set aside, readiness and start-to-ready time."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared import topics
from shared.envelope import Envelope, new_message
from shared.events.scheduler import TimerSet
from shared.settings import Settings
from shared.testing import EventLog, ServiceProcess, SigningProducer, poll_until, publish, service_auth
from tests.scheduler_clock import GROUP, own_scheduler, own_scheduler_env, scheduler_pool

SERVICE = {"service": "scheduler"}
TIMERS = {**SERVICE, "group": GROUP, "topic": topics.SCHEDULER_TIMERS}


@pytest.fixture(scope="module")
async def scheduler_env(infra, services) -> dict[str, str]:
    return {**await own_scheduler_env(infra, services), "OPS_SAMPLE_SECONDS": "0.5"}


@pytest.fixture(scope="module")
async def scheduler(infra, scheduler_env) -> AsyncIterator[ServiceProcess]:
    async with own_scheduler(infra, scheduler_env) as process:
        yield process


@pytest.fixture(scope="module")
async def sdb(scheduler_env, scheduler) -> AsyncIterator[asyncpg.Pool]:
    async with scheduler_pool(scheduler_env) as pool:
        yield pool


@pytest.fixture
async def held(scheduler_env) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own on the scheduler's schema, to hold a lock the scheduler waits on."""
    conn = await asyncpg.connect(scheduler_env["DATABASE_URL"], server_settings={"search_path": "scheduler"})
    try:
        yield conn
    finally:
        await conn.close()


def timer_set(key: str, subject: str, due_at: datetime) -> Envelope:
    return new_message(TimerSet.TYPE, "tests", TimerSet(key=key, due_at=due_at, owner="tests", payload={}),
                       subject=subject)


async def observed(process: ServiceProcess, name: str, **labels: str) -> float:
    """The sum of a series' samples on the service's /metrics whose labels include `labels` (0 when none)."""
    async with httpx.AsyncClient(auth=service_auth(), base_url=process.url) as http:
        text = (await http.get("/metrics")).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


async def test_consumer_lag_shows_the_messages_waiting_while_handling_is_held_up_and_falls_to_0_after(
        infra, scheduler, sdb, held):
    """50 timer.set arrive while the scheduler's handlers wait on a lock of its inbox (as behind a stuck
    transaction): its lag for the timer group shows the 50, per partition, then 0 once they are handled."""
    run = uuid.uuid4().hex[:10]
    messages = [timer_set(f"{run}-{i:02d}", run, datetime.now(UTC) + timedelta(days=30)) for i in range(50)]
    assert await observed(scheduler, "tessera_ready", **SERVICE) == 1
    assert await observed(scheduler, "tessera_start_to_ready_seconds", **SERVICE) > 0
    assert await observed(scheduler, "tessera_consumer_assigned_partitions", **TIMERS) == Settings().topic_partitions

    waiting = held.transaction()
    await waiting.start()
    await held.execute("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE")
    try:
        await publish_one_at_a_time(infra.bootstrap, topics.SCHEDULER_TIMERS, [(run, m.to_bytes()) for m in messages])
        await poll_until(lambda: lag_at_least(scheduler, 50), 60, "a lag of 50 on the scheduler's timer group")
        assert await sdb.fetchval("SELECT count(*) FROM timers WHERE key LIKE $1", f"{run}-%") == 0
    finally:
        await waiting.rollback()
    await poll_until(lambda: sdb.fetchval("SELECT count(*) = 50 FROM timers WHERE key LIKE $1", f"{run}-%"),
                     60, "the 50 timers stored")
    await poll_until(lambda: lag_is_0(scheduler), 60, "the lag back to 0")


async def publish_one_at_a_time(bootstrap: str, topic: str, messages: list[tuple[str, bytes]]) -> None:
    """Each message its own produce request: the embedded broker's end offset counts only the first record of a
    partition's last batch (shared/watch.py lag_of), so the lag it shows is exact only for batches of one."""
    producer = SigningProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await (await producer.send(topic, value=value, key=key.encode()))
    finally:
        await producer.stop()


async def lag_at_least(process: ServiceProcess, messages: int) -> bool:
    return await observed(process, "tessera_consumer_lag_messages", **TIMERS) >= messages


async def lag_is_0(process: ServiceProcess) -> bool:
    return await observed(process, "tessera_consumer_lag_messages", **TIMERS) == 0


async def test_outbox_backlog_and_its_age_grow_while_the_relay_cannot_publish_and_drain_after(
        infra, scheduler, sdb, held):
    """20 timers fall due while another holder has the scheduler's relay lock (as a hung replica would): the 20
    timer.due wait in its outbox, /metrics shows 20 rows waiting and the oldest ageing; once the lock is let go
    every timer.due reaches scheduler.due and the backlog is 0 again."""
    run = uuid.uuid4().hex[:10]
    due = [timer_set(f"{run}-{i:02d}", run, datetime.now(UTC) - timedelta(seconds=1)) for i in range(20)]
    await held.execute("SELECT pg_advisory_lock(hashtext('outbox:scheduler'))")
    try:
        async with EventLog(infra.bootstrap, [topics.SCHEDULER_DUE]) as dues:
            await publish(infra.bootstrap, topics.SCHEDULER_TIMERS, [(run, m.to_bytes()) for m in due])
            await poll_until(lambda: backlog_aged(scheduler, rows=20, seconds=2), 60, "20 rows waiting, 2 s old")
            assert not dues.matching(lambda s: s.type == "timer.due" and s.data["key"].startswith(run))
            await held.execute("SELECT pg_advisory_unlock(hashtext('outbox:scheduler'))")
            await dues.wait_for(lambda s: s.type == "timer.due" and s.data["key"].startswith(run), 60, count=20)
    finally:
        await held.execute("SELECT pg_advisory_unlock_all()")
    await poll_until(lambda: backlog_aged(scheduler, rows=0, seconds=0, exactly=True), 30, "the outbox drained")
    assert await observed(scheduler, "tessera_timer_lateness_seconds_count", **SERVICE) >= 20


async def backlog_aged(process: ServiceProcess, *, rows: int, seconds: float, exactly: bool = False) -> bool:
    waiting = await observed(process, "tessera_outbox_backlog", **SERVICE)
    oldest = await observed(process, "tessera_outbox_oldest_age_seconds", **SERVICE)
    if exactly:
        return waiting == rows and oldest == seconds
    return waiting >= rows and oldest >= seconds


async def test_a_message_set_aside_shows_as_a_dead_letter_set_aside_and_still_open(infra, scheduler, sdb):
    """An undecodable timer.set is dead-lettered: the counter of letters set aside from scheduler.timers and the
    gauge of letters nobody has re-driven or discarded both go up by one."""
    letters = {**SERVICE, "job": topics.SCHEDULER_TIMERS}
    counted = await observed(scheduler, "tessera_dead_letters_total", **letters)
    open_before = await sdb.fetchval("SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL")
    assert await observed(scheduler, "tessera_dead_letters_open", **letters) == open_before

    await publish(infra.bootstrap, topics.SCHEDULER_TIMERS, [("ops-metrics", b"not a message")], signed=False)

    await poll_until(lambda: open_letters_are(scheduler, open_before + 1), 60, "one more open dead letter")
    assert await observed(scheduler, "tessera_dead_letters_total", **letters) == counted + 1


async def open_letters_are(process: ServiceProcess, count: int) -> bool:
    return await observed(process, "tessera_dead_letters_open", **SERVICE, job=topics.SCHEDULER_TIMERS) == count
