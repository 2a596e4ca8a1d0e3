"""asyncpg queries for the allocation schema: cases, relationships and tray entries."""

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.allocation import domain

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

ENTRY_COLUMNS = (
    "entry_id, person_id, team_id, priority, urgent, complexity, support, risk, rag, rationale, placed_at,"
    " placed_by, next_review_at, version, review_overdue, reviews, last_reviewed_at, last_contacted,"
    " escalated_at, red_escalated, removed_at, removed_reason, matrix_rag, rag_override_reason, rag_overridden_by,"
    " rag_overridden_at, next_review_reason, next_review_set_by, next_review_set_at"
)
REVIEW_COLUMNS = ("entry_id, person_id, team_id, review_due, reason, added_at, added_by, version, due_at,"
                  " removed_at, removed_by, removed_reason")
_REL_COLUMNS = ("relationship_id, person_id, {who}, relationship, start_date, created_at, created_by, end_date,"
                " end_reason, ended_at, ended_by")
WORKER_REL_COLUMNS = _REL_COLUMNS.format(who="worker_id, team_id")
ORG_REL_COLUMNS = _REL_COLUMNS.format(who="team_id")


def _strs(row: asyncpg.Record, *uuids: str) -> dict[str, Any]:
    values = dict(row)
    for name in uuids:
        values[name] = str(values[name])
    return values


def entry_of(row: asyncpg.Record) -> domain.TrayEntry:
    return domain.TrayEntry(**_strs(row, "entry_id", "person_id"))


def review_entry_of(row: asyncpg.Record) -> domain.ReviewTrayEntry:
    return domain.ReviewTrayEntry(**_strs(row, "entry_id", "person_id"))


def _worker_rel(row: asyncpg.Record) -> domain.WorkerRelationship:
    return domain.WorkerRelationship(**_strs(row, "relationship_id", "person_id"))


def _org_rel(row: asyncpg.Record) -> domain.OrgRelationship:
    return domain.OrgRelationship(**_strs(row, "relationship_id", "person_id"))


# --- the case row: local view of the referral, and the per-person lock -----------------------


async def record_referral(conn: Conn, person_id: str, urgency: str, service: str | None,
                          ordinarily_resident: bool | None, at: datetime) -> None:
    """The latest accepted referral's urgency and service, and residence when the referral says."""
    await conn.execute(
        "INSERT INTO cases (person_id, urgency, service, ordinarily_resident, updated_at)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (person_id) DO UPDATE SET urgency = EXCLUDED.urgency, service = EXCLUDED.service,"
        " ordinarily_resident = COALESCE(EXCLUDED.ordinarily_resident, cases.ordinarily_resident),"
        " updated_at = EXCLUDED.updated_at,"
        # R-T2: a later urgent referral needs Duty's urgent actions again
        " urgent_actions_done_at = CASE WHEN EXCLUDED.urgency = 'urgent'"
        " AND EXCLUDED.updated_at > cases.urgent_actions_done_at THEN NULL ELSE cases.urgent_actions_done_at END,"
        " urgent_actions_done_by = CASE WHEN EXCLUDED.urgency = 'urgent'"
        " AND EXCLUDED.updated_at > cases.urgent_actions_done_at THEN NULL ELSE cases.urgent_actions_done_by END",
        uuid.UUID(person_id), urgency, service, ordinarily_resident, at,
    )


async def case_known(conn: Conn, person_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM cases WHERE person_id = $1", uuid.UUID(person_id)))


async def lock_case(conn: asyncpg.Connection, person_id: str) -> domain.Case:
    """The person's case, locked for this transaction (created empty if new), with what hangs on it."""
    pid = uuid.UUID(person_id)
    await conn.execute("INSERT INTO cases (person_id) VALUES ($1) ON CONFLICT DO NOTHING", pid)
    row = await conn.fetchrow(
        "SELECT version, urgency, ordinarily_resident, urgent_actions_done_at, urgent_actions_done_by FROM cases"
        " WHERE person_id = $1 FOR UPDATE", pid)
    workers, orgs = await relationships_of(conn, pid)
    entry = await conn.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM tray_entries WHERE person_id = $1 AND removed_at IS NULL", pid)
    review = await conn.fetchrow(
        f"SELECT {REVIEW_COLUMNS} FROM review_tray_entries WHERE person_id = $1 AND removed_at IS NULL", pid)
    return domain.Case(
        person_id=person_id, version=row["version"], urgency=row["urgency"],
        ordinarily_resident=row["ordinarily_resident"],
        worker_relationships=tuple(_worker_rel(r) for r in workers),
        org_relationships=tuple(_org_rel(r) for r in orgs),
        open_entry=entry_of(entry) if entry else None,
        open_review_entry=review_entry_of(review) if review else None,
        urgent_actions_done_at=row["urgent_actions_done_at"], urgent_actions_done_by=row["urgent_actions_done_by"],
    )


async def record_urgent_actions_done(conn: asyncpg.Connection, person_id: str, at: datetime, by: str) -> None:
    """R-T2: Duty recorded that the urgent actions are done (who, when)."""
    await conn.execute("UPDATE cases SET urgent_actions_done_at = $2, urgent_actions_done_by = $3"
                       " WHERE person_id = $1", uuid.UUID(person_id), at, by)


async def urgency_of(conn: Conn, person_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT urgency, urgent_actions_done_at, urgent_actions_done_by FROM cases"
                               " WHERE person_id = $1", person_id)


async def bump_case(conn: asyncpg.Connection, person_id: str, version: int) -> bool:
    """Optimistic lock: True only if nobody changed the case since `version` was read."""
    done = await conn.fetchval(
        "UPDATE cases SET version = version + 1, updated_at = now() WHERE person_id = $1 AND version = $2"
        " RETURNING version", uuid.UUID(person_id), version)
    return done is not None


async def person_of_entry(conn: Conn, entry_id: uuid.UUID) -> str | None:
    found = await conn.fetchval("SELECT person_id FROM tray_entries WHERE entry_id = $1", entry_id)
    return str(found) if found else None


async def person_of_review_entry(conn: Conn, entry_id: uuid.UUID) -> str | None:
    found = await conn.fetchval("SELECT person_id FROM review_tray_entries WHERE entry_id = $1", entry_id)
    return str(found) if found else None


async def tray_entry_row(conn: Conn, entry_id: uuid.UUID) -> asyncpg.Record | None:
    """One tray entry as stored, open or removed (the read endpoint's shape is made from it)."""
    return await conn.fetchrow(f"SELECT {ENTRY_COLUMNS} FROM tray_entries WHERE entry_id = $1", entry_id)


async def review_entry_row(conn: Conn, entry_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {REVIEW_COLUMNS} FROM review_tray_entries WHERE entry_id = $1", entry_id)


async def load_review_entry(conn: Conn, entry_id: uuid.UUID | str) -> domain.ReviewTrayEntry | None:
    row = await conn.fetchrow(f"SELECT {REVIEW_COLUMNS} FROM review_tray_entries WHERE entry_id = $1",
                              uuid.UUID(str(entry_id)))
    return review_entry_of(row) if row else None


async def person_of_relationship(conn: Conn, kind: str, relationship_id: uuid.UUID) -> str | None:
    table = "worker_relationships" if kind == "worker" else "org_relationships"
    found = await conn.fetchval(f"SELECT person_id FROM {table} WHERE relationship_id = $1", relationship_id)
    return str(found) if found else None


async def load_entry(conn: Conn, entry_id: uuid.UUID | str) -> domain.TrayEntry | None:
    row = await conn.fetchrow(f"SELECT {ENTRY_COLUMNS} FROM tray_entries WHERE entry_id = $1",
                              uuid.UUID(str(entry_id)))
    return entry_of(row) if row else None


# --- writes -------------------------------------------------------------------------------------


async def save_worker_relationship(conn: asyncpg.Connection, rel: domain.WorkerRelationship) -> None:
    await conn.execute(
        "INSERT INTO worker_relationships (relationship_id, person_id, worker_id, relationship, start_date,"
        " created_at, created_by, end_date, end_reason, ended_at, ended_by, team_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (relationship_id) DO UPDATE SET"
        " end_date = EXCLUDED.end_date, end_reason = EXCLUDED.end_reason, ended_at = EXCLUDED.ended_at,"
        " ended_by = EXCLUDED.ended_by",
        uuid.UUID(rel.relationship_id), uuid.UUID(rel.person_id), rel.worker_id, rel.relationship, rel.start_date,
        rel.created_at, rel.created_by, rel.end_date, rel.end_reason, rel.ended_at, rel.ended_by, rel.team_id,
    )


async def save_org_relationship(conn: asyncpg.Connection, rel: domain.OrgRelationship) -> None:
    await conn.execute(
        "INSERT INTO org_relationships (relationship_id, person_id, team_id, relationship, start_date,"
        " created_at, created_by, end_date, end_reason, ended_at, ended_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (relationship_id) DO UPDATE SET"
        " end_date = EXCLUDED.end_date, end_reason = EXCLUDED.end_reason, ended_at = EXCLUDED.ended_at,"
        " ended_by = EXCLUDED.ended_by",
        uuid.UUID(rel.relationship_id), uuid.UUID(rel.person_id), rel.team_id, rel.relationship, rel.start_date,
        rel.created_at, rel.created_by, rel.end_date, rel.end_reason, rel.ended_at, rel.ended_by,
    )


Entry = domain.TrayEntry | domain.ReviewTrayEntry
_TABLES: dict[type, tuple[str, list[str]]] = {  # entry kind -> its table and columns
    domain.TrayEntry: ("tray_entries", [c.strip() for c in ENTRY_COLUMNS.split(",")]),
    domain.ReviewTrayEntry: ("review_tray_entries", [c.strip() for c in REVIEW_COLUMNS.split(",")]),
}


def _entry_args(entry: Entry) -> tuple[str, list[str], list[Any]]:
    table, fields = _TABLES[type(entry)]
    values = asdict(entry)
    values["entry_id"], values["person_id"] = uuid.UUID(entry.entry_id), uuid.UUID(entry.person_id)
    return table, fields, [values[name] for name in fields]


async def insert_entry(conn: asyncpg.Connection, entry: Entry) -> None:
    """A new Planned Work Tray or Review tray entry."""
    table, fields, args = _entry_args(entry)
    placeholders = ", ".join(f"${i}" for i in range(1, len(fields) + 1))
    await conn.execute(f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({placeholders})", *args)


async def update_entry(conn: asyncpg.Connection, entry: Entry, loaded_version: int) -> bool:
    """Write a changed entry if it is still at the version it was loaded at (optimistic lock)."""
    table, fields, args = _entry_args(entry)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=1) if name != "entry_id")
    done = await conn.fetchval(
        f"UPDATE {table} SET {sets} WHERE entry_id = $1 AND version = ${len(fields) + 1} RETURNING 1",
        *args, loaded_version)
    return done is not None


# --- reads for the query endpoints --------------------------------------------------------------


async def allocations_of(conn: Conn, worker_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {WORKER_REL_COLUMNS} FROM worker_relationships"
        " WHERE worker_id = $1 AND ended_at IS NULL ORDER BY start_date, created_at", worker_id)


async def relationships_of(conn: Conn, person_id: uuid.UUID) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    workers = await conn.fetch(
        f"SELECT {WORKER_REL_COLUMNS} FROM worker_relationships WHERE person_id = $1"
        " ORDER BY created_at", person_id)
    orgs = await conn.fetch(
        f"SELECT {ORG_REL_COLUMNS} FROM org_relationships WHERE person_id = $1"
        " ORDER BY created_at", person_id)
    return list(workers), list(orgs)


async def open_trays_of(conn: Conn, person_id: uuid.UUID) -> list[asyncpg.Record]:
    """The person's open Planned Work Tray and Review tray entries: which kind, which entry, which team."""
    return await conn.fetch(
        "SELECT 'planned_work' AS tray, entry_id, team_id FROM tray_entries WHERE person_id = $1 AND removed_at IS NULL"
        " UNION ALL SELECT 'review', entry_id, team_id FROM review_tray_entries"
        " WHERE person_id = $1 AND removed_at IS NULL", person_id)


async def open_entries_of(conn: Conn, person_id: uuid.UUID) -> list[asyncpg.Record]:
    """The person's open Planned Work Tray entries, whole (one at most while the case keeps to R-T1)."""
    return await conn.fetch(f"SELECT {ENTRY_COLUMNS} FROM tray_entries WHERE person_id = $1 AND removed_at IS NULL",
                            person_id)


async def load_case(conn: Conn, person_id: str) -> domain.Case:
    """The case without a lock (for previews)."""
    workers, orgs = await relationships_of(conn, uuid.UUID(person_id))
    entry = await conn.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM tray_entries WHERE person_id = $1 AND removed_at IS NULL",
        uuid.UUID(person_id))
    return domain.Case(person_id, worker_relationships=tuple(_worker_rel(r) for r in workers),
                       org_relationships=tuple(_org_rel(r) for r in orgs),
                       open_entry=entry_of(entry) if entry else None)


SORTS = {
    "priority": "priority_rank", "complexity": "complexity_rank", "rag": "rag_rank",
    # longer wait = earlier placed: days_waiting ascending is placed_at descending
    "days_waiting": "placed_at DESC", "placed_at": "placed_at", "next_review_at": "next_review_at",
    "review_overdue": "(review_overdue OR next_review_at <= $2::timestamptz) DESC",
    "escalated_at": "escalated_at DESC NULLS LAST",  # the latest escalation first
}


def order_by(sort: list[str]) -> str:
    """`priority,-days_waiting` → SQL ORDER BY; a leading `-` reverses a key."""
    parts = []
    for key in sort:
        descending = key.startswith("-")
        column = SORTS[key.lstrip("-")]
        if descending:
            column = column.replace(" DESC", "", 1) if " DESC" in column else f"{column} DESC"
        parts.append(column)
    return ", ".join([*parts, "placed_at", "entry_id"])


async def tray(
    conn: Conn, team_id: str, now: datetime, *, sort: list[str], rag: list[str], priority: list[str],
    complexity: list[str], review_overdue: bool | None, min_days_waiting: int | None,
    max_days_waiting: int | None, limit: int, offset: int, escalated: bool | None = None,
) -> tuple[int, list[asyncpg.Record]]:
    """Open entries of a team's tray, filtered and sorted; the total before paging."""
    where = ["team_id = $1", "removed_at IS NULL"]
    args: list[Any] = [team_id, now]
    for column, values in (("rag", rag), ("priority", priority), ("complexity", complexity)):
        if values:
            args.append(values)
            where.append(f"{column} = ANY(${len(args)}::text[])")
    if review_overdue is not None:
        where.append(("" if review_overdue else "NOT ") + "(review_overdue OR next_review_at <= $2::timestamptz)")
    if escalated is not None:
        where.append(f"escalated_at IS {'NOT ' if escalated else ''}NULL")
    if min_days_waiting is not None:
        args.append(min_days_waiting)
        where.append(f"placed_at <= $2::timestamptz - make_interval(days => ${len(args)})")
    if max_days_waiting is not None:
        args.append(max_days_waiting + 1)
        where.append(f"placed_at > $2::timestamptz - make_interval(days => ${len(args)})")
    condition = " AND ".join(where)
    total = await conn.fetchval(
        f"SELECT count(*) FROM tray_entries WHERE {condition} AND $2::timestamptz IS NOT NULL", *args)
    args += [limit, offset]
    rows = await conn.fetch(
        f"SELECT {ENTRY_COLUMNS}, (review_overdue OR next_review_at <= $2::timestamptz) AS overdue_now"
        f" FROM tray_entries WHERE {condition} ORDER BY {order_by(sort)}"
        f" LIMIT ${len(args) - 1} OFFSET ${len(args)}", *args)
    return total, list(rows)


async def tray_report(conn: Conn, team_id: str, now: datetime, target_days: int) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT count(*) AS total,"
        " count(*) FILTER (WHERE rag = 'red') AS red,"
        " count(*) FILTER (WHERE rag = 'amber') AS amber,"
        " count(*) FILTER (WHERE rag = 'green') AS green,"
        " count(*) FILTER (WHERE priority = 'high') AS high,"
        " count(*) FILTER (WHERE priority = 'medium') AS medium,"
        " count(*) FILTER (WHERE priority = 'low') AS low,"
        " min(placed_at) AS oldest_placed_at,"
        " count(*) FILTER (WHERE placed_at <= $2::timestamptz - make_interval(days => $3)) AS past_target,"
        " count(*) FILTER (WHERE review_overdue OR next_review_at <= $2::timestamptz) AS reviews_overdue,"
        " count(*) FILTER (WHERE escalated_at IS NOT NULL) AS escalated,"
        " count(*) FILTER (WHERE last_contacted IS FALSE) AS not_reached_at_last_review"
        " FROM tray_entries WHERE team_id = $1 AND removed_at IS NULL",
        team_id, now, target_days + 1)


async def review_tray(conn: Conn, team_id: str, today: Any, *, due: bool | None, limit: int,
                      offset: int) -> tuple[int, list[asyncpg.Record]]:
    """Open entries of a team's Review tray by review date; `due` filters on due (date come or timer fired)."""
    where = ["team_id = $1", "removed_at IS NULL", "$2::date IS NOT NULL"]  # $2 always typed
    if due is not None:
        where.append(("" if due else "NOT ") + "(due_at IS NOT NULL OR review_due <= $2::date)")
    condition = " AND ".join(where)
    total = await conn.fetchval(
        f"SELECT count(*) FROM review_tray_entries WHERE {condition}", team_id, today)
    rows = await conn.fetch(
        f"SELECT {REVIEW_COLUMNS} FROM review_tray_entries WHERE {condition}"
        " ORDER BY review_due, added_at, entry_id LIMIT $3 OFFSET $4", team_id, today, limit, offset)
    return total, list(rows)
