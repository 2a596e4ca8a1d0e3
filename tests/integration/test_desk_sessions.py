"""A signed-in worker's session on the real PostgreSQL: it ends after the idle time, and a page read within
TOUCH_SECONDS of the last one that moved its idle clock writes nothing (services/web/store.py)."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.web import store
from shared.db import migrate, open_pool

WEB = Path(store.__file__).parent
TOKEN = b"\x01" * 32


@pytest.fixture
async def desk_db(infra) -> AsyncIterator[asyncpg.Pool]:
    """The desk's tables in a schema of their own, with one worker signed in."""
    schema = f"web_sessions_{uuid.uuid4().hex[:8]}"
    pool = await open_pool(infra.dsn, schema, max_size=2)
    await migrate(pool, schema, WEB)
    await store.insert_user_if_missing(pool, "sw-1", "Sam Worker", "x", ["social_worker"], ["t1"])
    await store.create_session(pool, TOKEN, "sw-1", "csrf")
    yield pool
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


def limits(idle_minutes: float) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(minutes=idle_minutes), now - timedelta(hours=12)


async def idle_clock(pool: asyncpg.Pool) -> datetime:
    return await pool.fetchval("SELECT last_seen_at FROM sessions WHERE token_hash = $1", TOKEN)


async def row_version(pool: asyncpg.Pool) -> str:
    return await pool.fetchval("SELECT xmin::text FROM sessions WHERE token_hash = $1", TOKEN)


async def set_idle_clock(pool: asyncpg.Pool, ago: timedelta) -> datetime:
    return await pool.fetchval("UPDATE sessions SET last_seen_at = now() - $2::interval WHERE token_hash = $1"
                               " RETURNING last_seen_at", TOKEN, ago)


@pytest.mark.asyncio
async def test_a_session_idle_longer_than_the_limit_no_longer_signs_the_worker_in(desk_db):
    await set_idle_clock(desk_db, timedelta(minutes=241))
    assert await store.touch_session(desk_db, TOKEN, *limits(240)) is None
    await set_idle_clock(desk_db, timedelta(minutes=239))
    assert (await store.touch_session(desk_db, TOKEN, *limits(240)))["user_id"] == "sw-1"


@pytest.mark.asyncio
async def test_a_page_read_soon_after_the_last_writes_nothing_and_a_later_one_moves_the_idle_clock(desk_db):
    recent = await set_idle_clock(desk_db, timedelta(seconds=store.TOUCH_SECONDS - 10))
    version = await row_version(desk_db)
    assert (await store.touch_session(desk_db, TOKEN, *limits(240)))["user_id"] == "sw-1"
    assert await idle_clock(desk_db) == recent
    assert await row_version(desk_db) == version  # the row was not written at all (an UPDATE makes a new version)

    older = await set_idle_clock(desk_db, timedelta(seconds=store.TOUCH_SECONDS + 10))
    assert (await store.touch_session(desk_db, TOKEN, *limits(240)))["csrf_token"] == "csrf"
    assert await idle_clock(desk_db) > older + timedelta(seconds=store.TOUCH_SECONDS)
