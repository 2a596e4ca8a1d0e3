"""Read endpoints of the allocation service: allocations, relationships, trays, the wait report, Review trays
and the locality team finder."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Request

from services.allocation import domain, store
from services.allocation import localities as lookup
from shared import access_reasons, bearer
from shared.commands.base import Target

router = APIRouter(tags=["allocation"])
LEVELS = {"high", "medium", "low"}
RAGS = {"red", "amber", "green"}


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def _relationship(row: asyncpg.Record, who: str, now: datetime) -> dict[str, Any]:
    item = {
        "relationship_id": str(row["relationship_id"]), "person_id": str(row["person_id"]), who: row[who],
        "relationship": row["relationship"], "start_date": _iso(row["start_date"]),
        "end_date": _iso(row["end_date"]), "end_reason": row["end_reason"], "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]), "ended_at": _iso(row["ended_at"]), "ended_by": row["ended_by"],
    }
    if who == "team_id":
        item["visible"] = domain.org_relationship_visible(row["end_date"], now)
        item["visible_until"] = _iso(domain.org_relationship_visible_until(row["end_date"])) \
            if row["end_date"] else None
    else:
        item["open"] = row["ended_at"] is None
        item["team_id"] = row["team_id"]  # the team the case was allocated for (R-A3), if it was
    return item


@router.get("/workers/{worker_id}/allocations")
async def allocations(worker_id: str, request: Request) -> list[dict[str, Any]]:
    """R-A1: exactly the people with an open worker relationship to this worker, one item each."""
    now = datetime.now(UTC)
    people: dict[str, dict[str, Any]] = {}
    for row in await store.allocations_of(_pool(request), worker_id):
        item = people.setdefault(str(row["person_id"]), {"person_id": str(row["person_id"]), "relationships": []})
        item["relationships"].append(_relationship(row, "worker_id", now))
    return list(people.values())


@router.get("/people/{person_id}/relationships")
async def relationships(person_id: uuid.UUID, request: Request, include_ended: bool = False) -> dict[str, Any]:
    """Professional and organisational relationships as the person summary shows them (R-A1, R-A2)."""
    now = datetime.now(UTC)
    workers, orgs = await store.relationships_of(_pool(request), person_id)
    worker_items = [_relationship(r, "worker_id", now) for r in workers]
    org_items = [_relationship(r, "team_id", now) for r in orgs]
    if not include_ended:
        worker_items = [w for w in worker_items if w["open"]]
        org_items = [o for o in org_items if o["visible"]]
    return {"person_id": str(person_id), "worker_relationships": worker_items,
            "organisational_relationships": org_items}


@router.get("/people/{person_id}/trays")
async def trays_of_person(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    """The trays the person waits on now (R-T1, R-T8): `tray` (planned_work or review), entry and team."""
    return [{"tray": r["tray"], "entry_id": str(r["entry_id"]), "team_id": r["team_id"]}
            for r in await store.open_trays_of(_pool(request), person_id)]


@router.get("/people/{person_id}/urgency")
async def urgency_of_person(person_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """R-T2: the latest referral's urgency as allocation knows it, and Duty's record of the urgent actions done
    (`may_be_placed`: not urgent, or urgent with the actions done)."""
    return _urgency(person_id, await store.urgency_of(_pool(request), person_id))


@router.get("/people/{person_id}/waiting")
async def waiting(person_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """What the person page shows of where the person waits, in one read (issue #18 §5): the urgency
    (`/people/{id}/urgency`) and each of the person's open Planned Work Tray entries (R-T1, as
    `/tray/entries/{id}`) on a team the reader may read."""
    pool, reader, now = _pool(request), bearer.reader_of(request), datetime.now(UTC)
    entries = [_entry(row, now) for row in await store.open_entries_of(pool, person_id)
               if bearer.may_read_team(reader, row["team_id"])]
    return {"urgency": _urgency(person_id, await store.urgency_of(pool, person_id)), "planned_work": entries}


def _urgency(person_id: uuid.UUID, row: asyncpg.Record | None) -> dict[str, Any]:
    urgency = row["urgency"] if row else None
    done_at = row["urgent_actions_done_at"] if row else None
    return {"person_id": str(person_id), "urgency": urgency, "urgent_actions_done_at": _iso(done_at),
            "urgent_actions_done_by": row["urgent_actions_done_by"] if row else None,
            "may_be_placed": urgency != "urgent" or done_at is not None}


def _target(value: str, name: str) -> Target:
    kind, _, ident = value.partition(":")
    if kind not in ("worker", "team") or not ident:
        raise HTTPException(422, f"`{name}` must be worker:<id> or team:<id>")
    return Target(kind=kind, id=ident)  # type: ignore[arg-type]


@router.get("/people/{person_id}/reassign-preview")
async def reassign_preview(
    person_id: uuid.UUID, request: Request,
    from_: Annotated[str, Query(alias="from", description="worker:<id> or team:<id>")],
) -> dict[str, Any]:
    """R-A4: every item `case.reassign` from this worker or team would move, before it is sent."""
    source = _target(from_, "from")
    steps = await request.app.state.readers.work.steps(str(person_id))
    if steps is None:
        raise HTTPException(503, "the workflow service could not be read")
    case = await store.load_case(_pool(request), str(person_id))
    preview = domain.reassign_preview(case, source, steps)
    return {
        "person_id": str(person_id), "from": source.model_dump(),
        "steps": [{"step_id": s.step_id, "step_type": s.step_type, "state": s.state,
                   "assignee": {"kind": s.assignee_kind, "id": s.assignee_id}} for s in preview["steps"]],
        "worker_relationships": [{"relationship_id": r.relationship_id, "worker_id": r.worker_id,
                                  "relationship": r.relationship, "start_date": r.start_date.isoformat()}
                                 for r in preview["worker_relationships"]],
    }


def _entry(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    waited = domain.days_waiting(row["placed_at"], now)
    return {
        "entry_id": str(row["entry_id"]), "person_id": str(row["person_id"]), "team_id": row["team_id"],
        "priority": row["priority"], "urgent": row["urgent"], "complexity": row["complexity"],
        "support": row["support"], "risk": row["risk"], "rag": row["rag"], "rationale": row["rationale"],
        "placed_at": _iso(row["placed_at"]), "placed_by": row["placed_by"], "days_waiting": waited,
        "past_target": waited > domain.WAIT_TARGET_DAYS,
        "next_review_at": _iso(row["next_review_at"]),
        "review_overdue": bool(row["review_overdue"] or row["next_review_at"] <= now),
        "reviews": row["reviews"], "last_reviewed_at": _iso(row["last_reviewed_at"]),
        "last_contacted": row["last_contacted"], "escalated_at": _iso(row["escalated_at"]),
        "removed_at": _iso(row["removed_at"]), "removed_reason": row["removed_reason"],
        "version": row["version"],
        # R-T3: the matrix's rating, and the professional judgement that differs from it (who, why, when)
        "matrix_rag": row["matrix_rag"] or row["rag"], "rag_overridden": row["rag_override_reason"] is not None,
        "rag_override_reason": row["rag_override_reason"], "rag_overridden_by": row["rag_overridden_by"],
        "rag_overridden_at": _iso(row["rag_overridden_at"]),
        # R-T5: a next review date set by hand, with its reason
        "next_review_reason": row["next_review_reason"], "next_review_set_by": row["next_review_set_by"],
        "next_review_set_at": _iso(row["next_review_set_at"]),
    }


def _listed(value: str | None, allowed: set[str], name: str) -> list[str]:
    values = [v.strip().lower() for v in (value or "").split(",") if v.strip()]
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise HTTPException(422, f"`{name}` must be among {', '.join(sorted(allowed))}")
    return values


@router.get("/teams/{team_id}/tray")
async def team_tray(
    team_id: str, request: Request,
    sort: str = Query("priority,rag,-days_waiting",
                      description="comma-separated keys among " + ", ".join(store.SORTS)
                                  + "; `-` reverses. priority/complexity high first, rag red first,"
                                    " days_waiting shortest first (-days_waiting: longest first)"),
    rag: str | None = Query(None, description="e.g. red,amber"),
    priority: str | None = Query(None, description="e.g. high"),
    complexity: str | None = Query(None, description="e.g. high,medium"),
    review_overdue: bool | None = None,
    escalated: bool | None = Query(None, description="true: only entries escalated to the Head of Service (R-T6)"),
    min_days_waiting: int | None = Query(None, ge=0),
    max_days_waiting: int | None = Query(None, ge=0),
    past_target: bool | None = Query(None, description="waiting more than 28 days (R-T7)"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """R-T7: a team's Planned Work Tray, sortable and filterable by priority, complexity, RAG and wait."""
    keys = [k.strip() for k in sort.split(",") if k.strip()]
    if any(k.lstrip("-") not in store.SORTS for k in keys):
        raise HTTPException(422, f"`sort` keys must be among {', '.join(store.SORTS)}")
    if past_target is True:
        min_days_waiting = max(min_days_waiting or 0, domain.WAIT_TARGET_DAYS + 1)
    elif past_target is False:
        max_days_waiting = min(max_days_waiting if max_days_waiting is not None else domain.WAIT_TARGET_DAYS,
                               domain.WAIT_TARGET_DAYS)
    now = datetime.now(UTC)
    total, rows = await store.tray(
        _pool(request), team_id, now, sort=keys, rag=_listed(rag, RAGS, "rag"),
        priority=_listed(priority, LEVELS, "priority"), complexity=_listed(complexity, LEVELS, "complexity"),
        review_overdue=review_overdue, min_days_waiting=min_days_waiting, max_days_waiting=max_days_waiting,
        limit=limit, offset=offset, escalated=escalated)
    return {"team_id": team_id, "total": total, "limit": limit, "offset": offset, "sort": keys,
            "entries": [_entry(r, now) for r in rows]}


@router.get("/teams/{team_id}/tray/report")
async def tray_report(team_id: str, request: Request) -> dict[str, Any]:
    """R-T7 "waiting well": counts by RAG and priority, the longest wait, past 28 days, reviews overdue."""
    now = datetime.now(UTC)
    row = await store.tray_report(_pool(request), team_id, now, domain.WAIT_TARGET_DAYS)
    oldest = row["oldest_placed_at"]
    return {
        "team_id": team_id, "as_of": now.isoformat(), "total": row["total"],
        "by_rag": {"red": row["red"], "amber": row["amber"], "green": row["green"]},
        "by_priority": {"high": row["high"], "medium": row["medium"], "low": row["low"]},
        "longest_wait_days": domain.days_waiting(oldest, now) if oldest else 0,
        "target_days": domain.WAIT_TARGET_DAYS, "past_target": row["past_target"],
        "reviews_overdue": row["reviews_overdue"], "escalated": row["escalated"],
        "not_reached_at_last_review": row["not_reached_at_last_review"],
    }


@router.get("/tray/entries/{entry_id}")
async def tray_entry(entry_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """One tray entry, open or removed."""
    row = await store.tray_entry_row(_pool(request), entry_id)
    if row is None:
        raise HTTPException(404, "no such tray entry")
    bearer.require_team(bearer.reader_of(request), row["team_id"])
    return _entry(row, datetime.now(UTC))


# --- Review trays (R-T8) -------------------------------------------------------------------------


def _review_entry(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    entry = store.review_entry_of(row)
    today = now.astimezone(domain.LONDON).date()
    return {
        "entry_id": entry.entry_id, "person_id": entry.person_id, "team_id": entry.team_id,
        "review_due": entry.review_due.isoformat(), "reason": entry.reason, "added_at": _iso(entry.added_at),
        "added_by": entry.added_by, "due": entry.is_open and domain.review_tray_due(entry, now),
        "overdue": entry.is_open and domain.review_tray_overdue(entry, now),
        "days_until_due": (entry.review_due - today).days, "due_marked_at": _iso(entry.due_at),
        "removed_at": _iso(entry.removed_at), "removed_by": entry.removed_by,
        "removed_reason": entry.removed_reason, "version": entry.version,
    }


@router.get("/teams/{team_id}/review-tray")
async def team_review_tray(
    team_id: str, request: Request,
    due: bool | None = Query(None, description="true: only entries whose review is due; false: only those not yet"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """R-T8: a team's Review tray, by review date (soonest first), each entry with `due` and `overdue`."""
    now = datetime.now(UTC)
    total, rows = await store.review_tray(_pool(request), team_id, now.astimezone(domain.LONDON).date(), due=due,
                                          limit=limit, offset=offset)
    return {"team_id": team_id, "as_of": now.isoformat(), "total": total, "limit": limit, "offset": offset,
            "entries": [_review_entry(r, now) for r in rows]}


@router.get("/review-tray/entries/{entry_id}")
async def review_tray_entry(entry_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """One Review tray entry, open or removed."""
    row = await store.review_entry_row(_pool(request), entry_id)
    if row is None:
        raise HTTPException(404, "no such Review tray entry")
    bearer.require_team(bearer.reader_of(request), row["team_id"])
    return _review_entry(row, datetime.now(UTC))


# --- R-A3 locality team finder -------------------------------------------------------------------


@router.get("/localities/team")
async def locality_team(
    request: Request, postcode: str = Query(min_length=2, max_length=10, description="e.g. LE1 1AA"),
) -> dict[str, Any]:
    """R-A3: the locality team whose area holds this postcode; `team_id` null when no locality team covers it."""
    localities = request.app.state.readers.localities
    canonical = lookup.canonical(postcode)
    if canonical is None:
        raise HTTPException(422, "`postcode` is not a postcode or postcode district")
    found = localities.find(canonical) if localities is not None else None
    return {"postcode": canonical, "team_id": found.team_id if found else None,
            "team_name": localities.names.get(found.team_id) if found else None,
            "matched": found.matched if found else None}


@router.get("/localities")
async def locality_teams(request: Request) -> dict[str, Any]:
    """R-A3: the locality teams of the team finder and the areas each covers."""
    localities = request.app.state.readers.localities
    teams: dict[str, dict[str, Any]] = {}
    if localities is not None:
        for team_id in sorted(localities.teams):
            teams[team_id] = {"name": localities.names.get(team_id, team_id), "areas": []}
        for area, team_id in sorted(localities.areas.items()):
            teams[team_id]["areas"].append(area)
    return {"teams": teams}


@router.get("/people/{person_id}/access-reasons")
async def person_access_reasons(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    """Break-glass: commands on the person allowed only on a reason the actor gave (issue #21), oldest first."""
    return await access_reasons.of_person(_pool(request), person_id)
