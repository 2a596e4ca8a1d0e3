"""The scheduler's clock: UTC wall time plus a configured offset, and in tests a stored one."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from services.scheduler import store


class Clock:
    """`now()` for the firing job; with `stored`, `refresh()` rereads the `clock` table's offset."""

    def __init__(self, offset_seconds: float = 0.0, *, stored: bool = False,
                 wall: Callable[[], float] = time.time) -> None:
        self._offset = offset_seconds
        self._stored_offset = 0.0
        self._stored = stored
        self._wall = wall

    @property
    def offset(self) -> timedelta:
        return timedelta(seconds=self._offset + self._stored_offset)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall(), UTC) + self.offset

    def to_wall(self, at: datetime) -> datetime:
        """The wall-clock time at which this clock shows `at` (for apscheduler run dates)."""
        return at - self.offset

    async def refresh(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        if self._stored:
            self._stored_offset = await store.clock_offset(conn)
