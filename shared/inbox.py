"""The inbox: a message id is handled once, checked inside the business transaction.

Handled ids are kept for the inbox retention (INBOX_RETENTION_DAYS), far longer than the outbox
keeps published rows (OUTBOX_RETENTION_HOURS): a producer's relay re-publishes its retained window
after a broker restart, and every id in it must still be recognised here. Older ids are pruned.
"""

import asyncio
import logging
import uuid

import asyncpg

from shared.health import JobHealth

log = logging.getLogger(__name__)
PRUNE_BATCH = 5000


async def claim(conn: asyncpg.Connection, message_id: uuid.UUID, topic: str) -> bool:
    """True the first time this id is seen; False for a redelivery or a replay."""
    row = await conn.fetchrow(
        "INSERT INTO inbox (message_id, topic) VALUES ($1, $2)"
        " ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        message_id,
        topic,
    )
    return row is not None


async def prune(pool: asyncpg.Pool, retention_seconds: float) -> int:
    """Delete ids handled longer ago than the retention, a batch at a time; how many went."""
    deleted = 0
    while True:
        status = await pool.execute(
            "DELETE FROM inbox WHERE message_id IN (SELECT message_id FROM inbox"
            " WHERE handled_at < now() - make_interval(secs => $1) LIMIT $2)",
            retention_seconds, PRUNE_BATCH)
        batch = int(status.split()[-1])
        deleted += batch
        if batch < PRUNE_BATCH:
            return deleted


async def keep_pruned(pool: asyncpg.Pool, retention_seconds: float, every_seconds: float,
                      health: JobHealth | None = None) -> None:
    """Prune now and then until cancelled; a failure only delays it, and shows in `health` if it persists."""
    while True:
        try:
            deleted = await prune(pool, retention_seconds)
            if deleted:
                log.info("inbox pruned", extra={"deleted": deleted})
            if health is not None:
                health.succeeded("inbox-pruning")
        except Exception as exc:  # a set-based DELETE has no row to set aside: report, retry next round
            log.warning("inbox pruning failed, will try again", extra={"error": type(exc).__name__})
            if health is not None:
                health.failed("inbox-pruning", exc)
        await asyncio.sleep(every_seconds)  # housekeeping interval, not a wait for a message
