"""Inbox retention: handled ids are kept for INBOX_RETENTION_DAYS, then pruned (shared/inbox.py).

Against a schema of its own in the session's PostgreSQL, with the shared messaging migrations.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared import db as shared_db
from shared import inbox
from shared.testing import poll_until

DAY = 86400.0


@pytest.fixture
async def pool(infra) -> AsyncIterator[asyncpg.Pool]:
    schema = f"inbox_{uuid.uuid4().hex[:8]}"
    pool = await shared_db.open_pool(infra.dsn, schema)
    await shared_db.migrate(pool, schema, Path("/nonexistent"))
    try:
        yield pool
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def _handled(pool: asyncpg.Pool, days_ago: float) -> uuid.UUID:
    message_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        assert await inbox.claim(conn, message_id, "workflow.commands")
        await conn.execute("UPDATE inbox SET handled_at = now() - make_interval(secs => $2) WHERE message_id = $1",
                           message_id, days_ago * DAY)
    return message_id


async def _claim(pool: asyncpg.Pool, message_id: uuid.UUID) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        return await inbox.claim(conn, message_id, "workflow.commands")


async def test_ids_older_than_the_retention_are_pruned_and_a_redelivery_within_it_is_still_dropped(pool):
    """A message re-published from an outbox window (hours old) is dropped; ids past 7 days go."""
    old = await _handled(pool, days_ago=8)
    yesterday = await _handled(pool, days_ago=1)
    assert await inbox.prune(pool, retention_seconds=7 * DAY) == 1
    remaining = {r["message_id"] for r in await pool.fetch("SELECT message_id FROM inbox")}
    assert old not in remaining and remaining == {yesterday}
    assert not await _claim(pool, yesterday)  # redelivered within the retention: handled once only


async def test_pruning_runs_by_itself_on_its_interval(pool):
    old = await _handled(pool, days_ago=30)
    fresh = await _handled(pool, days_ago=0)
    task = asyncio.create_task(inbox.keep_pruned(pool, retention_seconds=7 * DAY, every_seconds=0.05))
    try:
        await poll_until(lambda: pool.fetchval("SELECT count(*) = 0 FROM inbox WHERE message_id = $1", old), 10,
                         "the old id pruned")
        assert await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", fresh) == 1
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
