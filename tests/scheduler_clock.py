"""The tests' scheduler clock: SCHEDULER_TEST_CLOCK reads an offset from its `clock` table every poll."""

from datetime import UTC, datetime, timedelta

import asyncpg


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
