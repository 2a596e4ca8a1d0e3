"""What every page shares (the signed-in user, checked forms, commands and their outcome, error pages), and the
pages of current work and of people. Signing in is in `sign_in_pages`, steps in `step_pages`, manager views
(authorisations, the trays, the access audit) in `manager_pages`."""

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.web import access, auth, chronology, forms, packs, rules_text, store, trays
from services.web.auth import User
from services.web.clients import Readers, Unavailable
from services.web.commands import Outcome
from services.web.listing import BUCKETS, SIZES, SORTS, WorkListing
from shared import bearer
from shared.actor import above_teams
from shared.teams import team_name

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(anchor=forms.anchor, display=forms.display, input_value=forms.input_value,
                             field_access=forms.field_access, column_editable=forms.column_editable,
                             prefilled=forms.prefilled,
                             saved_changes=forms.saved_changes, role_names=auth.ROLE_NAMES)
templates.env.filters["when"] = chronology.format_when
templates.env.filters["day"] = chronology.format_day
templates.env.filters["team"] = team_name  # §9: a team by the name people know it by, never its id
templates.env.filters["assignee"] = chronology.assignee_words
templates.env.filters["rule_links"] = rules_text.rule_links  # §9: each rule id a message names links to the rule
templates.env.globals["reason_html"] = rules_text.reason_html
WORKING = {"incomplete", "returned", "awaiting_authorisation"}
STATE_NAMES = {"incoming": "Incoming", "incomplete": "Incomplete", "returned": "Returned",
               "awaiting_authorisation": "Awaiting authorisation", "future": "Future", "finished": "Finished",
               "cancelled": "Cancelled"}
templates.env.globals["state_names"] = STATE_NAMES
templates.env.globals["london"] = chronology.LONDON
templates.env.globals.update(work_sorts=SORTS, work_sizes=SIZES)  # issue #18 §5
templates.env.globals["rag_guide"] = trays.rag_guide()  # R-T3: shown wherever a RAG is chosen


def compile_templates() -> None:
    """Compile every page's template, so that no worker's first request for a page waits for it (a person page's
    took 259 ms). Run in a thread once the desk starts (all twenty take ~0.5-1 s, which the desk's readiness
    does not wait for); Jinja's template cache is thread-safe."""
    for name in templates.env.list_templates(extensions=["html"]):
        templates.env.get_template(name)


class SignInRequired(Exception):
    """No live session: the page sends the browser to sign in and back."""


class NoAccess(Exception):
    """A record the worker has no relationship with: a reason must be recorded first."""

    def __init__(self, person_id: str) -> None:
        self.person_id = person_id


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, exc: SignInRequired) -> Response:
        target = request.url.path if request.method == "GET" else request.headers.get("referer", "/")
        return RedirectResponse(f"/login?{urlencode({'next': local_path(target)})}", 303)

    @app.exception_handler(NoAccess)
    async def to_break_glass(request: Request, exc: NoAccess) -> Response:
        return RedirectResponse(f"/people/{exc.person_id}/access", 303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {403: "Not allowed", 404: "Not found"}
        return templates.TemplateResponse(request, "error.html", {
            "user": None, "title": titles.get(exc.status_code, "Something went wrong"),
            "message": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> Response:
        return templates.TemplateResponse(request, "error.html", {
            "user": None, "title": "A service is not answering",
            "message": f"The {exc.service} service could not be read just now. Nothing was lost: try again in a"
                       " moment."}, status_code=503)


def local_path(target: str) -> str:
    """Only paths on this site: never an open redirect."""
    if "://" in target:
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    return target if target.startswith("/") and not target.startswith("//") else "/"


def readers(request: Request) -> Readers:
    return request.app.state.readers


def pool(request: Request) -> Any:
    return request.app.state.runtime.pool


def settings_of(request: Request) -> Any:
    return request.app.state.settings


async def current_user(request: Request) -> User:
    user = await request.app.state.sessions.user(pool(request), request.cookies.get(auth.SESSION_COOKIE))
    if user is None:
        raise SignInRequired()
    bearer.act_for(user.actor())  # the services see this worker in every read of this request
    return user


async def checked_form(request: Request, user: User) -> FormData:
    form = await request.form()
    if not auth.csrf_ok(user, str(form.get("csrf_token", ""))):
        raise HTTPException(403, "the form has expired: reload the page and try again")
    return form


async def render(request: Request, template: str, user: User | None, status_code: int = 200,
                 **context: Any) -> HTMLResponse:
    flash = user.flash if user else None
    if flash:
        await request.app.state.sessions.flash(pool(request), request.cookies.get(auth.SESSION_COOKIE), None)
    return templates.TemplateResponse(request, template, {"user": user, "flash": flash, **context},
                                      status_code=status_code)


async def set_flash(request: Request, flash: dict[str, Any]) -> None:
    await request.app.state.sessions.flash(pool(request), request.cookies.get(auth.SESSION_COOKIE), flash)


def back(url: str) -> RedirectResponse:
    return RedirectResponse(url, 303)


async def send(request: Request, user: User, type_: str, *, key: str | None, **arguments: Any) -> Outcome:
    """A command with this user as actor, awaited to its outcome."""
    return await request.app.state.bus.send(type_, user.actor(), key=key,
                                            timeout=settings_of(request).web_command_timeout_seconds, **arguments)


async def report(request: Request, outcome: Outcome, done: str, *, scope: str = "", **extra: Any) -> None:
    """The outcome as the next page's message: done, refused with every reason, or still on its way."""
    flash: dict[str, Any]
    if outcome.pending:
        flash = {"kind": "pending", "message": f"Sent (command {outcome.command_id}); the answer has not arrived"
                 " yet. Reload in a moment to see it."}
    elif outcome.unconfirmed:
        flash = {"kind": "error", "message": "Not confirmed:", "reasons": outcome.reasons}
    elif outcome.rejected:
        flash = {"kind": "error", "message": "That was not done:", "reasons": outcome.reasons}
    else:
        flash = {"kind": "ok", "message": done}
    await set_flash(request, {**flash, "scope": scope, "command": outcome.command_type, **extra})


def inputs_at_fault(flash: dict[str, Any] | None, inputs: dict[str, str]) -> dict[str, Any]:
    """Issue #19 §4: a refused form as GOV.UK shows it. `inputs` maps each field a refusal may name to the id of its
    input on the page: the error summary links each reason to its input (`link_for`), and each input says its
    reasons beside it (`field_errors`, by the input's id)."""
    errors: dict[str, list[str]] = {}
    if flash and flash.get("kind") == "error":
        for r in flash.get("reasons") or []:
            if r.get("field") in inputs:
                errors.setdefault(inputs[r["field"]], []).append(str(r.get("message", "")))
    return {"field_errors": errors,
            "link_for": lambda reason: f"#{inputs[reason['field']]}" if reason.get("field") in inputs else None}


def form_value(form: FormData, name: str) -> str | None:
    value = str(form.get(name, "")).strip()
    return value or None


def target_of(kind: str | None, ident: str | None) -> dict[str, str] | None:
    if kind in ("worker", "team") and ident:
        return {"kind": kind, "id": ident}
    return None


# --- current work --------------------------------------------------------------------------------


@router.get("/")
async def home() -> Response:
    return back("/work")


@router.get("/work")
async def my_work(request: Request) -> HTMLResponse:
    user = await current_user(request)
    r = readers(request)
    listing = WorkListing.of(request.query_params)
    work, inbox, allocations, *team_tasks = await asyncio.gather(
        r.workflow.worker_work(user.user_id, listing), r.notifications.worker_inbox(user.user_id),
        r.allocation.allocations(user.user_id), *(r.notifications.team_tasks(t) for t in user.team_ids))
    people = people_in(work) | {a["person_id"] for a in allocations}
    people |= {i["person_id"] for i in inbox or [] if i.get("person_id")}
    tasks, requests = split_tasks(inbox)
    return await render(request, "work.html", user, work=work, listing=listing, inbox=requests, tasks=tasks,
                        allocations=allocations, team_task_counts=dict(zip(user.team_ids, team_tasks, strict=True)),
                        names=await r.names(people), title="My work")


def people_in(work: dict[str, Any]) -> set[str]:
    """The people of a page of work (its buckets' items)."""
    return {i["person_id"] for bucket in BUCKETS for i in work[bucket]}


def split_tasks(inbox: list[dict[str, Any]] | None) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """Tasks (issue #22 §1) apart from requests and notifications; None stays None (the service did not answer)."""
    if inbox is None:
        return None, None
    return [i for i in inbox if i.get("kind") == "task"], [i for i in inbox if i.get("kind") != "task"]


@router.post("/tasks/{task_id}/complete")
async def complete_task(request: Request, task_id: str) -> Response:
    """The worker says a task in their (or their team's) inbox is done; notifications checks it is theirs."""
    user = await current_user(request)
    form = await checked_form(request, user)
    outcome = await send(request, user, "task.complete", key=form_value(form, "person_id"), task_id=task_id,
                         note=form_value(form, "note"))
    await report(request, outcome, "Task done.", scope="tasks")
    next_path = form_value(form, "next") or "/work"
    return back(next_path if next_path.startswith("/") and not next_path.startswith("//") else "/work")


async def team_members(request: Request, team_id: str) -> list[Any]:
    return [u for u in await store.all_users(pool(request)) if team_id in u["team_ids"]]


@router.get("/teams/{team_id}/work")
async def team_work(request: Request, team_id: str) -> HTMLResponse:
    user = await current_user(request)
    if team_id not in user.team_ids:
        raise HTTPException(403, "you are not a member of that team")
    r = readers(request)
    listing = WorkListing.of(request.query_params)
    work, inbox, members = await asyncio.gather(r.workflow.team_work(team_id, listing),
                                                r.notifications.team_inbox(team_id), team_members(request, team_id))
    people = people_in(work) | {i["person_id"] for i in inbox or [] if i.get("person_id")}
    tasks, requests = split_tasks(inbox)
    return await render(request, "team_work.html", user, team_id=team_id, work=work, listing=listing,
                        inbox=requests, tasks=tasks, members=members, names=await r.names(people),
                        title=f"Team work: {team_id}")


# --- people and access ---------------------------------------------------------------------------


async def why_allowed(request: Request, user: User, person_id: str, steps: list[dict[str, Any]] | None = None,
                      relationships: dict[str, Any] | None = None) -> str | None:
    """Why this user may open the record, or None; a recent recorded reason counts (break-glass). When there is
    a why, the rest of the request reads the person with the grant it makes (shared/bearer.py)."""
    with bearer.as_component():  # the check reads what the worker may not yet see
        why = await _why_allowed(request, user, person_id, steps, relationships)
    if why:
        bearer.grant(person_id, "recorded reason" if why.startswith(RECORDED_REASON) else "relationship")
    return why


async def _why_allowed(request: Request, user: User, person_id: str, steps: list[dict[str, Any]] | None,
                       relationships: dict[str, Any] | None) -> str | None:
    r = readers(request)
    if steps is None:
        steps = await r.workflow.person_steps(person_id)
    if relationships is None:
        relationships = await r.allocation.relationships(person_id)
    why = access.why_allowed(worker_id=user.user_id, team_ids=user.team_ids, person_id=person_id, steps=steps,
                             relationships=relationships, roles=user.roles)
    if why:
        return why
    # asked of the owning services for this one person, never by reading whole trays or inboxes (issue #18 §5):
    # the person on a Planned Work Tray of your team, or a request or notification about them sent to you or your
    # team, open or done
    trays, sent = await asyncio.gather(
        r.allocation.trays_of_person(person_id),
        r.notifications.about_person(person_id, user.user_id, list(user.team_ids)))
    why = access.why_allowed(
        worker_id=user.user_id, team_ids=user.team_ids, person_id=person_id,
        tray_person_ids=[person_id for t in trays if on_team_tray(t, user.team_ids)], inbox=sent)
    if why:
        return why
    since = datetime.now(UTC) - timedelta(hours=settings_of(request).web_break_glass_hours)
    reason = await store.recent_access(pool(request), user.user_id, uuid.UUID(person_id), since)
    return f"{RECORDED_REASON}{reason}" if reason else None


async def _value(value: Any) -> Any:
    """A value where a gathered read is not needed."""
    return value


def on_team_tray(tray: dict[str, Any], team_ids: Any) -> bool:
    """An entry of the person on a Planned Work Tray of one of these teams."""
    return tray.get("tray") == "planned_work" and tray.get("team_id") in team_ids


def current(relationships: dict[str, Any]) -> dict[str, Any]:
    """Of every relationship allocation lists (include_ended), those it shows as current: open workers, and teams
    still visible (allocation's own `open` and `visible`), so that one read serves the page and its history."""
    return {**relationships,
            "worker_relationships": [w for w in relationships.get("worker_relationships", []) if w.get("open")],
            "organisational_relationships": [o for o in relationships.get("organisational_relationships", [])
                                             if o.get("visible")]}


RECORDED_REASON = "you recorded a reason: "
# what the page shows of the person's waiting to a worker neither on Duty nor running a tray
NOT_WAITING: dict[str, Any] = {"urgency": None, "planned_work": []}


def access_reason(why: str) -> str | None:
    """The break-glass reason behind `why`, sent with a person command: referrals records it too (issue #11 §3)."""
    return why.removeprefix(RECORDED_REASON) if why.startswith(RECORDED_REASON) else None


def checked_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise HTTPException(404, "no such record") from None


@router.get("/people/{person_id}")
async def person(request: Request, person_id: str, as_at: str = "", at_time: str = "") -> HTMLResponse:
    user = await current_user(request)
    person_id = checked_uuid(person_id)
    r = readers(request)
    # what the access check reads, the page shows if it allows: every relationship and every step's history in
    # the one read of each (issue #18 §5)
    with bearer.as_component():
        steps, all_relationships = await asyncio.gather(r.workflow.person_steps(person_id, history=True),
                                                        r.allocation.relationships(person_id, include_ended=True))
    relationships = current(all_relationships)
    why = await why_allowed(request, user, person_id, steps, relationships)
    if why is None:
        raise NoAccess(person_id)
    moment = chronology.parse_as_at(f"{as_at}T{at_time}" if as_at and at_time else as_at)
    if as_at and moment is None:
        raise HTTPException(404, "the as-at date is not a date (YYYY-MM-DD)")
    # every read the page needs, at once: the page takes as long as the slowest, not their sum (issue #18 §5)
    file, documents, clocks, waiting, users, step_types = await asyncio.gather(
        r.referrals.file(person_id), r.documents.of_person(person_id), r.clocks.of_person(person_id),
        r.allocation.waiting(person_id) if user.does_duty or user.runs_trays else _value(NOT_WAITING),
        store.all_users(pool(request)), r.workflow.step_types())
    if file is None:
        raise HTTPException(404, "no such person")
    record, notes, history = file["person"], file["notes"], file["history"]
    urgency = waiting["urgency"] if user.does_duty and not moment else None
    tray_entries = [e for e in waiting["planned_work"] if e["team_id"] in user.team_ids] if user.runs_trays else []
    buckets: dict[str, list[dict[str, Any]]] = {"incoming": [], "incomplete": [], "future": []}
    for s in steps:
        bucket = {"incoming": "incoming", "future": "future"}.get(s["state"], "incomplete")
        if s["state"] in ("incoming", "future") or s["state"] in WORKING:
            buckets[bucket].append(s)
    others = {rel["other_person_id"] for rel in record.get("relationships", [])}
    members, alloc_teams = allocation_choices(users, user)
    events = chronology.build(steps=steps, notes=notes, record_history=history,
                              relationships=all_relationships, until=moment,
                              names={u["user_id"]: u["display_name"] for u in users})
    authorised = packs.needs_authorising(packs.authorised_types(step_types))
    then = chronology.steps_as_at(steps, moment, documents or [], authorised) if moment else None
    shown = _as_at(moment, record, notes, all_relationships, documents, history) if moment else {
        "notes": notes, "relationships": relationships, "personal": record.get("relationships") or [],
        "documents": documents, "changed_since": []}
    flash = user.flash or {}  # a manager action refused here (the tray's own are refused on the tray)
    refused = {} if flash.get("row") else PERSON_ACTION_INPUTS.get(str(flash.get("command")), {})
    return await render(request, "person.html", user, person=record, steps=buckets, **shown,
                        clocks=None if clocks is None else [c for c in clocks if c["state"] != "stopped"],
                        **inputs_at_fault(user.flash, refused),
                        finished=[s for s in steps if s["state"] in ("finished", "cancelled")],
                        names={pid: file["related_names"].get(pid) or pid for pid in others}, why=why,
                        referrals=_received_by(file["referrals"], moment),
                        involved=involvement(relationships, steps,
                                             {u["user_id"]: u["display_name"] for u in users}),
                        tray_entries=tray_entries, members=members, alloc_teams=alloc_teams,
                        title=_name(record), urgency=urgency,
                        as_at_words=chronology.as_at_label(moment) if moment else "",
                        chronology=events,
                        as_at=moment, as_at_date=as_at if moment else "", at_time=at_time if moment else "",
                        then=then, today=date.today().isoformat(),
                        tomorrow=(date.today() + timedelta(days=1)).isoformat(),
                        startable=packs.startable(step_types, user.roles, user.team_ids))


def allocation_choices(users: list[Any], user: User) -> tuple[list[Any], list[str]]:
    """Whom a manager may allocate to, and for which team: their own teams' workers, or every worker and team
    for a manager above teams (R-A3: a senior officer allocates for any team); never the administrator."""
    workers = [u for u in users if auth.ADMINISTRATOR not in u["roles"]]
    if above_teams(user.roles):
        return workers, sorted({t for u in workers for t in u["team_ids"]})
    return [u for u in workers if set(u["team_ids"]) & set(user.team_ids)], list(user.team_ids)


def involvement(relationships: dict[str, Any], steps: list[dict[str, Any]],
                worker_names: dict[str, str]) -> list[dict[str, str]]:
    """R-A3: who is already involved before a manager allocates — each worker and team with an open relationship
    and each holder of the person's open or future work, with why."""
    found: dict[tuple[str, str], list[str]] = {}
    for rel in relationships.get("worker_relationships", []):
        found.setdefault(("worker", rel["worker_id"]), []).append(
            f"{rel['relationship']} since {chronology.format_day(rel['start_date'])}")
    for rel in relationships.get("organisational_relationships", []):
        found.setdefault(("team", rel["team_id"]), []).append(
            f"{rel['relationship']} since {chronology.format_day(rel['start_date'])}")
    for step in steps:
        if step["state"] in WORKING | {"incoming", "future"}:
            holder = step["assignee"]
            found.setdefault((holder["kind"], holder["id"]), []).append(
                f"holds {step['step_type']} ({STATE_NAMES.get(step['state'], step['state'])})")
    return [{"kind": kind, "id": ident,
             "name": worker_names.get(ident, ident) if kind == "worker" else team_name(ident),
             "why": "; ".join(whys)} for (kind, ident), whys in found.items()]


def _received_by(referrals: list[dict[str, Any]], moment: datetime | None) -> list[dict[str, Any]]:
    """The referrals as at `moment`: those received by then (all of them today)."""
    if moment is None:
        return referrals
    return [r for r in referrals if datetime.fromisoformat(r["received_at"]) <= moment]


def _as_at(moment: datetime, record: dict[str, Any], notes: list[dict[str, Any]], relationships: dict[str, Any],
           documents: list[dict[str, Any]] | None, history: list[dict[str, Any]]) -> dict[str, Any]:
    """What of the person page can be shown as it stood at the moment: notes, relationships and documents."""
    return {
        "notes": chronology.made_by(notes, moment, "written_at"),
        "relationships": {kind: chronology.open_on(relationships.get(kind, []), moment)
                          for kind in ("worker_relationships", "organisational_relationships")},
        "personal": chronology.open_on(record.get("relationships") or [], moment),
        "documents": None if documents is None else chronology.made_by(documents, moment, "finished_at",
                                                                        "created_at"),
        "changed_since": chronology.changed_since(history, moment),
    }


@router.get("/people/{person_id}/documents/{document_id}.pdf")
async def document_pdf(request: Request, person_id: str, document_id: str) -> Response:
    """A document's PDF through this service (the browser never talks to the documents service)."""
    user = await current_user(request)
    person_id, document_id = checked_uuid(person_id), checked_uuid(document_id)
    if await why_allowed(request, user, person_id) is None:
        raise NoAccess(person_id)
    r = readers(request)
    listed = await r.documents.of_person(person_id)
    if listed is None:
        raise Unavailable("documents")
    if not any(d["document_id"] == document_id and d.get("pdf") for d in listed):
        raise HTTPException(404, "no such document of this person")
    status, content, disposition = await r.documents.pdf(document_id)
    if status != 200:
        raise HTTPException(404, "no such document")
    return Response(content, media_type="application/pdf", headers={
        "Content-Disposition": disposition or "inline", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


@router.post("/people/{person_id}/start_new")
async def start_new(request: Request, person_id: str) -> Response:
    """R-W1 Start > New: a new workflow whose first step is the chosen type, assigned to the worker."""
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = checked_uuid(person_id)
    if await why_allowed(request, user, person_id) is None:
        raise NoAccess(person_id)
    step_type = form_value(form, "step_type")
    if step_type not in packs.startable(await readers(request).workflow.step_types(), user.roles, user.team_ids):
        await set_flash(request, {"kind": "error", "message": "That step type cannot be started from here:",
                                  "reasons": [{"message": f"{step_type or 'no step type'} is not on your"
                                               " Start > New menu (R-W12)"}], "scope": "start_new"})
        return back(f"/people/{person_id}#start-new")
    outcome = await send(request, user, "step.start_new", key=person_id, person_id=person_id, step_type=step_type)
    created = outcome.of("step.created")
    await report(request, outcome, f"Started {step_type}.", scope="start_new")
    return back(f"/steps/{created['step_id']}" if created else f"/people/{person_id}#start-new")


def _name(record: dict[str, Any] | None) -> str:
    if not record:
        return "Person"
    return f"{record.get('first_name', '')} {record.get('last_name', '')}".strip()


@router.get("/people/{person_id}/access")
async def access_page(request: Request, person_id: str) -> HTMLResponse:
    user = await current_user(request)
    return await render(request, "break_glass.html", user, status_code=403, person_id=checked_uuid(person_id),
                        title="Access to this record needs a reason")


@router.post("/people/{person_id}/access")
async def record_access(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = checked_uuid(person_id)
    reason = str(form.get("reason", "")).strip()
    if len(reason) < 10:
        await set_flash(request, {"kind": "error", "message": "Say why you need this record (at least 10"
                                  " characters): the reason is kept and shown to managers."})
        return back(f"/people/{person_id}/access")
    async with pool(request).acquire() as conn, conn.transaction():
        await store.record_access(conn, user.user_id, list(user.roles), list(user.team_ids), uuid.UUID(person_id),
                                  reason[:2000])
        await store.audit_act(conn, "record.break_glass", actor=user.user_id, roles=user.roles, subject=person_id,
                              details={"reason": reason[:2000], "team_ids": ",".join(user.team_ids)})
    await set_flash(request, {"kind": "ok", "message": "Your reason was recorded; managers can see it."})
    return back(f"/people/{person_id}")


@router.get("/people")
async def find_page(request: Request) -> HTMLResponse:
    """The search form only: what identifies a person is never taken from a URL, where access logs and history
    keep it."""
    user = await current_user(request)
    return await render(request, "find.html", user, asked={}, found=[], more=False, problems=[], searched=False,
                        title="Find a person", **inputs_at_fault(None, FIND_INPUTS))


# issue #19 §4: the person page's manager actions, by the field a refusal names
PERSON_ACTION_INPUTS = {
    "tray.add": {"team_id": "tray-team", "rationale": "tray-rationale", "priority": "tray-priority",
                 "complexity": "tray-complexity", "support": "tray-support", "risk": "tray-risk",
                 "rag_override": "tray-override", "rag_override_reason": "tray-override-reason",
                 "urgent": "tray-urgent"},
    "review_tray.add": {"team_id": "rt-team", "review_due": "rt-due", "reason": "rt-reason"},
    "case.allocate": {"worker_id": "alloc-worker", "team_id": "alloc-team"},
    "urgent_actions.record": {"note": "urgent-note"},
    "case_note.add": {"title": "note-title", "type": "note-type", "text": "note-text"},
    "step.start_new": {"step_type": "start-type"},
}
SEARCH_FIELDS = {"name": (2, 100, "Name"), "postcode": (2, 10, "Postcode")}
FIND_INPUTS = {"nhs_number": "nhs", "name": "find-name", "date_of_birth": "find-dob", "postcode": "find-postcode"}


@router.post("/people")
async def find_people(request: Request) -> HTMLResponse:
    """By NHS number, or by name, date of birth and postcode (issue #22 §9): sent in a POST, read from referrals."""
    user = await current_user(request)
    form = await checked_form(request, user)
    asked = {k: str(form.get(k, "")).strip()[:120] for k in ("nhs_number", "name", "date_of_birth", "postcode")}
    problems = search_problems(asked)
    found, more = ([], False) if problems else await _search(request, asked)
    return await render(request, "find.html", user, asked=asked, found=found, more=more, problems=problems,
                        searched=not problems, title="Find a person",
                        **inputs_at_fault({"kind": "error", "reasons": problems}, FIND_INPUTS))


async def _search(request: Request, asked: dict[str, str]) -> tuple[list[dict[str, Any]], bool]:
    digits = asked["nhs_number"].replace(" ", "")
    if digits:
        return await readers(request).referrals.by_nhs_number(digits), False
    result = await readers(request).referrals.search(name=asked["name"], date_of_birth=asked["date_of_birth"],
                                                     postcode=asked["postcode"])
    return result["people"], result["more"]


def search_problems(asked: dict[str, str]) -> list[dict[str, str]]:
    """Every field at fault, named, never echoing what was typed."""
    digits = asked["nhs_number"].replace(" ", "")
    if digits:
        return [] if len(digits) == 10 and digits.isdigit() else [
            {"field": "nhs_number", "message": "NHS number: ten digits"}]
    problems = [{"field": key, "message": f"{label}: {low} to {high} characters"}
                for key, (low, high, label) in SEARCH_FIELDS.items()
                if asked[key] and not low <= len(asked[key]) <= high]
    if asked["date_of_birth"]:
        try:
            date.fromisoformat(asked["date_of_birth"])
        except ValueError:
            problems.append({"field": "date_of_birth", "message": "Date of birth: a date"})
    if not any(asked[k] for k in ("name", "date_of_birth", "postcode")):
        problems.append({"field": "nhs_number", "message": "Give an NHS number, or a name, date of birth or postcode"})
    return problems


@router.post("/people/{person_id}/notes")
async def add_note(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = checked_uuid(person_id)
    why = await why_allowed(request, user, person_id)
    if why is None:
        raise NoAccess(person_id)
    outcome = await send(request, user, "case_note.add", key=person_id, person_id=person_id,
                         title=form_value(form, "title"), type=form_value(form, "type") or "Case Note",
                         text=form_value(form, "text"),
                         access_reason=access_reason(why))
    await report(request, outcome, "Case note added.", scope="notes")
    return back(f"/people/{person_id}#notes")
