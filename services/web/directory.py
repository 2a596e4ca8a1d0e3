"""The staff directory (R-RQ9): every account's name, roles, teams and whether it may act, said on web.events.

The desk owns the accounts; workflow judges who can sign a step from what the desk says here. Each change of
an account (created, roles or teams, disabled, enabled) is listed in the transaction that made it, through the
desk's outbox, and the desk notes what it listed (`users.listed`). At start-up it lists only the accounts whose
listing differs from the one it noted: accounts made before the directory existed, changed by hand in the
database, or listed before the listing said more (the name). A reader keeps the latest listing of each account,
so saying it twice changes nothing. docs/architecture.md "The staff directory" has the trade-off.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.web import store
from shared import outbox, topics
from shared.events.web import AccountListed

EMIT = outbox.Emitter("tessera/web")


def listing(account: Mapping[str, Any]) -> dict[str, Any]:
    """What the directory says of an account (its `as_of` aside): what the desk notes it has listed."""
    return {"roles": sorted(account["roles"]), "team_ids": sorted(account["team_ids"]), "active": account["active"],
            "display_name": account["display_name"]}


async def list_accounts(conn: asyncpg.Connection, user_ids: Sequence[str] | None = None, *,
                        changed_only: bool = False) -> int:
    """List the accounts as they are now (all of them when `user_ids` is None; only those whose listing is not
    the one last noted with `changed_only`); how many were listed."""
    rows = [(r["user_id"], listing(r)) for r in await store.accounts_for_listing(conn, user_ids)
            if not changed_only or r["listed"] != listing(r)]
    now = datetime.now(UTC)
    await outbox.add(conn, [EMIT.event(topics.WEB_EVENTS, AccountListed(worker_id=user_id, as_of=now, **said),
                                       None, user_id) for user_id, said in rows])
    await store.note_listed(conn, rows)
    return len(rows)


async def list_changed(pool: asyncpg.Pool) -> int:
    """At start-up: the accounts whose listing changed since the desk last said it (none after a plain restart)."""
    async with pool.acquire() as conn, conn.transaction():
        return await list_accounts(conn, changed_only=True)
