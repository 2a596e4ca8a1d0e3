"""Read endpoints of the workflow service: steps as forms render them, blockers, and work lists."""

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from services.workflow import domain, store
from services.workflow.involvement import open_relationships
from services.workflow.pack import PackRegistry, StepDefinition
from shared import access_reasons, bearer

router = APIRouter(tags=["work"])


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _packs(request: Request) -> PackRegistry:
    return request.app.state.packs


def _item(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "step_id": str(row["step_id"]),
        "workflow_id": str(row["workflow_id"]),
        "step_type": row["step_type"],
        "person_id": str(row["person_id"]),
        "linked_person_id": str(row["linked_person_id"]) if row["linked_person_id"] else None,
        "state": row["state"],
        "assignee": {"kind": row["assignee_kind"], "id": row["assignee_id"]},
        "priority": row["priority"],
        "created_at": row["created_at"].isoformat(),
        "due_date": row["due_date"].isoformat() if row["due_date"] else None,
        "pack_version": row["pack_version"],
        "version": row["version"],
        "return_note": row["return_note"],
    }


WORK_BUCKETS = ("incoming", "incomplete", "future")
WORK_SORT_HELP = ("one of " + ", ".join(store.WORK_SORTS) + " (priority: urgent, then high, then by creation;"
                  " waiting: longest waiting first; due: soonest due first; person: each person's steps together;"
                  " step_type: by name); `-` reverses")
PAGE_HELP = "which page of the bucket (from 1)"


@dataclass(frozen=True)
class _Listing:
    sort: str
    size: int
    pages: dict[str, int]


def _listing(
    sort: str = Query("priority", description=WORK_SORT_HELP),
    size: int = Query(50, ge=1, le=200, description="steps per page of each bucket"),
    incoming_page: int = Query(1, ge=1, le=100_000, description=PAGE_HELP),
    incomplete_page: int = Query(1, ge=1, le=100_000, description=PAGE_HELP),
    future_page: int = Query(1, ge=1, le=100_000, description=PAGE_HELP),
) -> _Listing:
    return _Listing(sort, size, {"incoming": incoming_page, "incomplete": incomplete_page, "future": future_page})


Listing = Annotated[_Listing, Depends(_listing)]


async def _work(request: Request, kind: str, assignee_id: str, listing: _Listing) -> dict[str, Any]:
    """A page of each bucket of the work list, sorted on the server, with each bucket's total."""
    if listing.sort.removeprefix("-") not in store.WORK_SORTS:
        raise HTTPException(422, f"`sort` must be {WORK_SORT_HELP}")
    pool = _pool(request)
    totals = await store.work_counts(pool, kind, assignee_id)
    rows = await store.work_page(pool, kind, assignee_id, sort=listing.sort, size=listing.size,
                                 offsets={b: (listing.pages[b] - 1) * listing.size for b in WORK_BUCKETS})
    work: dict[str, Any] = {b: [] for b in WORK_BUCKETS}
    for row in rows:
        work[row["bucket"]].append(_item(row))
    return {**work, "total": {b: totals.get(b, 0) for b in WORK_BUCKETS}, "page": listing.pages,
            "size": listing.size, "sort": listing.sort}


@router.get("/people/{person_id}/steps")
async def steps_of_person(person_id: uuid.UUID, request: Request, history: bool = False) -> list[dict[str, Any]]:
    """The person's steps, oldest first. With `history`, each step's history too, its form's field labels and
    its requests as `/steps/{id}` gives them: what the person's chronology is built from, in one read instead of
    one a step (issue #18 §5)."""
    pool, packs = _pool(request), _packs(request)
    rows = await store.steps_of_person(pool, person_id)
    # allocation never hands Future Work to a worker (R-A3, R-A4): it learns which steps are from the pack
    steps = [{**_item(r), "assigned_by": r["assigned_by"],
              "future_work": domain.is_future_work(packs, r["step_type"], r["pack_version"])} for r in rows]
    if history:
        histories = await store.histories_of(pool, [r["step_id"] for r in rows])
        for step, row in zip(steps, rows, strict=True):
            defn = packs.step(row["step_type"], row["pack_version"])
            step.update(history=[_history_entry(h) for h in histories[row["step_id"]]],
                        field_labels={key: field.label for key, field in defn.field_map().items()},
                        requests=[r.to_contract() for r in defn.requests])
    return steps


def _history_entry(row: asyncpg.Record) -> dict[str, Any]:
    return {"actor": row["actor"], "time": row["at"].isoformat(), "what": row["what"], "details": row["details"]}


@router.get("/workers/{worker_id}/work")
async def worker_work(worker_id: str, request: Request, listing: Listing) -> dict[str, Any]:
    """The worker's open and future steps, a page of each bucket (R-W2)."""
    return await _work(request, "worker", worker_id, listing)


@router.get("/teams/{team_id}/work")
async def team_work(team_id: str, request: Request, listing: Listing) -> dict[str, Any]:
    """The team's open and future steps, a page of each bucket (R-W2)."""
    return await _work(request, "team", team_id, listing)


def _awaiting(row: asyncpg.Record) -> dict[str, Any]:
    item = _item(row)
    item["request"] = None if row["request_id"] is None else {
        "request_id": str(row["request_id"]), "name": row["request_name"], "to": {"kind": row["to_kind"],
        "id": row["to_id"]}, "note": row["request_note"], "sent_by": row["sent_by"],
        "sent_at": row["sent_at"].isoformat()}
    return item


@router.get("/teams/{team_id}/awaiting-authorisation")
async def team_awaiting_authorisation(team_id: str, request: Request) -> list[dict[str, Any]]:
    """Steps awaiting authorisation whose open REQUIRED request is to the team, longest waiting first, each with
    that request: a manager's authorisation queue from workflow's own tables (R-RQ4, R-RQ7)."""
    return [_awaiting(r) for r in await store.awaiting_authorisation(_pool(request), "team", team_id)]


@router.get("/workers/{worker_id}/awaiting-authorisation")
async def worker_awaiting_authorisation(worker_id: str, request: Request) -> list[dict[str, Any]]:
    """Steps awaiting authorisation whose open REQUIRED request is to the worker."""
    return [_awaiting(r) for r in await store.awaiting_authorisation(_pool(request), "worker", worker_id)]


def _request(r: domain.Request) -> dict[str, Any]:
    return {
        "request_id": r.request_id, "name": r.name, "kind": r.kind, "required": r.required,
        "to": {"kind": r.to_kind, "id": r.to_id}, "note": r.note, "state": r.state,
        "sent_by": r.sent_by, "sent_at": r.sent_at.isoformat(), "completed_by": r.completed_by,
        "completed_at": r.completed_at.isoformat() if r.completed_at else None,
        "completion_note": r.completion_note,
    }


async def _name_carried_sources(pool: asyncpg.Pool, step: domain.Step, defn: StepDefinition,
                                sections: list[dict[str, Any]]) -> None:
    """R-W7: each carried read-only section names the step it came from (`carried_from`: its id, type and when it
    finished, UTC and the London date), so the desk can say "from <step> finished <date>"; null when none had
    finished when this step was created."""
    for spec in defn.carried_sections:
        source = await store.carried_source(pool, step.person_id, spec.from_step_type, step.created_at)
        named = None if source is None else {
            "step_id": str(source["step_id"]), "step_type": source["step_type"],
            "finished_at": source["finished_at"].isoformat(),
            "finished_on": domain.london_date(source["finished_at"]).isoformat()}
        for section in sections:
            if section["read_only"] and spec.from_section <= section["number"] <= spec.to_section:
                section["carried_from"] = named


def _required_now(defn: StepDefinition, step: domain.Step, contract: dict[str, Any]) -> None:
    """R-C5: whether each request is REQUIRED with the step's values now (`required_now`), and a section answered by
    a request's recipient says whom and whether it is asked now (`answered_by`: {`request`, `to`, `required_now`})."""
    for request in contract["requests"]:
        request["required_now"] = defn.request(request["name"]).required_for(step.values)
    by_name = {r["name"]: r for r in contract["requests"]}
    for section in contract["form"]["sections"]:
        if section["answered_by"] is not None:
            request = by_name[section["answered_by"]]
            section["answered_by"] = {"request": request["name"], "to": request["default_to"],
                                      "required_now": request["required_now"]}


@router.get("/steps/{step_id}")
async def get_step(step_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """A step as docs/contracts.md fixes it: the definition it runs on and what is on it now."""
    pool = _pool(request)
    step = await store.load_step(pool, step_id)
    if step is None:
        raise HTTPException(404, "no such step")
    bearer.require_person_of(request, step.person_id)
    defn = _packs(request).step(step.step_type, step.pack_version)
    contract = defn.to_contract()
    await _name_carried_sources(pool, step, defn, contract["form"]["sections"])
    _required_now(defn, step, contract)
    history = (await store.histories_of(pool, [step_id]))[step_id]
    requests = await store.requests_of(pool, step.step_id)
    forms = [{"name": f.name, "kind": f.kind, "sections": [s.to_contract() for s in f.sections]}
             for f in defn.optional_forms if f.name in step.forms]
    await _mark_writable(request, step, defn, requests, contract["form"]["sections"], forms)
    return {
        "step_id": step.step_id, "workflow_id": step.workflow_id, "person_id": step.person_id,
        "linked_person_id": step.linked_person_id, "step_type": step.step_type,
        "pack_version": step.pack_version, "state": step.state,
        # R-K13: Future Work is a team's; it is assigned to a team, never to a worker
        "future_work": domain.is_future_work(_packs(request), step.step_type, step.pack_version),
        "assignee": {"kind": step.assignee_kind, "id": step.assignee_id}, "priority": step.priority,
        "due_date": step.due_date.isoformat() if step.due_date else None, "version": step.version,
        "values": step.values, "completed_sections": list(step.completed_sections),
        "form": contract["form"], "next_actions": contract["next_actions"],
        "requests": contract["requests"], "authorisers": contract["authorisers"],
        "optional_forms": [{"name": f.name, "kind": f.kind} for f in defn.optional_forms],
        "added_next_actions": [a.to_json() for a in step.next_actions],
        "sent_requests": [_request(r) for r in requests],
        "forms": forms,
        "return_note": step.return_note,
        "provenance": step.provenance,
        "timers": [{"key": t["key"], "kind": t["kind"], "due_at": t["due_at"].isoformat()}
                   for t in await store.timers_of_step(pool, step_id)],
        "created_at": step.created_at.isoformat(), "created_by": step.created_by,
        "history": [_history_entry(h) for h in history],
        # issue #22 §9: the name of each worker the step names, as the desk's directory gives it
        "worker_names": await store.worker_names(pool, _workers_named(step, history, requests)),
    }


async def _mark_writable(request: Request, step: domain.Step, defn: StepDefinition, requests: list[domain.Request],
                         sections: list[dict[str, Any]], forms: list[dict[str, Any]]) -> None:
    """Issue #22 §9: each section's `writable`: whether the worker reading may write one of its fields now, by the
    save's own rules (R-W10, R-W13, R-C5); null for a component reading."""
    reader = bearer.reader_of(request)
    writable: dict[str, bool] = {}
    if not reader.is_service:
        involved: frozenset[str] = frozenset()
        if defn.activity_logs:  # R-W13, as the save finds it
            relationships = await open_relationships(request.app.state.allocation, step.person_id)
            involved = frozenset({r.key for r in relationships or ()}) | await store.assignees_of_person(
                _pool(request), step.person_id)
        actor = domain.Actor(reader.worker_id, reader.roles, reader.team_ids)
        writable = domain.writable_sections(step, defn, requests, involved, actor)
    for form, section in [(None, s) for s in sections] + [(f["name"], s) for f in forms for s in f["sections"]]:
        section["writable"] = writable.get(domain.section_key(form, section["number"]))


def _workers_named(step: domain.Step, history: list[Any], requests: list[domain.Request]) -> set[str]:
    """Every worker a step read names: its assignee and creator, who did each thing, whom its requests and next
    actions went to and who sent or added them."""
    named = {step.created_by, *(h["actor"] for h in history), *(r.sent_by for r in requests),
             *(r.to_id for r in requests if r.to_kind == "worker"), *(a.added_by for a in step.next_actions),
             *(a.assignee_id for a in step.next_actions if a.assignee_kind == "worker" and a.assignee_id)}
    return named | ({step.assignee_id} if step.assignee_kind == "worker" else set())


@router.get("/steps/{step_id}/blockers")
async def get_blockers(
    step_id: uuid.UUID, request: Request, worker_id: str | None = None,
    roles: str = Query(default="", description="comma-separated roles of the worker asking"),
    team_ids: str = Query(default="", description="comma-separated teams of the worker asking"),
) -> dict[str, Any]:
    """Every reason the step cannot finish now; with a worker, their role is checked too."""
    pool = _pool(request)
    step = await store.load_step(pool, step_id)
    if step is None:
        raise HTTPException(404, "no such step")
    bearer.require_person_of(request, step.person_id)
    packs = _packs(request)
    defn = packs.step(step.step_type, step.pack_version)
    actor = domain.Actor(worker_id or "", frozenset(filter(None, roles.split(","))),
                         frozenset(filter(None, team_ids.split(","))))
    relationships = await open_relationships(request.app.state.allocation, step.person_id) \
        if domain.CLOSURE_GUARD in defn.rules else ()  # R-K1: other teams' involvement, named
    ctx = domain.Context(now=datetime.now(UTC), actor=actor, ids=(str(i) for i in itertools.count()),
                         packs=packs, case=await store.case_of_step(pool, packs, step), relationships=relationships)
    blockers = domain.finish_blockers(ctx, step, defn, await store.requests_of(pool, step.step_id),
                                      check_actor=worker_id is not None)
    warnings = domain.finish_warnings(ctx, step, defn)  # R-K1, R-K3, R-K12: shown, never blocking
    return {"can_finish": not blockers, "blockers": [b.model_dump(exclude_none=True) for b in blockers],
            "warnings": [w.model_dump(exclude_none=True) for w in warnings]}


@router.get("/step-types")
async def step_types(request: Request) -> list[dict[str, Any]]:
    """Every step type of the loaded packs: who works it (R-W10), who may start it (Start > New, R-W12) and who
    authorises it."""
    packs = request.app.state.packs
    return [
        {"step_type": step.step_type, "pack": pack.name, "pack_version": pack.version,
         "pack_teams": sorted(pack.teams), "authorisers": list(step.authorisers),
         "worked_by": list(step.worked_by),
         # R-W12: who may start it from Start > New (each grant: roles and teams, empty = any)
         "start_new": [{"roles": list(grant.roles), "teams": list(grant.teams)} for grant in step.start_new]}
        for pack in packs.packs for step in pack.steps
    ]


@router.get("/people/{person_id}/access-reasons")
async def person_access_reasons(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    """Break-glass: commands on the person allowed only on a reason the actor gave (issue #21), oldest first."""
    return await access_reasons.of_person(_pool(request), person_id)
