"""Queries of the workflow schema: workflows, steps, requests and their history."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.workflow.domain import (
    CaseView,
    History,
    LatestStep,
    NextAction,
    OtherStep,
    Request,
    Step,
    Timer,
    Workflow,
    carers_assessment_types,
    listed_carers,
    london_date,
)
from services.workflow.pack import PackRegistry
from shared.actor import Actor
from shared.events.web import AccountListed

STEP_COLUMNS = (
    "step_id, workflow_id, person_id, linked_person_id, step_type, pack_version, state,"
    " assignee_kind, assignee_id, priority, due_date, version, values, completed_sections,"
    " provenance, created_at, created_by, updated_at, updated_by, next_actions, forms, return_note"
)
Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def workflow_exists(conn: asyncpg.Connection, workflow_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM workflows WHERE workflow_id = $1", uuid.UUID(workflow_id)))


async def insert_workflow(conn: asyncpg.Connection, workflow: Workflow) -> None:
    await conn.execute(
        "INSERT INTO workflows (workflow_id, person_id, status, origin, started_at, started_by)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        uuid.UUID(workflow.workflow_id), uuid.UUID(workflow.person_id), workflow.status,
        workflow.origin, workflow.started_at, workflow.started_by,
    )


async def close_workflows(conn: asyncpg.Connection, workflow_ids: Iterable[str], at: datetime) -> None:
    await conn.execute(
        "UPDATE workflows SET status = 'closed', closed_at = $2 WHERE workflow_id = ANY($1::uuid[])",
        [uuid.UUID(w) for w in workflow_ids], at,
    )


async def insert_step(conn: asyncpg.Connection, step: Step, *, history: bool = True) -> None:
    await conn.execute(
        f"INSERT INTO steps ({STEP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
        " $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
        uuid.UUID(step.step_id), uuid.UUID(step.workflow_id), uuid.UUID(step.person_id),
        uuid.UUID(step.linked_person_id) if step.linked_person_id else None, step.step_type,
        step.pack_version, step.state, step.assignee_kind, step.assignee_id, step.priority,
        step.due_date, step.version, dict(step.values), list(step.completed_sections), step.provenance,
        step.created_at, step.created_by, step.updated_at or step.created_at,
        step.updated_by or step.created_by, [a.to_json() for a in step.next_actions],
        list(step.forms), step.return_note,
    )
    if history:
        await add_history(conn, step.step_id, at=step.created_at, actor=step.created_by,
                          what="step.created", details={"state": step.state, "provenance": step.provenance})


async def update_step(conn: asyncpg.Connection, step: Step) -> None:
    await conn.execute(
        "UPDATE steps SET state = $2, assignee_kind = $3, assignee_id = $4, priority = $5,"
        " due_date = $6, version = $7, values = $8, completed_sections = $9, next_actions = $10,"
        " forms = $11, return_note = $12, updated_at = $13, updated_by = $14 WHERE step_id = $1",
        uuid.UUID(step.step_id), step.state, step.assignee_kind, step.assignee_id, step.priority,
        step.due_date, step.version, dict(step.values), list(step.completed_sections),
        [a.to_json() for a in step.next_actions], list(step.forms), step.return_note,
        step.updated_at, step.updated_by,
    )


def step_from_row(row: Mapping[str, Any]) -> Step:
    return Step(
        step_id=str(row["step_id"]), workflow_id=str(row["workflow_id"]), person_id=str(row["person_id"]),
        step_type=row["step_type"], pack_version=row["pack_version"], state=row["state"],
        assignee_kind=row["assignee_kind"], assignee_id=row["assignee_id"], priority=row["priority"],
        created_at=row["created_at"], created_by=row["created_by"], provenance=row["provenance"],
        due_date=row["due_date"],
        linked_person_id=str(row["linked_person_id"]) if row["linked_person_id"] else None,
        version=row["version"], values=row["values"], completed_sections=tuple(row["completed_sections"]),
        next_actions=tuple(NextAction.from_json(a) for a in row["next_actions"]),
        forms=tuple(row["forms"]), return_note=row["return_note"], updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


async def load_step(conn: Conn, step_id: uuid.UUID, *, for_update: bool = False) -> Step | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {STEP_COLUMNS} FROM steps WHERE step_id = $1{lock}", step_id)
    return step_from_row(row) if row else None


async def steps_of(conn: Conn, person_id: uuid.UUID, *, for_update: bool = False) -> list[Step]:
    lock = " FOR UPDATE" if for_update else ""
    rows = await conn.fetch(
        f"SELECT {STEP_COLUMNS} FROM steps WHERE person_id = $1 ORDER BY created_at{lock}", person_id)
    return [step_from_row(r) for r in rows]


async def case_view(
    conn: Conn, person_id: str, *, carer_ids: Sequence[str] = (), carer_step_types: Sequence[str] = (),
) -> CaseView:
    """The person's open steps, latest finished values per step type (in finishing order), open
    workflows, finished step types in order (R-K5), latest step per type (R-K7), which of
    `carer_ids` have a step of `carer_step_types` on their own record (R-K9), and live purchase orders (R-C5)."""
    pid = uuid.UUID(person_id)
    others = await conn.fetch(
        "SELECT step_id, step_type, state, pack_version, workflow_id, due_date FROM steps WHERE person_id = $1"
        " AND state IN ('incoming', 'incomplete', 'returned', 'awaiting_authorisation', 'future')"
        " ORDER BY created_at", pid)
    finished = await conn.fetch(
        "SELECT step_type, values FROM (SELECT DISTINCT ON (step_type) step_type, values, updated_at"
        " FROM steps WHERE person_id = $1 AND state = 'finished' ORDER BY step_type, updated_at DESC) f"
        " ORDER BY updated_at", pid)
    sequence = await conn.fetch(
        "SELECT step_type FROM steps WHERE person_id = $1 AND state = 'finished' ORDER BY updated_at", pid)
    latest = await conn.fetch(
        "SELECT DISTINCT ON (step_type) step_type, step_id, created_at, values FROM steps"
        " WHERE person_id = $1 AND state <> 'cancelled' ORDER BY step_type, created_at DESC", pid)
    assessed: list[asyncpg.Record] = []
    carers = [uuid.UUID(c) for c in carer_ids if _is_uuid(c)]
    if carers and carer_step_types:
        assessed = await conn.fetch(
            "SELECT DISTINCT person_id FROM steps WHERE person_id = ANY($1::uuid[])"
            " AND step_type = ANY($2::text[]) AND state <> 'cancelled'", carers, list(carer_step_types))
    workflows = await conn.fetch(
        "SELECT workflow_id FROM workflows WHERE person_id = $1 AND status = 'open'", pid)
    due_dates = await conn.fetch(
        "SELECT DISTINCT ON (step_type) step_type, due_date FROM steps WHERE person_id = $1"
        " AND state = 'finished' AND due_date IS NOT NULL ORDER BY step_type, updated_at DESC", pid)
    orders = await conn.fetch(
        "SELECT kind, array_agg(po_request_id::text ORDER BY requested_at, po_request_id) AS ids FROM po_requests"
        " WHERE person_id = $1 AND end_requested_at IS NULL GROUP BY kind", pid)
    return CaseView(
        other_steps=tuple(OtherStep(str(r["step_id"]), r["step_type"], r["state"], r["pack_version"],
                                    str(r["workflow_id"]), r["due_date"]) for r in others),
        finished_values={r["step_type"]: r["values"] for r in finished},
        workflow_ids=tuple(str(r["workflow_id"]) for r in workflows),
        finished_due_dates={r["step_type"]: r["due_date"] for r in due_dates},
        finished_sequence=tuple(r["step_type"] for r in sequence),
        latest={r["step_type"]: LatestStep(str(r["step_id"]), london_date(r["created_at"]), r["values"])
                for r in latest},
        carers_assessed=frozenset(str(r["person_id"]) for r in assessed),
        live_orders={r["kind"]: tuple(r["ids"]) for r in orders},
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def case_of_step(conn: Conn, packs: PackRegistry, step: Step) -> CaseView:
    """The case view of the step's person, with the carers its checklist lists looked up (R-K9)."""
    defn = packs.step(step.step_type, step.pack_version)
    return await case_view(conn, step.person_id, carer_ids=listed_carers(step, defn),
                           carer_step_types=carers_assessment_types(packs))


async def person_of_step(conn: Conn, step_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT person_id, step_type, pack_version, next_actions FROM steps"
                               " WHERE step_id = $1", step_id)


async def assignees_of_person(conn: Conn, person_id: str) -> set[str]:
    """R-W13: "worker:<id>" / "team:<id>" of every worker and team a step of the person is or was with."""
    rows = await conn.fetch(
        "SELECT DISTINCT assignee_kind, assignee_id FROM steps WHERE person_id = $1 AND state <> 'cancelled'"
        " UNION SELECT 'worker', updated_by FROM steps WHERE person_id = $1 AND state <> 'cancelled'",
        uuid.UUID(person_id))
    return {f"{row['assignee_kind']}:{row['assignee_id']}" for row in rows}


def _request(row: Mapping[str, Any]) -> Request:
    return Request(
        request_id=str(row["request_id"]), step_id=str(row["step_id"]), person_id=str(row["person_id"]),
        name=row["name"], kind=row["kind"], required=row["required"], to_kind=row["to_kind"],
        to_id=row["to_id"], note=row["note"], state=row["state"], sent_by=row["sent_by"],
        sent_at=row["sent_at"], completed_by=row["completed_by"], completed_at=row["completed_at"],
        completion_note=row["completion_note"],
    )


async def requests_of(conn: Conn, step_id: str) -> list[Request]:
    rows = await conn.fetch("SELECT * FROM requests WHERE step_id = $1 ORDER BY sent_at", uuid.UUID(step_id))
    return [_request(r) for r in rows]


async def load_request(conn: Conn, request_id: uuid.UUID) -> Request | None:
    row = await conn.fetchrow("SELECT * FROM requests WHERE request_id = $1", request_id)
    return _request(row) if row else None


async def save_requests(conn: asyncpg.Connection, requests: Iterable[Request]) -> None:
    rows = [
        (uuid.UUID(r.request_id), uuid.UUID(r.step_id), uuid.UUID(r.person_id), r.name, r.kind, r.required,
         r.to_kind, r.to_id, r.note, r.state, r.sent_by, r.sent_at, r.completed_by, r.completed_at,
         r.completion_note)
        for r in requests
    ]
    if rows:
        await conn.executemany(
            "INSERT INTO requests VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            " ON CONFLICT (request_id) DO UPDATE SET state = EXCLUDED.state,"
            " completed_by = EXCLUDED.completed_by, completed_at = EXCLUDED.completed_at,"
            " completion_note = EXCLUDED.completion_note", rows)


async def add_history(
    conn: asyncpg.Connection, step_id: str, *, at: Any, actor: str, what: str, details: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO step_history (step_id, at, actor, what, details) VALUES ($1, $2, $3, $4, $5)",
        uuid.UUID(step_id), at, actor, what, details,
    )


async def add_histories(conn: asyncpg.Connection, entries: Iterable[History]) -> None:
    rows = [(uuid.UUID(h.step_id), h.at, h.actor, h.what, h.details) for h in entries]
    if rows:
        await conn.executemany(
            "INSERT INTO step_history (step_id, at, actor, what, details) VALUES ($1, $2, $3, $4, $5)", rows)


async def histories_of(conn: Conn, step_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """Each step's history, oldest first, in one read (a person's chronology)."""
    found: dict[uuid.UUID, list[asyncpg.Record]] = {step_id: [] for step_id in step_ids}
    for row in await conn.fetch("SELECT step_id, at, actor, what, details FROM step_history"
                                " WHERE step_id = ANY($1::uuid[]) ORDER BY entry_id", step_ids):
        found[row["step_id"]].append(row)
    return found


async def assignments_of(conn: Conn, step_id: uuid.UUID) -> list[dict[str, Any]]:
    """The details of the step's `step.assigned` and `step.started` history (who it went to, from whom), newest
    first (R-W14)."""
    rows = await conn.fetch("SELECT details FROM step_history WHERE step_id = $1"
                            " AND what IN ('step.assigned', 'step.started') ORDER BY entry_id DESC", step_id)
    return [dict(r["details"]) for r in rows]


async def steps_of_person(pool: Conn, person_id: uuid.UUID) -> list[asyncpg.Record]:
    """The person's steps, each with the worker who last assigned it (a ground to see the person: issue #21 §6)."""
    return await pool.fetch(
        f"SELECT {STEP_COLUMNS}, (SELECT h.actor FROM step_history h WHERE h.step_id = steps.step_id"
        " AND h.what = 'step.assigned' ORDER BY h.entry_id DESC LIMIT 1) AS assigned_by"
        " FROM steps WHERE person_id = $1 ORDER BY created_at", person_id
    )


# a work list's buckets: returned and awaiting authorisation are listed as incomplete
BUCKET_OF_STATE = ("CASE state WHEN 'incoming' THEN 'incoming' WHEN 'future' THEN 'future' ELSE 'incomplete' END")
OPEN_WORK = ("assignee_kind = $1 AND assignee_id = $2"
             " AND state IN ('incoming', 'incomplete', 'returned', 'awaiting_authorisation', 'future')")
# the sort keys of a work list, each with its own ties broken by creation time (then id: a stable page order)
WORK_SORTS = {
    "priority": ["CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END", "created_at"],
    "waiting": ["created_at"],
    "due": ["due_date", "created_at"],
    "person": ["person_id", "created_at"],
    "step_type": ["step_type", "created_at"],
}


def _work_order(sort: str) -> str:
    """ORDER BY for a sort key; `-key` reverses it. A step with no due date comes last either way."""
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    terms = [f"{t} {'DESC' if descending else 'ASC'}" + (" NULLS LAST" if t == "due_date" else "")
             for t in WORK_SORTS[key]]
    return ", ".join([*terms, "step_id"])


async def work_counts(pool: Conn, kind: str, assignee_id: str) -> dict[str, int]:
    """How many open and future steps the worker or team holds, per bucket."""
    rows = await pool.fetch(f"SELECT {BUCKET_OF_STATE} AS bucket, count(*) AS n FROM steps WHERE {OPEN_WORK}"
                            " GROUP BY 1", kind, assignee_id)
    return {r["bucket"]: r["n"] for r in rows}


async def work_page(pool: Conn, kind: str, assignee_id: str, *, sort: str, size: int,
                    offsets: dict[str, int]) -> list[asyncpg.Record]:
    """One page of each bucket of the worker's or team's work, in `sort` order: `size` steps from the bucket's
    offset; each row says its bucket."""
    return await pool.fetch(
        f"SELECT * FROM (SELECT {STEP_COLUMNS}, {BUCKET_OF_STATE} AS bucket,"
        f" row_number() OVER (PARTITION BY {BUCKET_OF_STATE} ORDER BY {_work_order(sort)}) AS n"
        f" FROM steps WHERE {OPEN_WORK}) page"
        " WHERE n - CASE bucket WHEN 'incoming' THEN $3::int WHEN 'incomplete' THEN $4::int ELSE $5::int END"
        " BETWEEN 1 AND $6::int ORDER BY n",
        kind, assignee_id, offsets["incoming"], offsets["incomplete"], offsets["future"], size,
    )


async def awaiting_authorisation(pool: Conn, kind: str, target_id: str) -> list[asyncpg.Record]:
    """Steps awaiting authorisation (R-RQ4/R-RQ7) whose open REQUIRED request is to the worker or team (or,
    with no such request open, assigned to them): with that request, longest waiting first. The worker who sent
    it does not see their own step: no one authorises their own work."""
    step_columns = ", ".join(f"s.{c.strip()}" for c in STEP_COLUMNS.split(","))
    return await pool.fetch(
        f"SELECT {step_columns}, r.request_id, r.name AS request_name, r.to_kind, r.to_id, r.note AS request_note,"
        " r.sent_by, r.sent_at FROM steps s LEFT JOIN LATERAL (SELECT * FROM requests q WHERE q.step_id = s.step_id"
        " AND q.state = 'open' AND q.kind = 'request' AND q.required ORDER BY q.sent_at DESC LIMIT 1) r ON true"
        " WHERE s.state = 'awaiting_authorisation'"
        " AND ((r.to_kind = $1 AND r.to_id = $2)"
        " OR (r.request_id IS NULL AND s.assignee_kind = $1 AND s.assignee_id = $2))"
        " ORDER BY COALESCE(r.sent_at, s.updated_at), s.step_id",
        kind, target_id,
    )


# --- timers set with the scheduler (R-S1, R-K6) -------------------------------------------------


async def save_timer(conn: asyncpg.Connection, timer: Timer, *, set_message_id: uuid.UUID, at: datetime) -> None:
    """The latest timer.set sent for the key; a timer.due caused by any other is stale."""
    await conn.execute(
        "INSERT INTO timers (key, step_id, kind, due_at, set_message_id, set_at) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (key) DO UPDATE SET step_id = EXCLUDED.step_id, kind = EXCLUDED.kind,"
        " due_at = EXCLUDED.due_at, set_message_id = EXCLUDED.set_message_id, set_at = EXCLUDED.set_at",
        timer.key, uuid.UUID(timer.step_id), timer.kind, timer.due_at, set_message_id, at,
    )


async def delete_timers(conn: asyncpg.Connection, keys: Iterable[str]) -> list[str]:
    """Forget these timers; returns the keys that were set (only those need a timer.cancel)."""
    keys = list(keys)
    if not keys:
        return []  # most transitions cancel none: no round trip
    rows = await conn.fetch("DELETE FROM timers WHERE key = ANY($1::text[]) RETURNING key", keys)
    return [r["key"] for r in rows]


async def load_timer(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT key, step_id, kind, due_at, set_message_id FROM timers WHERE key = $1"
                               " FOR UPDATE", key)


async def timers_of_step(conn: Conn, step_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT key, kind, due_at, set_message_id FROM timers WHERE step_id = $1"
                            " ORDER BY key", step_id)


# --- purchase orders (R-F1, R-F2): services/workflow/brokerage.py ------------------------------------


async def insert_po_request(conn: asyncpg.Connection, *, po_request_id: str, source_key: str, person_id: str,
                            step_id: str, kind: str, requested: dict[str, Any], at: datetime,
                            watching_provision: bool) -> bool:
    """The order under its source key; False when that key was kept before (a redelivery)."""
    return bool(await conn.fetchval(
        "INSERT INTO po_requests (po_request_id, source_key, person_id, step_id, kind, requested, requested_at,"
        " watching_provision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING 1",
        uuid.UUID(po_request_id), source_key, uuid.UUID(person_id), uuid.UUID(step_id), kind, requested, at,
        watching_provision))


async def stop_watching_unprovided(conn: asyncpg.Connection, po_request_id: uuid.UUID) -> uuid.UUID | None:
    """The person of an order still watched with no offer and no confirmation, now no longer watched."""
    return await conn.fetchval(
        "UPDATE po_requests SET watching_provision = false WHERE po_request_id = $1 AND watching_provision"
        " AND offered_at IS NULL AND confirmed_at IS NULL RETURNING person_id", po_request_id)


async def add_lack_of_provision(conn: asyncpg.Connection, po_request_id: uuid.UUID, person_id: uuid.UUID,
                                since: datetime) -> None:
    await conn.execute("INSERT INTO lack_of_provision (po_request_id, person_id, since) VALUES ($1, $2, $3)"
                       " ON CONFLICT DO NOTHING", po_request_id, person_id, since)


async def lock_po_request(conn: asyncpg.Connection, po_request_id: uuid.UUID) -> asyncpg.Record | None:
    # R-F7: `requested` is the order's current terms, after any amendment
    return await conn.fetchrow("SELECT po_request_id, person_id, kind, coalesce(current, requested) AS requested"
                               " FROM po_requests WHERE po_request_id = $1 FOR UPDATE", po_request_id)


async def record_offer(conn: asyncpg.Connection, po_request_id: uuid.UUID, at: datetime, provider: str) -> None:
    """The first offer is kept; later ones change nothing."""
    await conn.execute(
        "UPDATE po_requests SET offered_at = coalesce(offered_at, $2),"
        " offered_provider = coalesce(offered_provider, $3) WHERE po_request_id = $1", po_request_id, at, provider)


async def end_lack_of_provision(conn: asyncpg.Connection, po_request_id: uuid.UUID) -> bool:
    """Off the list and no longer watched; True when it was still watched (its timer needs cancelling)."""
    await conn.execute("DELETE FROM lack_of_provision WHERE po_request_id = $1", po_request_id)
    return bool(await conn.fetchval("UPDATE po_requests SET watching_provision = false WHERE po_request_id = $1"
                                    " AND watching_provision RETURNING 1", po_request_id))


async def record_confirmation(conn: asyncpg.Connection, po_request_id: uuid.UUID, at: datetime, provider: str,
                              start_date: Any) -> None:
    await conn.execute(
        "UPDATE po_requests SET confirmed_at = $2, confirmed_provider = $3, confirmed_start_date = $4"
        " WHERE po_request_id = $1 AND confirmed_at IS NULL", po_request_id, at, provider, start_date)


async def source_key_used(conn: asyncpg.Connection, source_key: str) -> bool:
    """R-F7: an order was requested, or one amended, under this key before (a redelivery)."""
    return bool(await conn.fetchval(
        "SELECT 1 FROM po_requests WHERE source_key = $1 UNION ALL SELECT 1 FROM po_amendments"
        " WHERE source_key = $1 LIMIT 1", source_key))


async def live_order_of(conn: asyncpg.Connection, person_id: str, kinds: Sequence[str]) -> asyncpg.Record | None:
    """R-F7: the person's live (not ended) order of the first of `kinds` there is, locked, with its current terms."""
    return await conn.fetchrow(
        "SELECT po_request_id, kind, coalesce(current, requested) AS current FROM po_requests"
        " WHERE person_id = $1 AND kind = ANY($2::text[]) AND end_requested_at IS NULL"
        " AND requested->>'one_off_amount' IS NULL"  # a one-off payment is an order of its own, never the package
        " ORDER BY array_position($2::text[], kind), requested_at DESC, po_request_id LIMIT 1 FOR UPDATE",
        uuid.UUID(person_id), list(kinds))


async def amend_po_request(conn: asyncpg.Connection, *, source_key: str, po_request_id: uuid.UUID, step_id: str,
                           changes: dict[str, Any], current: dict[str, Any], at: datetime) -> bool:
    """R-F7: the amendment under its source key and the order's new current terms; False if kept before."""
    inserted = await conn.fetchval(
        "INSERT INTO po_amendments (source_key, po_request_id, step_id, changes, amended_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
        source_key, po_request_id, uuid.UUID(step_id), changes, at)
    if inserted:
        await conn.execute("UPDATE po_requests SET current = $2 WHERE po_request_id = $1", po_request_id, current)
    return bool(inserted)


async def amendment_of_live_order(conn: asyncpg.Connection, source_key: str) -> asyncpg.Record | None:
    """R-F7: the amendment kept under `source_key` with its order's current terms, the order locked; None when
    there is none or the order has ended."""
    return await conn.fetchrow(
        "SELECT a.po_request_id, a.changes, coalesce(p.current, p.requested) AS current FROM po_amendments a"
        " JOIN po_requests p USING (po_request_id) WHERE a.source_key = $1 AND p.end_requested_at IS NULL"
        " FOR UPDATE OF p", source_key)


async def end_live_orders(conn: asyncpg.Connection, person_id: uuid.UUID, end_date: Any, reason: str,
                          at: datetime) -> list[uuid.UUID]:
    """R-F7: every live order of the person now ends on `end_date` (the case closed)."""
    rows = await conn.fetch(
        "UPDATE po_requests SET end_date = $2, end_reason = $3, end_requested_at = $4 WHERE person_id = $1"
        " AND end_requested_at IS NULL RETURNING po_request_id", person_id, end_date, reason, at)
    return sorted(r["po_request_id"] for r in rows)


async def end_live_order_of_source(conn: asyncpg.Connection, source_key: str, end_date: Any, reason: str,
                                   at: datetime) -> list[uuid.UUID]:
    """R-F7: the live order raised under `source_key` (a next action) now ends on `end_date`."""
    rows = await conn.fetch(
        "UPDATE po_requests SET end_date = $2, end_reason = $3, end_requested_at = $4 WHERE source_key = $1"
        " AND end_requested_at IS NULL RETURNING po_request_id", source_key, end_date, reason, at)
    return [r["po_request_id"] for r in rows]


async def end_other_live_orders(conn: asyncpg.Connection, person_id: uuid.UUID, kinds: Sequence[str],
                                kept: uuid.UUID, end_date: Any, reason: str, at: datetime) -> list[uuid.UUID]:
    """R-F7: the person's live orders of `kinds` other than `kept` (duplicates of its package) now end."""
    rows = await conn.fetch(
        "UPDATE po_requests SET end_date = $4, end_reason = $5, end_requested_at = $6 WHERE person_id = $1"
        " AND kind = ANY($2::text[]) AND po_request_id <> $3 AND end_requested_at IS NULL"
        " AND requested->>'one_off_amount' IS NULL RETURNING po_request_id",
        person_id, list(kinds), kept, end_date, reason, at)
    return sorted(r["po_request_id"] for r in rows)


async def end_po_request(conn: asyncpg.Connection, po_request_id: uuid.UUID, end_date: Any, at: datetime,
                         reason: str) -> bool:
    """The order now ends on `end_date`; False when its end was asked for before."""
    return bool(await conn.fetchval(
        "UPDATE po_requests SET end_date = $2, end_requested_at = $3, end_reason = $4 WHERE po_request_id = $1"
        " AND end_requested_at IS NULL RETURNING 1", po_request_id, end_date, at, reason))


async def end_interim_orders(conn: asyncpg.Connection, person_id: uuid.UUID, end_date: Any,
                             at: datetime, reason: str) -> list[uuid.UUID]:
    """The person's interim homecare orders not yet ended, now ending on `end_date`."""
    rows = await conn.fetch(
        "UPDATE po_requests SET end_date = $2, end_requested_at = $3, end_reason = $4 WHERE person_id = $1"
        " AND kind = 'interim_homecare' AND end_requested_at IS NULL RETURNING po_request_id",
        person_id, end_date, at, reason)
    return [r["po_request_id"] for r in rows]


async def lack_of_provision_list(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT l.person_id, l.po_request_id, l.since, p.step_id, p.requested FROM lack_of_provision l"
        " JOIN po_requests p USING (po_request_id) ORDER BY l.since, l.po_request_id")


async def purchase_orders_of(conn: Conn, person_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM po_requests WHERE person_id = $1 ORDER BY requested_at, po_request_id", person_id)


async def carried_source(conn: Conn, person_id: str, step_type: str, before: datetime) -> asyncpg.Record | None:
    """R-W7: the person's step of that type whose values a step created at `before` carried: the latest one
    finished by then (a finished step is locked, so its last update is its finish)."""
    return await conn.fetchrow(
        "SELECT step_id, step_type, updated_at AS finished_at FROM steps WHERE person_id = $1 AND step_type = $2"
        " AND state = 'finished' AND updated_at <= $3 ORDER BY updated_at DESC LIMIT 1",
        uuid.UUID(person_id), step_type, before)


# --- who workflow has seen act (R-RQ9) --------------------------------------------------------------


async def saw_worker(conn: asyncpg.Connection, actor: Actor, at: datetime) -> None:
    """The roles and teams a worker acted with, for a worker the desk's directory has not listed yet;
    rewritten only when they change (no lock otherwise)."""
    # one round trip: the UPDATE sees the table as it was before the INSERT (one snapshot)
    await conn.execute(
        "WITH added AS (INSERT INTO known_workers (worker_id, roles, team_ids, since) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (worker_id) DO NOTHING)"
        " UPDATE known_workers SET roles = $2, team_ids = $3, since = $4 WHERE worker_id = $1"
        " AND listed_at IS NULL AND (roles <> $2 OR team_ids <> $3)",
        actor.worker_id, sorted(actor.roles), sorted(actor.team_ids), at)


async def list_worker(conn: asyncpg.Connection, listed: AccountListed) -> None:
    """The desk's listing of an account (R-RQ9), unless a later one is already kept."""
    await conn.execute(
        "INSERT INTO known_workers (worker_id, roles, team_ids, since, active, listed_at, display_name)"
        " VALUES ($1, $2, $3, $4, $5, $4, $6) ON CONFLICT (worker_id) DO UPDATE"
        " SET roles = $2, team_ids = $3, since = $4, active = $5, listed_at = $4, display_name = $6"
        " WHERE known_workers.listed_at IS NULL OR known_workers.listed_at <= $4",
        listed.worker_id, sorted(listed.roles), sorted(listed.team_ids), listed.as_of, listed.active,
        listed.display_name)


async def worker_names(conn: Conn, worker_ids: Iterable[str]) -> dict[str, str]:
    """The names the desk's directory gives these workers (those it has named)."""
    rows = await conn.fetch("SELECT worker_id, display_name FROM known_workers"
                            " WHERE worker_id = ANY($1::text[]) AND display_name IS NOT NULL", sorted(set(worker_ids)))
    return {r["worker_id"]: r["display_name"] for r in rows}


async def hold_unheld_steps(conn: asyncpg.Connection, listed: AccountListed) -> None:
    """R-W14: the listed worker's open steps that name no holding team are held by the teams the directory lists
    for them (as migration 0009 did for the workers known then)."""
    if not listed.team_ids:
        return
    await conn.execute(
        "UPDATE steps SET provenance = provenance || jsonb_build_object('held_by', to_jsonb($2::text[]))"
        " WHERE assignee_kind = 'worker' AND assignee_id = $1 AND state NOT IN ('finished', 'cancelled')"
        " AND NOT (provenance ? 'held_by')", listed.worker_id, sorted(listed.team_ids))


async def known_workers(conn: Conn, worker_id: str,
                        team_ids: Iterable[str]) -> tuple[dict[str, Actor], frozenset[str]]:
    """The worker and the members of the teams, as the directory lists them (or as last seen acting), and which
    of them are disabled."""
    rows = await conn.fetch("SELECT worker_id, roles, team_ids, active FROM known_workers"
                            " WHERE worker_id = $1 OR team_ids && $2::text[]", worker_id, sorted(team_ids))
    return ({r["worker_id"]: Actor(r["worker_id"], frozenset(r["roles"]), frozenset(r["team_ids"])) for r in rows},
            frozenset(r["worker_id"] for r in rows if not r["active"]))
