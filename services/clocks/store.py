"""Queries of the clocks schema: a clock loaded, saved, and listed by person and by team; and the dashboard's read
model (R-CL7), written from events and read by the dashboards."""

import uuid
from datetime import date, datetime
from typing import Literal, TypeAlias

import asyncpg

from services.clocks.definitions import Definition
from services.clocks.domain import Clock

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool  # a read needs no transaction of its own
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


# --- the dashboard's read model (R-CL7): idempotent writes from events, and what a dashboard reads ---------


async def add_entry(conn: asyncpg.Connection, entry_id: str, team_id: str, person_id: str, placed_at: datetime,
                    next_review_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO insight_tray_entries (entry_id, team_id, person_id, placed_at, next_review_at, next_review_as_of)"
        " VALUES ($1, $2, $3, $4, $5, $4) ON CONFLICT (entry_id) DO NOTHING",
        entry_id, team_id, person_id, placed_at, next_review_at)


async def add_rag(conn: asyncpg.Connection, event_id: uuid.UUID, entry_id: str, team_id: str, rag: str,
                  at: datetime) -> None:
    await conn.execute("INSERT INTO insight_rag_changes (event_id, entry_id, team_id, rag, at)"
                       " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
                       event_id, entry_id, team_id, rag, at)


async def set_next_review(conn: asyncpg.Connection, entry_id: str, next_review_at: datetime, as_of: datetime) -> None:
    """The entry's next review as the latest event set it (an older event read again changes nothing)."""
    await conn.execute("UPDATE insight_tray_entries SET next_review_at = $2, next_review_as_of = $3"
                       " WHERE entry_id = $1 AND next_review_as_of <= $3", entry_id, next_review_at, as_of)


async def remove_entry(conn: asyncpg.Connection, entry_id: str, at: datetime) -> None:
    await conn.execute("UPDATE insight_tray_entries SET removed_at = $2 WHERE entry_id = $1 AND removed_at IS NULL",
                       entry_id, at)


async def add_allocation(conn: asyncpg.Connection, relationship_id: str, team_id: str, worker_id: str,
                         person_id: str, at: datetime) -> None:
    await conn.execute("INSERT INTO insight_allocations (relationship_id, team_id, worker_id, person_id, allocated_at)"
                       " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (relationship_id) DO NOTHING",
                       relationship_id, team_id, worker_id, person_id, at)


async def end_allocation(conn: asyncpg.Connection, relationship_id: str, at: datetime) -> None:
    await conn.execute("UPDATE insight_allocations SET ended_at = $2 WHERE relationship_id = $1 AND ended_at IS NULL",
                       relationship_id, at)


async def note_clock_started(conn: asyncpg.Connection, clock_id: str, team_id: str | None, person_id: str, title: str,
                      due_date: date) -> None:
    await conn.execute("INSERT INTO insight_clocks (clock_id, team_id, person_id, title, due_date)"
                       " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (clock_id) DO NOTHING",
                       clock_id, team_id, person_id, title, due_date)


async def note_clock_marked(conn: asyncpg.Connection, clock_id: str,
                     column: Literal["warned_at", "breached_at", "stopped_at"], at: datetime) -> None:
    await conn.execute(f"UPDATE insight_clocks SET {column} = COALESCE({column}, $2) WHERE clock_id = $1",
                       clock_id, at)


async def note_clock_due_moved(conn: asyncpg.Connection, clock_id: str, due_date: date) -> None:
    await conn.execute("UPDATE insight_clocks SET due_date = $2 WHERE clock_id = $1", clock_id, due_date)


# --- what a dashboard reads -----------------------------------------------------------------------------


async def tray_entries(conn: Conn, team_ids: list[str], since: datetime) -> list[asyncpg.Record]:
    """The teams' entries waiting at any time since `since`, each with its RAG changes in time order."""
    return await conn.fetch(
        "SELECT e.entry_id, e.person_id, e.placed_at, e.removed_at, e.next_review_at,"
        "       coalesce(array_agg(r.at ORDER BY r.at, r.event_id) FILTER (WHERE r.at IS NOT NULL), '{}') AS rag_at,"
        "       coalesce(array_agg(r.rag ORDER BY r.at, r.event_id) FILTER (WHERE r.at IS NOT NULL), '{}') AS rags"
        " FROM insight_tray_entries e LEFT JOIN insight_rag_changes r ON r.entry_id = e.entry_id"
        " WHERE e.team_id = ANY($1) AND e.placed_at IS NOT NULL AND (e.removed_at IS NULL OR e.removed_at >= $2)"
        " GROUP BY e.entry_id", team_ids, since)


async def open_clocks(conn: Conn, team_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT clock_id, person_id, title, due_date, warned_at, breached_at FROM insight_clocks"
                            " WHERE team_id = ANY($1) AND stopped_at IS NULL ORDER BY due_date, clock_id", team_ids)


async def allocations_per_worker(conn: Conn, team_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT worker_id, count(*) AS cases FROM insight_allocations"
                            " WHERE team_id = ANY($1) AND ended_at IS NULL GROUP BY worker_id"
                            " ORDER BY count(*) DESC, worker_id", team_ids)
