"""Person details > Worker relationships and Organisational relationships (R-A1, R-A2, R-A6): each one open or
ended, with who recorded it; add one (a worker or team chosen from a list, a start date) and end one (the end date
and the reason). Allocation decides: a refusal comes back with every reason it gave."""

from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from services.web import store
from services.web.auth import ADMINISTRATOR, ROLE_NAMES, User
from services.web.pages import (
    NoAccess,
    access_reason,
    back,
    checked_form,
    checked_uuid,
    current_user,
    form_value,
    inputs_at_fault,
    pool,
    readers,
    render,
    report,
    send,
    set_flash,
    why_allowed,
)
from shared.actor import MANAGER_ROLES
from shared.teams import team_name, teams

router = APIRouter()

KINDS = {"worker": ("worker_relationships", "worker_id", "Worker relationships", "worker"),
         "organisational": ("organisational_relationships", "team_id", "Organisational relationships", "org")}
RELATIONSHIPS = {"worker": ("Involved Worker",), "organisational": ("Involved Team",)}
# seed 000 "End Worker Relationship and Organisational Relationship": "End Reason = select … from dropdown menu"
END_REASONS = ("Involvement complete", "Case transferred to another worker or team", "Person moved out of the area",
               "Person died", "Case closed", "Recorded in error")


def _kind(kind: str) -> tuple[str, str, str, str]:
    if kind not in KINDS:
        raise HTTPException(404, "no such kind of relationship")
    return KINDS[kind]


async def _opened(request: Request, user: User, person_id: str) -> tuple[str, str | None]:
    person_id = checked_uuid(person_id)
    why = await why_allowed(request, user, person_id)
    if why is None:
        raise NoAccess(person_id)
    return person_id, access_reason(why)


@router.get("/people/{person_id}/relationships/{kind}")
async def relationships_page(request: Request, person_id: str, kind: str) -> HTMLResponse:
    user = await current_user(request)
    listed, who, title, _ = _kind(kind)
    person_id, _ = await _opened(request, user, person_id)
    r = readers(request)
    record = await r.referrals.person(person_id)
    if record is None:
        raise HTTPException(404, "no such person")
    every = (await r.allocation.relationships(person_id, include_ended=True)).get(listed, [])
    workers = await _workers(request)
    ending = (user.flash or {}).get("row")  # the relationship whose end was refused, if it was an end
    inputs = ({"end_date": f"end-date-{ending}", "end_reason": f"end-reason-{ending}"} if ending else
              {who: "rel-who", "relationship": "rel-type", "start_date": "rel-start"})
    return await render(
        request, "relationships.html", user, person=record, kind=kind, who=who, title=title,
        **inputs_at_fault(user.flash, inputs),
        open=[x for x in every if not x.get("ended_at")], ended=[x for x in every if x.get("ended_at")],
        names={w["user_id"]: w["display_name"] for w in workers} | dict(teams()), choices=_choices(kind, user, workers),
        relationships=RELATIONSHIPS[kind], end_reasons=END_REASONS, today=date.today().isoformat())


async def _workers(request: Request) -> list[Any]:
    """Every active account that does casework (the administrator does none)."""
    return [u for u in await store.all_users(pool(request)) if ADMINISTRATOR not in u["roles"]]


def _choices(kind: str, user: User, workers: list[Any]) -> list[tuple[str, str]]:
    """Who the worker can pick: a worker records their own involvement, a manager anyone's (R-A1, R-A3); any
    team the council has (shared/teams.yaml), by name."""
    if kind == "organisational":
        return sorted(teams().items(), key=lambda team: team[1])
    if not MANAGER_ROLES & set(user.roles):
        workers = [w for w in workers if w["user_id"] == user.user_id]
    return [(w["user_id"], f"{w['display_name']} ({', '.join(ROLE_NAMES.get(r, r) for r in w['roles'])};"
             f" {', '.join(map(team_name, w['team_ids'])) or 'no team'})") for w in workers]


@router.post("/people/{person_id}/relationships/{kind}")
async def add_relationship(request: Request, person_id: str, kind: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    _, who, _, command = _kind(kind)
    person_id, reason = await _opened(request, user, person_id)
    outcome = await send(request, user, f"{command}_relationship.add", key=person_id, person_id=person_id,
                         relationship=form_value(form, "relationship"), start_date=form_value(form, "start_date"),
                         access_reason=reason, **{who: form_value(form, who)})
    await report(request, outcome, "Relationship added.", scope="relationships")
    return back(f"/people/{person_id}/relationships/{kind}")


@router.post("/people/{person_id}/relationships/{kind}/{relationship_id}/end")
async def end_relationship(request: Request, person_id: str, kind: str, relationship_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    listed, _, _, command = _kind(kind)
    person_id, reason = await _opened(request, user, person_id)
    relationship_id = checked_uuid(relationship_id)
    every = (await readers(request).allocation.relationships(person_id, include_ended=True)).get(listed, [])
    if not any(x["relationship_id"] == relationship_id for x in every):
        raise HTTPException(404, "no such relationship of this person")
    if not form_value(form, "end_reason"):
        await set_flash(request, {"kind": "error", "message": "That was not done:", "scope": "relationships",
                                  "row": relationship_id, "reasons": [{"code": "required", "field": "end_reason",
                                               "message": "choose the reason the relationship ends"}]})
        return back(f"/people/{person_id}/relationships/{kind}")
    extra = {"access_reason": reason} if kind == "organisational" else {}
    outcome = await send(request, user, f"{command}_relationship.end", key=person_id,
                         relationship_id=relationship_id, end_date=form_value(form, "end_date"),
                         end_reason=form_value(form, "end_reason"), **extra)
    await report(request, outcome, "Relationship ended.", scope="relationships", row=relationship_id)
    return back(f"/people/{person_id}/relationships/{kind}")
