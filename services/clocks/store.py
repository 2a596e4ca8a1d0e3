"""Queries of the clocks schema: a clock loaded, saved, and listed by person and by team."""

from datetime import datetime

import asyncpg

from services.clocks.definitions import Definition
from services.clocks.domain import Clock

FIELDS = ("clock_id", "name", "definition", "definition_version", "subject_key", "person_id", "team_id", "state",
          "started_at", "due_date", "fired", "warned_at", "breached_at", "paused_at", "paused_reason", "stopped_at",
          "stopped_by", "version", "updated_at")


def clock_of(row: asyncpg.Record) -> Clock:
    definition = Definition.model_validate(row["definition"])
    return Clock(clock_id=row["clock_id"], definition=definition, definition_version=row["definition_version"],
                 subject_key=row["subject_key"], person_id=row["person_id"], team_id=row["team_id"],
                 state=row["state"], started_at=row["started_at"], due_date=row["due_date"],
                 fired=tuple(row["fired"]), warned_at=row["warned_at"], breached_at=row["breached_at"],
                 paused_at=row["paused_at"], paused_reason=row["paused_reason"], stopped_at=row["stopped_at"],
                 stopped_by=row["stopped_by"], version=row["version"])


def _values(clock: Clock, now: datetime) -> tuple[object, ...]:
    return (clock.clock_id, clock.definition.name, clock.definition.model_dump(mode="json"), clock.definition_version,
            clock.subject_key, clock.person_id, clock.team_id, clock.state, clock.started_at, clock.due_date,
            list(clock.fired), clock.warned_at, clock.breached_at, clock.paused_at, clock.paused_reason,
            clock.stopped_at, clock.stopped_by, clock.version, now)


async def load_clock(conn: asyncpg.Connection | asyncpg.Pool, clock_id: str, *,
                     for_update: bool = False) -> Clock | None:
    row = await conn.fetchrow("SELECT * FROM clocks WHERE clock_id = $1" + (" FOR UPDATE" if for_update else ""),
                              clock_id)
    return clock_of(row) if row else None


async def insert_clock(conn: asyncpg.Connection, clock: Clock, now: datetime) -> bool:
    """Insert a new clock; False when its start was handled already (the same subject started once)."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(FIELDS) + 1))
    status = await conn.execute(
        f"INSERT INTO clocks ({', '.join(FIELDS)}) VALUES ({placeholders}) ON CONFLICT (clock_id) DO NOTHING",
        *_values(clock, now))
    return status.endswith(" 1")


async def update_clock(conn: asyncpg.Connection, clock: Clock, now: datetime) -> None:
    assignments = ", ".join(f"{f} = ${i}" for i, f in enumerate(FIELDS, start=1) if f != "clock_id")
    await conn.execute(f"UPDATE clocks SET {assignments} WHERE clock_id = $1", *_values(clock, now))


async def clocks_of_person(conn: asyncpg.Connection | asyncpg.Pool, person_id: str, limit: int) -> list[Clock]:
    rows = await conn.fetch("SELECT * FROM clocks WHERE person_id = $1 ORDER BY started_at DESC, clock_id LIMIT $2",
                            person_id, limit)
    return [clock_of(r) for r in rows]


async def open_clocks_of_team(conn: asyncpg.Connection | asyncpg.Pool, team_id: str, status: str | None,
                              limit: int) -> list[Clock]:
    """The team's clocks not stopped, soonest due first; `status` at_risk (warned, not breached) or breached."""
    rows = await conn.fetch(
        "SELECT * FROM clocks WHERE team_id = $1 AND state <> 'stopped'"
        " AND ($2::text IS NULL"
        "      OR ($2 = 'breached' AND breached_at IS NOT NULL)"
        "      OR ($2 = 'at_risk' AND warned_at IS NOT NULL AND breached_at IS NULL)"
        "      OR ($2 = 'on_track' AND warned_at IS NULL AND breached_at IS NULL))"
        " ORDER BY due_date, clock_id LIMIT $3",
        team_id, status, limit)
    return [clock_of(r) for r in rows]
