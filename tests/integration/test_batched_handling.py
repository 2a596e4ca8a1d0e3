"""Batched handling (issue #18 §1): what one fetch returns for a partition is handled in one transaction, a
savepoint per message, and the offset committed once after it. Shown on the scheduler's timer.set consumer."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from shared import topics
from shared.envelope import Envelope, new_message
from shared.events.scheduler import TimerSet
from shared.testing import (
    EventLog,
    ServiceProcess,
    poll_until,
    publish,
    service_auth,
)
from tests.scheduler_clock import own_scheduler, own_scheduler_env, scheduler_pool

DLQ = topics.dlq(topics.SCHEDULER_TIMERS)


@pytest.fixture(scope="module")
async def scheduler_env(infra, services) -> dict[str, str]:
    return await own_scheduler_env(infra, services)


@pytest.fixture(scope="module")
async def scheduler(infra, scheduler_env) -> AsyncIterator[ServiceProcess]:
    async with own_scheduler(infra, scheduler_env) as process:
        yield process


@pytest.fixture(scope="module")
async def sdb(scheduler_env, scheduler) -> AsyncIterator[asyncpg.Pool]:
    async with scheduler_pool(scheduler_env) as pool:
        yield pool


def timer_set(key: str, subject: str, payload: dict[str, str] | None = None) -> Envelope:
    data = TimerSet(key=key, due_at=datetime.now(UTC) + timedelta(days=30), owner="tests", payload=payload or {})
    return new_message(TimerSet.TYPE, "tests", data, subject=subject)


async def batch_sizes(process: ServiceProcess) -> tuple[int, int]:
    """(transactions, messages) the scheduler's timer.set consumer committed, from its /metrics."""
    async with httpx.AsyncClient(auth=service_auth(), base_url=process.url) as http:
        text = (await http.get("/metrics")).text
    found = {"count": 0, "sum": 0}
    for line in text.splitlines():
        for kind in found:
            if line.startswith(f"tessera_batch_messages_{kind}{{") and f'topic="{topics.SCHEDULER_TIMERS}"' in line:
                found[kind] = int(float(line.split()[-1]))
    return found["count"], found["sum"]


async def test_one_poison_message_in_a_batch_of_100_is_dead_lettered_alone_and_the_99_are_handled(
        infra, scheduler, sdb):
    """A timer.set the database refuses sits in the middle of 100 on one key (a check this test adds refuses its
    key: the failed INSERT aborts the transaction, as any statement error does). They arrive while the scheduler
    is down, so its first fetch holds all 100: one transaction handles them; the poison's savepoint is rolled
    back and it is set aside (dead_letters and the .dlq) alone, the 99 others are stored."""
    run = uuid.uuid4().hex[:10]
    good = [timer_set(f"{run}-{i:03d}", subject=run) for i in range(99)]
    poison = timer_set(f"{run}-poison", subject=run)
    messages = [*good[:50], poison, *good[50:]]
    scheduler.stop()
    await sdb.execute(f"ALTER TABLE timers ADD CONSTRAINT refuses_{run} CHECK (key <> '{run}-poison')")
    try:
        await publish(infra.bootstrap, topics.SCHEDULER_TIMERS, [(run, m.to_bytes()) for m in messages])
        async with EventLog(infra.bootstrap, [DLQ], from_beginning=True) as dlq:
            scheduler.start()
            await scheduler.ready()
            [dead] = await dlq.wait_for(lambda s: s.key == run, timeout=60)
        await poll_until(lambda: sdb.fetchval("SELECT count(*) = 99 FROM timers WHERE key LIKE $1", f"{run}-%"),
                         30, "the 99 good timers stored")
    finally:
        await sdb.execute(f"ALTER TABLE timers DROP CONSTRAINT refuses_{run}")
    stored = {r["key"] for r in await sdb.fetch("SELECT key FROM timers WHERE key LIKE $1", f"{run}-%")}
    letters = await sdb.fetch("SELECT error FROM dead_letters WHERE key = $1", run)

    assert dead.body["id"] == str(poison.id)
    assert stored == {m.data["key"] for m in good}
    assert [r["error"] for r in letters] == [dead.headers["dlq_error"]] == ["handler failed: CheckViolationError"]
    assert await batch_sizes(scheduler) == (1, 100), "the 100 were not one transaction"


async def test_kill_9_in_the_middle_of_a_batch_loses_and_duplicates_nothing(infra, scheduler, sdb):
    """2,000 timer.set over several keys; the scheduler is SIGKILLed while a batch's transaction has written
    (PostgreSQL then rolls it back: its status is read after the kill) and restarted. Every timer is stored,
    each set once (generation 1: a timer.set handled twice moves its timer to generation 2), and the inbox
    holds each message once."""
    run = uuid.uuid4().hex[:10]
    messages = [timer_set(f"{run}-{i:04d}", subject=f"{run}-p{i % 16}") for i in range(2000)]
    ids = [m.id for m in messages]
    await publish(infra.bootstrap, topics.SCHEDULER_TIMERS, [(m.subject, m.to_bytes()) for m in messages])
    xid = await poll_until(lambda: open_batch(sdb), 60, "a batch transaction that has written")
    scheduler.kill()
    stored_at_kill = await sdb.fetchval("SELECT count(*) FROM timers WHERE key LIKE $1", f"{run}-%")
    status = await poll_until(lambda: finished(sdb, xid), 30, "the killed transaction ended")
    scheduler.start()
    await scheduler.ready()
    await poll_until(lambda: sdb.fetchval("SELECT count(*) = 2000 FROM timers WHERE key LIKE $1", f"{run}-%"),
                     120, "every timer stored")
    generations = await sdb.fetchval("SELECT array_agg(DISTINCT generation) FROM timers WHERE key LIKE $1",
                                     f"{run}-%")
    claimed = await sdb.fetchval("SELECT count(*) FROM inbox WHERE message_id = ANY($1::uuid[])", ids)
    print(f"\nkill mid-batch: {stored_at_kill} of 2000 stored when killed, the open batch {status}")

    assert status == "aborted" and stored_at_kill < 2000
    assert generations == [1]  # 0 lost (2,000 stored), 0 handled twice
    assert claimed == 2000


async def open_batch(sdb: asyncpg.Pool) -> int | None:
    """The transaction id of a scheduler backend that has written and not yet committed (with no timer due, the
    scheduler writes only in its timer.set batches)."""
    return await sdb.fetchval(
        "SELECT backend_xid::text::bigint FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL LIMIT 1")


async def finished(sdb: asyncpg.Pool, xid: int) -> str | None:
    """'committed' or 'aborted' once the transaction has ended (an epoch-0 xid: a fresh test cluster)."""
    status = await sdb.fetchval("SELECT pg_xact_status($1::text::xid8)", str(xid))
    return status if status != "in progress" else None
