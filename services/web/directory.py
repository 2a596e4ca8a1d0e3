"""The staff directory (R-RQ9): every account's roles, teams and whether it may act, said on web.events.

The desk owns the accounts; workflow judges who can sign a step from what the desk says here. Each change of
an account (created, roles or teams, disabled, enabled) is listed in the transaction that made it, through the
desk's outbox. At start-up the desk lists every account again: the embedded broker forgets its log on a
restart, and accounts made before the directory existed were never listed; a reader keeps the latest listing
of each account, so saying it twice changes nothing.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from services.web import store
from shared import outbox, topics
from shared.events.web import AccountListed

EMIT = outbox.Emitter("tessera/web")


async def list_accounts(conn: asyncpg.Connection, user_ids: Sequence[str] | None = None) -> int:
    """List the accounts as they are now (all of them when `user_ids` is None); how many were listed."""
    rows = await store.accounts_for_listing(conn, user_ids)
    now = datetime.now(UTC)
    await outbox.add(conn, [EMIT.event(topics.WEB_EVENTS, AccountListed(
        worker_id=r["user_id"], roles=sorted(r["roles"]), team_ids=sorted(r["team_ids"]), active=r["active"],
        as_of=now), None, r["user_id"]) for r in rows])
    return len(rows)


async def list_everyone(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn, conn.transaction():
        return await list_accounts(conn)
