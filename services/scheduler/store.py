"""Queries of the scheduler schema: timers (set, moved, cancelled, claimed when due) and the test clock."""

from datetime import datetime

import asyncpg

from services.scheduler.domain import Timer

COLUMNS = ("key", "due_at", "owner", "payload", "subject", "set_by", "correlation_id", "generation",
           "created_at", "updated_at")


def timer_of(row: asyncpg.Record) -> Timer:
    return Timer(**{c: row[c] for c in COLUMNS})


async def load_timer(conn: asyncpg.Connection | asyncpg.Pool, key: str, *, for_update: bool = False) -> Timer | None:
    row = await conn.fetchrow(
        "SELECT * FROM timers WHERE key = $1" + (" FOR UPDATE" if for_update else ""), key)
    return timer_of(row) if row else None


async def save_timer(conn: asyncpg.Connection, timer: Timer) -> None:
    """Insert the timer, or overwrite the one with its key (moving it)."""
    await conn.execute(
        "INSERT INTO timers (key, due_at, owner, payload, subject, set_by, correlation_id, generation,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (key) DO UPDATE SET due_at = EXCLUDED.due_at, owner = EXCLUDED.owner,"
        " payload = EXCLUDED.payload, subject = EXCLUDED.subject, set_by = EXCLUDED.set_by,"
        " correlation_id = EXCLUDED.correlation_id, generation = EXCLUDED.generation,"
        " updated_at = EXCLUDED.updated_at",
        *(getattr(timer, c) for c in COLUMNS),
    )


async def delete_timer(conn: asyncpg.Connection, key: str) -> None:
    await conn.execute("DELETE FROM timers WHERE key = $1", key)


async def claim_due_rows(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Lock and delete up to `limit` due timers, earliest first; rows another replica holds are skipped.

    Run inside the transaction that also writes their timer.due to the outbox: if it rolls
    back (a crash), the rows are back and fire later; if it commits, they are gone for good.
    Rows, not timers: a row that cannot become a timer is set aside by the caller, alone.
    """
    return await conn.fetch(
        "WITH claimed AS ("
        "  SELECT key FROM timers WHERE due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " DELETE FROM timers t USING claimed WHERE t.key = claimed.key RETURNING t.*",
        now, limit,
    )


async def timers_of_owner(
    conn: asyncpg.Connection | asyncpg.Pool, owner: str | None, due_before: datetime | None, limit: int,
) -> list[Timer]:
    rows = await conn.fetch(
        "SELECT * FROM timers WHERE ($1::text IS NULL OR owner = $1)"
        " AND ($2::timestamptz IS NULL OR due_at < $2) ORDER BY due_at, key LIMIT $3",
        owner, due_before, limit,
    )
    return [timer_of(r) for r in rows]


async def clock_offset(conn: asyncpg.Connection | asyncpg.Pool) -> float:
    return await conn.fetchval("SELECT offset_seconds FROM clock") or 0.0
