"""Queries of the dashboard's read model (R-CL7): idempotent writes from events, and the rows a dashboard reads."""

import uuid
from datetime import date, datetime
from typing import Literal, TypeAlias

import asyncpg

TABLES = ("insight_tray_entries", "insight_rag_changes", "insight_clocks", "insight_allocations")
Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool  # a read needs no transaction of its own


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


async def start_clock(conn: asyncpg.Connection, clock_id: str, team_id: str | None, person_id: str, title: str,
                      due_date: date) -> None:
    await conn.execute("INSERT INTO insight_clocks (clock_id, team_id, person_id, title, due_date)"
                       " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (clock_id) DO NOTHING",
                       clock_id, team_id, person_id, title, due_date)


async def mark_clock(conn: asyncpg.Connection, clock_id: str,
                     column: Literal["warned_at", "breached_at", "stopped_at"], at: datetime) -> None:
    await conn.execute(f"UPDATE insight_clocks SET {column} = COALESCE({column}, $2) WHERE clock_id = $1",
                       clock_id, at)


async def move_clock_due(conn: asyncpg.Connection, clock_id: str, due_date: date) -> None:
    await conn.execute("UPDATE insight_clocks SET due_date = $2 WHERE clock_id = $1", clock_id, due_date)


async def empty(conn: asyncpg.Connection) -> None:
    """Every insight table emptied: the first half of a rebuild (deploy/runbooks/insights.md)."""
    await conn.execute(f"TRUNCATE {', '.join(TABLES)}")


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
