"""The tests' scheduler: its clock (SCHEDULER_TEST_CLOCK reads an offset from its `clock` table every poll), and
a scheduler of a test module's own on a database of its own."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from shared import topics
from shared.testing import ServiceProcess, create_database, group_caught_up, poll_until

GROUP = f"scheduler.{topics.SCHEDULER_TIMERS}"


class SchedulerClock:
    """Moves the scheduler's "now" (its database alone); `reset` puts it back to wall time."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def offset(self) -> timedelta:
        return timedelta(seconds=await self._pool.fetchval("SELECT offset_seconds FROM scheduler.clock"))

    async def now(self) -> datetime:
        return datetime.now(UTC) + await self.offset()

    async def move_to(self, at: datetime) -> None:
        """From now on the scheduler sees `at` (and later): timers due by then fire at its next poll."""
        offset = (at - datetime.now(UTC)).total_seconds()
        await self._pool.execute("UPDATE scheduler.clock SET offset_seconds = GREATEST(offset_seconds, $1)", offset)

    async def reset(self) -> None:
        await self._pool.execute("UPDATE scheduler.clock SET offset_seconds = 0")


async def own_scheduler_env(infra: Any, services: dict[str, ServiceProcess]) -> dict[str, str]:
    """The settings of a scheduler on a new database, on a test clock. The session's scheduler is stopped first:
    there is one scheduler consumer group, and it would take the new one's partitions."""
    if "scheduler" in services:
        services.pop("scheduler").stop()
    dsn = await create_database(infra.dsn, "tessera_scheduler")
    return {**infra.env, "DATABASE_URL": dsn, "SCHEDULER_TEST_CLOCK": "true", "SCHEDULER_POLL_SECONDS": "0.2"}


@asynccontextmanager
async def own_scheduler(infra: Any, env: dict[str, str]) -> AsyncIterator[ServiceProcess]:
    """The scheduler started, once it has read every timer command before it (the group's backlog is every
    service's timers of the session so far): what the test then measures is its own."""
    process = ServiceProcess("scheduler", env, infra.log_dir)
    process.start()
    try:
        await process.ready()
        await poll_until(lambda: group_caught_up(infra.bootstrap, GROUP, topics.SCHEDULER_TIMERS), 240,
                         "the scheduler read every timer command before it")
        yield process
    finally:
        process.stop()


@asynccontextmanager
async def scheduler_pool(env: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    """A pool on that scheduler's schema; its clock is put back to wall time after."""
    pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=2,
                                     server_settings={"search_path": "scheduler"})
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.execute("UPDATE clock SET offset_seconds = 0")
        await pool.close()
