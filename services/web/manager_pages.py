"""Manager views: authorisations, the Planned Work Tray (R-T1..R-T7), the Review tray (R-T8), allocation,
the access audit."""

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from services.web import store, trays
from services.web.auth import User
from services.web.clients import Unavailable
from services.web.pages import (
    NoAccess,
    back,
    checked_form,
    checked_uuid,
    current_user,
    form_value,
    inputs_at_fault,
    involvement,
    pool,
    readers,
    render,
    report,
    send,
    team_members,
    why_allowed,
)
from shared import bearer
from shared.actor import TRAY_ROLES, worker_of
from shared.teams import team_name

router = APIRouter()


async def _may_open(request: Request, user: User, person_id: str) -> None:
    """Placing and allocating are acts on the person: the same check as opening their record (issue #21 §6)."""
    if await why_allowed(request, user, person_id) is None:
        raise NoAccess(person_id)


async def _in_access_audit(request: Request, user: User, person_id: str, kind: str, what: str) -> None:
    """Self-allocations and tray placements are shown beside break-glass reasons, and chained in the audit."""
    async with pool(request).acquire() as conn, conn.transaction():
        await store.record_access(conn, user.user_id, list(user.roles), list(user.team_ids), uuid.UUID(person_id),
                                  what, kind)
        await store.audit_act(conn, f"record.{kind}", actor=user.user_id, roles=user.roles, subject=person_id,
                              details={"what": what})


@router.get("/authorisations")
async def authorisations(request: Request) -> HTMLResponse:
    """Steps awaiting authorisation by me or my teams, from workflow's own tables (R-RQ4, R-RQ7)."""
    user = await current_user(request)
    r = readers(request)
    lists = await asyncio.gather(r.workflow.awaiting_authorisation("worker", user.user_id),
                                 *(r.workflow.awaiting_authorisation("team", t) for t in user.team_ids))
    by_step: dict[str, dict[str, Any]] = {}
    for listed in lists:
        for step in listed or []:
            by_step.setdefault(step["step_id"], step)
    waiting = sorted(by_step.values(), key=lambda s: (s["request"] or {}).get("sent_at") or s["created_at"])
    returning = (user.flash or {}).get("row")  # the step whose return was refused, if one was
    return await render(request, "authorisations.html", user, waiting=waiting, returning=returning,
                        **inputs_at_fault(user.flash, {"note": f"ret-{returning}"} if returning else {}),
                        unavailable=any(listed is None for listed in lists),
                        names=await r.names({s["person_id"] for s in waiting}), title="Authorisations")


TRAY_SORTS = {"priority": "Priority", "complexity": "Complexity", "rag": "RAG", "days_waiting": "Days waiting",
              "next_review_at": "Next review"}


# issue #19 §4: the tray's filters (its query parameter: the select's id, its label, each value in words)
TRAY_FILTERS = {"rag": ("f-rag", "RAG", {"red": "Red", "amber": "Amber", "green": "Green"}),
                "priority": ("f-priority", "Priority", {"high": "High", "medium": "Medium", "low": "Low"}),
                "complexity": ("f-complexity", "Complexity", {"high": "High", "medium": "Medium", "low": "Low"}),
                "review_overdue": ("f-review", "Review due", {"true": "Due now"}),
                "past_target": ("f-past", "Waiting over 28 days", {"true": "Yes"})}

# issue #19 §4: the inputs of each action on a tray entry, by the field a refusal names ({} is the entry's id)
TRAY_ACTION_INPUTS = {
    "tray.review": {"note": "rv-note-{}", "support": "rv-support-{}", "risk": "rv-risk-{}",
                    "priority": "rv-priority-{}", "complexity": "rv-complexity-{}", "rag_override": "rv-{}-override",
                    "rag_override_reason": "rv-{}-override-reason"},
    "tray.set_next_review": {"next_review_on": "nr-{}", "reason": "nr-reason-{}"},
    "case.allocate": {"worker_id": "al-{}"},
    "tray.remove": {"reason": "rm-{}"},
}

TRAY_PAGE = 100  # entries to a page of the tray; escalations and reviews due show the first TRAY_PAGE each


async def _involved(request: Request, entries: list[dict[str, Any]]) -> dict[str, list[dict[str, str]] | None]:
    """R-A3: for each entry's allocate form, who is already involved with the person, as the person page says."""
    r = readers(request)
    workers = {u["user_id"]: u["display_name"] for u in await store.all_users(pool(request))}

    async def one(entry: dict[str, Any]) -> tuple[str, list[dict[str, str]] | None]:
        try:
            relationships, steps = await asyncio.gather(r.allocation.relationships(entry["person_id"]),
                                                        r.workflow.person_steps(entry["person_id"]))
        except Unavailable:  # the tray still shows, saying who is involved could not be read
            return entry["entry_id"], None
        return entry["entry_id"], involvement(relationships or {}, steps or [], workers)

    with bearer.as_component():  # beside an entry of the team's own tray, which the manager already sees
        return dict(await asyncio.gather(*(one(e) for e in entries)))


@router.get("/tray")
async def tray(request: Request, team: str = "", sort: str = "priority,rag,-days_waiting", rag: str = "",
               priority: str = "", complexity: str = "", review_overdue: str = "", past_target: str = "",
               page: int = 1) -> Response:
    user = await current_user(request)
    if not user.team_ids:
        raise HTTPException(403, "you are in no team")
    team = team if team in user.team_ids else user.team_ids[0]
    page = min(max(page, 1), 100_000)
    r = readers(request)
    query = {"sort": sort, "rag": rag, "priority": priority, "complexity": complexity,
             "review_overdue": review_overdue, "past_target": past_target}
    # a page of the tray, and the escalations and reviews due each asked for: never the whole tray (issue #18 §5)
    listing, summary, escalations, reviews = await asyncio.gather(
        r.allocation.tray(team, **query, limit=TRAY_PAGE, offset=(page - 1) * TRAY_PAGE),
        r.allocation.tray_report(team),
        r.allocation.tray(team, escalated="true", sort="escalated_at", limit=TRAY_PAGE),
        r.allocation.tray(team, review_overdue="true", sort="next_review_at", limit=TRAY_PAGE))
    entries = (listing or {}).get("entries", [])
    escalated = (escalations or {}).get("entries", [])
    reviews_due = (reviews or {}).get("entries", [])
    people = {e["person_id"] for e in [*entries, *escalated, *reviews_due]}
    members = await team_members(request, team)
    managers = [m for m in members if TRAY_ROLES & set(m["roles"]) and m["user_id"] != user.user_id]
    total = (listing or {}).get("total", 0)
    involved = await _involved(request, entries) if user.places_on_trays or user.is_manager else {}
    flash = user.flash or {}
    refused_entry, refused_action = flash.get("row"), flash.get("command")
    inputs = {field: input_id.format(refused_entry)
              for field, input_id in TRAY_ACTION_INPUTS.get(refused_action or "", {}).items()} if refused_entry else {}
    return await render(request, "tray.html", user, team=team, listing=listing, entries=entries, report=summary,
                        involved=involved, refused_entry=refused_entry, refused_action=refused_action,
                        **inputs_at_fault(flash, inputs),
                        escalated=escalated, reviews_due=reviews_due,
                        escalated_total=(escalations or {}).get("total", len(escalated)),
                        reviews_total=(reviews or {}).get("total", len(reviews_due)),
                        pager={"page": page, "last": max(1, -(-total // TRAY_PAGE)), "total": total,
                               "first_row": min(total, (page - 1) * TRAY_PAGE + 1),
                               "last_row": min(total, page * TRAY_PAGE)},
                        query=query, sorts=TRAY_SORTS, names=await r.names(people), filters=TRAY_FILTERS,
                        chosen_filters=[key for key in TRAY_FILTERS if query[key]],
                        members=members, managers=managers, title="Planned Work Tray",
                        today=date.today().isoformat(), tomorrow=(date.today() + timedelta(days=1)).isoformat(),
                        month_ahead=(date.today() + timedelta(days=28)).isoformat())


@router.post("/people/{person_id}/tray")
async def tray_add(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = checked_uuid(person_id)
    await _may_open(request, user, person_id)
    team = form_value(form, "team_id") or ""
    outcome = await send(request, user, "tray.add", key=person_id, person_id=person_id, team_id=team,
                         rationale=form_value(form, "rationale"), priority=form_value(form, "priority"),
                         urgent=form.get("urgent") == "true", complexity=form_value(form, "complexity"),
                         support=form_value(form, "support"), risk=form_value(form, "risk"),
                         rag_override=form_value(form, "rag_override"),
                         rag_override_reason=form_value(form, "rag_override_reason"))
    added = outcome.of("tray.entry_added")
    if added:
        await _in_access_audit(request, user, person_id, "tray_placement", f"placed on the tray of {team}")
    await report(request, outcome, f"Placed on the Planned Work Tray of {team}"
                 + (f": RAG {added['rag'].upper()}." if added else "."))
    return back(f"/tray?team={quote(team)}" if outcome.ok else f"/people/{person_id}#tray")


@router.post("/people/{person_id}/urgent-actions")
async def urgent_actions_done(request: Request, person_id: str) -> Response:
    """R-T2: Duty records that an urgent referral's urgent actions are done; then it may go on a tray."""
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = checked_uuid(person_id)
    await _may_open(request, user, person_id)
    outcome = await send(request, user, "urgent_actions.record", key=person_id, person_id=person_id,
                         note=form_value(form, "note"))
    await report(request, outcome, "Urgent actions recorded as done: the case may now go on a Planned Work Tray.")
    return back(f"/people/{person_id}#urgent-actions")


async def _entry(request: Request, entry_id: str) -> dict[str, Any]:
    entry = await readers(request).allocation.entry(checked_uuid(entry_id))
    if entry is None:
        raise HTTPException(404, "no such tray entry")
    return entry


@router.post("/tray/{entry_id}/{action}")
async def tray_action(request: Request, entry_id: str, action: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    entry = await _entry(request, entry_id)
    key = entry["person_id"]
    if action == "review":
        outcome = await send(request, user, "tray.review", key=key, entry_id=entry["entry_id"],
                             contacted=form.get("contacted") == "true", note=form_value(form, "note"),
                             priority=form_value(form, "priority"), complexity=form_value(form, "complexity"),
                             support=form_value(form, "support"), risk=form_value(form, "risk"),
                             increased_risk=form.get("increased_risk") == "true",
                             rag_override=form_value(form, "rag_override"),
                             rag_override_reason=form_value(form, "rag_override_reason"),
                             notify_worker_ids=[str(w) for w in form.getlist("notify_worker_ids")],
                             expected_version=entry.get("version"))
        reviewed = outcome.of("tray.entry_reviewed")
        await report(request, outcome, "Review recorded" + (f": RAG {reviewed['rag'].upper()}." if reviewed else "."),
                     row=entry["entry_id"])
    elif action == "next-review":
        outcome = await send(request, user, "tray.set_next_review", key=key, entry_id=entry["entry_id"],
                             next_review_on=form_value(form, "next_review_on"), reason=form_value(form, "reason"),
                             expected_version=entry.get("version"))
        await report(request, outcome, f"Next review set to {form.get('next_review_on')}.", row=entry["entry_id"])
    elif action == "allocate":
        await _may_open(request, user, key)
        outcome = await _allocate(request, user, key, form_value(form, "worker_id"), entry["team_id"])
        await report(request, outcome,
                     f"Allocated to {await _worker_name(request, form_value(form, 'worker_id'))}; off the tray.",
                     row=entry["entry_id"])
    elif action == "remove":
        outcome = await send(request, user, "tray.remove", key=key, entry_id=entry["entry_id"],
                             reason=form_value(form, "reason"))
        await report(request, outcome, "Taken off the tray.", row=entry["entry_id"])
    else:
        raise HTTPException(404, "no such action")
    return back(f"/tray?team={quote(entry['team_id'])}")


@router.get("/review-tray")
async def review_tray(request: Request, team: str = "") -> HTMLResponse:
    """R-T8: the team's Review tray, soonest review first, with due and overdue marks."""
    user = await current_user(request)
    if not user.runs_trays or not user.team_ids:
        raise HTTPException(403, "the Review tray is for a team's managers")
    team = team if team in user.team_ids else user.team_ids[0]
    r = readers(request)
    listing = await r.allocation.review_tray(team)
    entries = (listing or {}).get("entries", [])
    return await render(request, "review_tray.html", user, team=team, listing=listing, entries=entries,
                        due_count=sum(1 for e in entries if e["due"]), review_mark=trays.review_mark,
                        names=await r.names({e["person_id"] for e in entries}), title="Review tray")


@router.post("/people/{person_id}/review-tray")
async def review_tray_add(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = checked_uuid(person_id)
    await _may_open(request, user, person_id)
    team = form_value(form, "team_id") or ""
    outcome = await send(request, user, "review_tray.add", key=person_id, person_id=person_id, team_id=team,
                         review_due=form_value(form, "review_due"), reason=form_value(form, "reason"))
    if outcome.of("review_tray.entry_added"):
        await _in_access_audit(request, user, person_id, "tray_placement",
                               f"put in the Review tray of {team_name(team)}")
    await report(request, outcome, f"Put in the Review tray of {team_name(team)} until {form.get('review_due')}.")
    return back(f"/review-tray?team={quote(team)}" if outcome.ok else f"/people/{person_id}#tray")


@router.post("/review-tray/{entry_id}/remove")
async def review_tray_remove(request: Request, entry_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    entry = await readers(request).allocation.review_entry(checked_uuid(entry_id))
    if entry is None:
        raise HTTPException(404, "no such Review tray entry")
    outcome = await send(request, user, "review_tray.remove", key=entry["person_id"], entry_id=entry["entry_id"],
                         reason=form_value(form, "reason"), expected_version=entry.get("version"))
    await report(request, outcome, "Taken out of the Review tray.")
    return back(f"/review-tray?team={quote(entry['team_id'])}")


@router.post("/people/{person_id}/allocate")
async def allocate(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = checked_uuid(person_id)
    await _may_open(request, user, person_id)
    outcome = await _allocate(request, user, person_id, form_value(form, "worker_id"), form_value(form, "team_id"))
    await report(request, outcome, f"Allocated to {await _worker_name(request, form_value(form, 'worker_id'))}.")
    return back(f"/people/{person_id}")


async def _worker_name(request: Request, worker_id: str | None) -> str:
    account = await store.load_user(pool(request), worker_id) if worker_id else None
    return account["display_name"] if account else str(worker_id)


async def _allocate(request: Request, user: User, person_id: str, worker_id: str | None,
                    team_id: str | None) -> Any:
    outcome = await send(request, user, "case.allocate", key=person_id, person_id=person_id, worker_id=worker_id,
                         team_id=team_id)
    if outcome.of("case.allocated") and worker_id == user.user_id:
        await _in_access_audit(request, user, person_id, "self_allocation", f"allocated the case to themselves"
                               f" for {team_name(team_id) if team_id else 'their team'}")
    return outcome


@router.get("/audit/access")
async def access_audit(request: Request) -> HTMLResponse:
    user = await current_user(request)
    if not user.is_manager:
        raise HTTPException(403, "managers only")
    workers = {u["user_id"]: u["display_name"] for u in await store.all_users(pool(request))}
    return await render(request, "audit.html", user, entries=await store.access_log(pool(request)),
                        workers=workers, title="Access audit")


DESK_ACCESS = {"break_glass": "Opened the record (break-glass)", "self_allocation": "Allocated to themselves",
               "tray_placement": "Placed on a tray"}


@router.get("/people/{person_id}/access-audit")
async def person_access_audit(request: Request, person_id: str) -> HTMLResponse:
    """Who reached this person's record on a reason they gave, newest first: the desk's own access records and the
    reasons referrals, allocation and workflow kept for the commands they allowed on one (issue #21)."""
    user = await current_user(request)
    if not user.is_manager:
        raise HTTPException(403, "managers only")
    person_id = checked_uuid(person_id)
    if await why_allowed(request, user, person_id) is None:
        raise NoAccess(person_id)
    r = readers(request)
    services = {"Referrals": r.referrals, "Allocation": r.allocation, "Workflow": r.workflow}
    kept = await asyncio.gather(*(reader.access_reasons(person_id) for reader in services.values()))
    entries = [{"at": e["at"], "worker": e["user_id"], "teams": list(e["team_ids"]), "where": "Desk",
                "what": DESK_ACCESS[e["kind"]], "reason": e["reason"]}
               for e in await store.access_log_of(pool(request), uuid.UUID(person_id))]
    for where, reasons in zip(services, kept, strict=True):
        entries += [{"at": datetime.fromisoformat(k["at"]), "worker": worker_of(k["actor"]), "teams": k["team_ids"],
                     "where": where, "what": k["command_type"], "reason": k["reason"]} for k in reasons or []]
    entries.sort(key=lambda e: e["at"], reverse=True)
    workers = {u["user_id"]: u["display_name"] for u in await store.all_users(pool(request))}
    entries = [{**e, "worker": workers.get(e["worker"], e["worker"])} for e in entries]
    unread = [where for where, reasons in zip(services, kept, strict=True) if reasons is None]
    return await render(request, "person_access_audit.html", user, entries=entries, unread=unread,
                        person_id=person_id, title="Access to this record")
