"""Break-glass reasons: a command on a person allowed only on a reason its actor gave (R-P5, R-A6; issues #11 §3,
#21) is kept in the service's own `access_reasons` table (each service's migration), in the command's transaction,
and read back by the service's GET /people/{person_id}/access-reasons. The reason itself never goes to a log."""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.commands.base import Command


async def keep(conn: asyncpg.Connection, command: Command, message_id: uuid.UUID, person_id: str | uuid.UUID,
               reason: str) -> None:
    await conn.execute(
        "INSERT INTO access_reasons (message_id, person_id, actor, roles, team_ids, command_type, reason, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        message_id, uuid.UUID(str(person_id)), f"worker:{command.actor.worker_id}", sorted(command.actor.roles),
        sorted(command.actor.team_ids), command.TYPE, reason, datetime.now(UTC))


async def of_person(pool: asyncpg.Pool, person_id: uuid.UUID) -> list[dict[str, Any]]:
    """Oldest first: who, with which roles and teams, which command, why, when."""
    rows = await pool.fetch("SELECT * FROM access_reasons WHERE person_id = $1 ORDER BY at", person_id)
    return [{"message_id": str(r["message_id"]), "actor": r["actor"], "roles": r["roles"], "team_ids": r["team_ids"],
             "command_type": r["command_type"], "reason": r["reason"], "at": r["at"].isoformat()} for r in rows]
