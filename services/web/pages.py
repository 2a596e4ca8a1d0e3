"""The pages: sign-in, current work, people, step forms, authorisations, the Planned Work Tray, access audit."""

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.web import access, auth, chronology, forms, oidc, packs, store, trays
from services.web.auth import User
from services.web.clients import Readers, Unavailable
from services.web.commands import Outcome

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(anchor=forms.anchor, display=forms.display, input_value=forms.input_value,
                             field_access=forms.field_access, column_editable=forms.column_editable,
                             saved_changes=forms.saved_changes, role_names=auth.ROLE_NAMES)
templates.env.filters["when"] = chronology.format_when
templates.env.filters["day"] = chronology.format_day
WORKING = {"incomplete", "returned", "awaiting_authorisation"}
STATE_NAMES = {"incoming": "Incoming", "incomplete": "Incomplete", "returned": "Returned",
               "awaiting_authorisation": "Awaiting authorisation", "future": "Future", "finished": "Finished",
               "cancelled": "Cancelled"}
templates.env.globals["state_names"] = STATE_NAMES
templates.env.globals["london"] = chronology.LONDON


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
        return RedirectResponse(f"/login?{urlencode({'next': _local(target)})}", 303)

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


def _local(target: str) -> str:
    """Only paths on this site: never an open redirect."""
    if "://" in target:
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _readers(request: Request) -> Readers:
    return request.app.state.readers


def _pool(request: Request) -> Any:
    return request.app.state.runtime.pool


def _settings(request: Request) -> Any:
    return request.app.state.settings


async def current_user(request: Request) -> User:
    user = await request.app.state.sessions.user(_pool(request), request.cookies.get(auth.SESSION_COOKIE))
    if user is None:
        raise SignInRequired()
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
        await request.app.state.sessions.flash(_pool(request), request.cookies.get(auth.SESSION_COOKIE), None)
    return templates.TemplateResponse(request, template, {"user": user, "flash": flash, **context},
                                      status_code=status_code)


async def set_flash(request: Request, flash: dict[str, Any]) -> None:
    await request.app.state.sessions.flash(_pool(request), request.cookies.get(auth.SESSION_COOKIE), flash)


def back(url: str) -> RedirectResponse:
    return RedirectResponse(url, 303)


async def send(request: Request, user: User, type_: str, *, key: str | None, **arguments: Any) -> Outcome:
    """A command with this user as actor, awaited to its outcome."""
    return await request.app.state.bus.send(type_, user.actor(), key=key,
                                            timeout=_settings(request).web_command_timeout_seconds, **arguments)


async def report(request: Request, outcome: Outcome, done: str, *, scope: str = "", **extra: Any) -> None:
    """The outcome as the next page's message: done, refused with every reason, or still on its way."""
    if outcome.pending:
        flash = {"kind": "pending", "message": f"Sent (command {outcome.command_id}); the answer has not arrived"
                 " yet. Reload in a moment to see it."}
    elif outcome.rejected:
        flash = {"kind": "error", "message": "That was not done:", "reasons": outcome.reasons}
    else:
        flash = {"kind": "ok", "message": done}
    await set_flash(request, {**flash, "scope": scope, "command": outcome.command_type, **extra})


def _opt(form: FormData, name: str) -> str | None:
    value = str(form.get(name, "")).strip()
    return value or None


def _target(kind: str | None, ident: str | None) -> dict[str, str] | None:
    if kind in ("worker", "team") and ident:
        return {"kind": kind, "id": ident}
    return None


# --- sign-in -------------------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, next: str = "/work", failed: bool = False,
                     oidc_problem: str = "") -> HTMLResponse:
    return await _sign_in_form(request, next, failed=failed, oidc_problem=oidc_problem,
                               status_code=401 if failed or oidc_problem else 200)


async def _sign_in_form(request: Request, next: str, *, status_code: int, failed: bool = False,
                        oidc_problem: str = "", throttled: bool = False) -> HTMLResponse:
    token, cookie = request.app.state.sessions.login_csrf()
    settings = _settings(request)
    demo = [u for u in await store.all_users(_pool(request)) if u["demo"]] if settings.demo_accounts else []
    response = templates.TemplateResponse(request, "login.html", {
        "user": None, "next": _local(next), "csrf": token, "failed": failed, "throttled": throttled,
        "demo_users": demo, "demo_password": settings.web_demo_password if demo else None,
        "oidc": request.app.state.oidc is not None, "oidc_problem": oidc_problem,
    }, status_code=status_code)
    response.set_cookie(auth.LOGIN_CSRF_COOKIE, cookie, httponly=True, samesite="strict",
                        secure=settings.cookies_secure, max_age=3600)
    return response


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    sessions = request.app.state.sessions
    settings = _settings(request)
    target = _local(str(form.get("next", "/work")))
    if not sessions.login_csrf_ok(request.cookies.get(auth.LOGIN_CSRF_COOKIE), str(form.get("csrf_token", ""))):
        return back(f"/login?{urlencode({'next': target, 'failed': 'true'})}")
    outcome, user_id = await auth.sign_in(_pool(request), settings, str(form.get("username", ""))[:200],
                                          str(form.get("password", ""))[:1000], client_address(request))
    if outcome is auth.SignIn.THROTTLED:
        response = await _sign_in_form(request, target, throttled=True, status_code=429)
        response.headers["Retry-After"] = str(max(1, round(settings.web_sign_in_window_seconds)))
        return response
    if user_id is None:
        return back(f"/login?{urlencode({'next': target, 'failed': 'true'})}")
    response = back(target)
    response.set_cookie(auth.SESSION_COOKIE, await sessions.open(_pool(request), user_id), httponly=True,
                        samesite="lax", secure=settings.cookies_secure)
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE)
    return response


@router.get("/login/oidc")
async def oidc_login(request: Request, next: str = "/work") -> Response:
    """Send the browser to the council's authorize URL (authorization code, PKCE, state and nonce)."""
    provider: oidc.Oidc | None = request.app.state.oidc
    if provider is None:
        raise HTTPException(404, "council sign-in is not set up here")
    settings = _settings(request)
    redirect_uri = settings.web_oidc_redirect_uri or str(request.url_for("oidc_callback"))
    try:
        url, cookie = await provider.start(redirect_uri, _local(next))
    except oidc.SignInFailed as exc:
        return back(f"/login?{urlencode({'next': _local(next), 'oidc_problem': str(exc)})}")
    response = RedirectResponse(url, 303)
    response.set_cookie(oidc.STATE_COOKIE, cookie, httponly=True, samesite="lax", max_age=oidc.STATE_MAX_AGE,
                        secure=settings.cookies_secure, path="/login/oidc")
    return response


@router.get("/login/oidc/callback", name="oidc_callback")
async def oidc_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    """The issuer sends the browser back here: check the state, swap the code, check the ID token, sign in."""
    provider: oidc.Oidc | None = request.app.state.oidc
    if provider is None:
        raise HTTPException(404, "council sign-in is not set up here")
    settings = _settings(request)
    target = "/work"
    try:
        if error:
            raise oidc.SignInFailed(f"the council sign-in service said: {error[:100]}")
        flow = provider.pending(request.cookies.get(oidc.STATE_COOKIE), state)
        target = _local(str(flow.get("next") or "/work"))
        claims, id_token = await provider.finish(flow, code)
        user_id = await oidc.local_user(_pool(request), settings, claims, client_address(request))
    except oidc.SignInFailed as exc:
        async with _pool(request).acquire() as conn, conn.transaction():
            await store.audit_act(conn, "account.sign_in_failed", actor="anonymous", details={
                "address": client_address(request), "with": "council", "why": str(exc)})
        response = back(f"/login?{urlencode({'next': target, 'oidc_problem': str(exc)})}")
        response.delete_cookie(oidc.STATE_COOKIE, path="/login/oidc")
        return response
    response = back(target)
    response.set_cookie(auth.SESSION_COOKIE,
                        await request.app.state.sessions.open(_pool(request), user_id, id_token),
                        httponly=True, samesite="lax", secure=settings.cookies_secure)
    response.delete_cookie(oidc.STATE_COOKIE, path="/login/oidc")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    user = await current_user(request)
    await checked_form(request, user)
    id_token = await request.app.state.sessions.close(_pool(request), request.cookies.get(auth.SESSION_COOKIE))
    async with _pool(request).acquire() as conn, conn.transaction():
        await store.audit_act(conn, "account.signed_out", actor=user.user_id, roles=user.roles,
                              object_id=user.user_id, details={"address": client_address(request)})
    provider: oidc.Oidc | None = request.app.state.oidc
    target = "/login"
    if id_token and provider is not None:  # a council session: the provider ends its own session too
        target = await provider.logout_url(id_token, str(request.url_for("login_page"))) or target
    response = back(target)
    response.delete_cookie(auth.SESSION_COOKIE)
    response.headers["Clear-Site-Data"] = '"storage"'  # unsaved drafts do not outlive the session
    return response


# --- current work --------------------------------------------------------------------------------


@router.get("/")
async def home() -> Response:
    return back("/work")


@router.get("/work")
async def my_work(request: Request) -> HTMLResponse:
    user = await current_user(request)
    r = _readers(request)
    work, inbox, allocations = await asyncio.gather(
        r.workflow.worker_work(user.user_id), r.notifications.worker_inbox(user.user_id),
        r.allocation.allocations(user.user_id))
    people = {i["person_id"] for items in work.values() for i in items}
    people |= {a["person_id"] for a in allocations} | {i["person_id"] for i in inbox or [] if i.get("person_id")}
    return await render(request, "work.html", user, work=work, inbox=inbox, allocations=allocations,
                        names=await r.names(people), title="My work")


async def _team_members(request: Request, team_id: str) -> list[Any]:
    return [u for u in await store.all_users(_pool(request)) if team_id in u["team_ids"]]


@router.get("/teams/{team_id}/work")
async def team_work(request: Request, team_id: str) -> HTMLResponse:
    user = await current_user(request)
    if team_id not in user.team_ids:
        raise HTTPException(403, "you are not a member of that team")
    r = _readers(request)
    work, inbox = await asyncio.gather(r.workflow.team_work(team_id), r.notifications.team_inbox(team_id))
    people = {i["person_id"] for items in work.values() for i in items}
    return await render(request, "team_work.html", user, team_id=team_id, work=work, inbox=inbox,
                        members=await _team_members(request, team_id), names=await r.names(people),
                        title=f"Team work: {team_id}")


# --- people and access ---------------------------------------------------------------------------


async def why_allowed(request: Request, user: User, person_id: str,
                      steps: list[dict[str, Any]] | None = None) -> str | None:
    """Why this user may open the record, or None; a recent recorded reason counts (break-glass)."""
    r = _readers(request)
    if steps is None:
        steps = await r.workflow.person_steps(person_id)
    relationships = await r.allocation.relationships(person_id)
    why = access.why_allowed(worker_id=user.user_id, team_ids=user.team_ids, person_id=person_id, steps=steps,
                             relationships=relationships)
    if why:
        return why
    trays = await asyncio.gather(*(r.allocation.tray(t, limit=1000) for t in user.team_ids))
    # a request or notification sent to you about the person, open or done, is a reason to see them
    inboxes = await asyncio.gather(r.notifications.worker_inbox(user.user_id, None),
                                   *(r.notifications.team_inbox(t, None) for t in user.team_ids))
    why = access.why_allowed(
        worker_id=user.user_id, team_ids=user.team_ids, person_id=person_id,
        tray_person_ids=[e["person_id"] for t in trays if t for e in t.get("entries", [])],
        inbox=[i for box in inboxes if box for i in box])
    if why:
        return why
    since = datetime.now(UTC) - timedelta(hours=_settings(request).web_break_glass_hours)
    reason = await store.recent_access(_pool(request), user.user_id, uuid.UUID(person_id), since)
    return f"{RECORDED_REASON}{reason}" if reason else None


RECORDED_REASON = "you recorded a reason: "


def access_reason(why: str) -> str | None:
    """The break-glass reason behind `why`, sent with a person command: referrals records it too (issue #11 §3)."""
    return why.removeprefix(RECORDED_REASON) if why.startswith(RECORDED_REASON) else None


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise HTTPException(404, "no such record") from None


@router.get("/people/{person_id}")
async def person(request: Request, person_id: str, as_at: str = "", at_time: str = "") -> HTMLResponse:
    user = await current_user(request)
    person_id = _uuid(person_id)
    r = _readers(request)
    steps = await r.workflow.person_steps(person_id)
    why = await why_allowed(request, user, person_id, steps)
    if why is None:
        raise NoAccess(person_id)
    moment = chronology.parse_as_at(f"{as_at}T{at_time}" if as_at and at_time else as_at)
    if as_at and moment is None:
        raise HTTPException(404, "the as-at date is not a date (YYYY-MM-DD)")
    record, notes, relationships, documents, history, all_relationships, full_steps = await asyncio.gather(
        r.referrals.person(person_id), r.referrals.notes(person_id), r.allocation.relationships(person_id),
        r.documents.of_person(person_id), r.referrals.history(person_id),
        r.allocation.relationships(person_id, include_ended=True),
        r.workflow.steps([s["step_id"] for s in steps]))
    if record is None:
        raise HTTPException(404, "no such person")
    buckets: dict[str, list[dict[str, Any]]] = {"incoming": [], "incomplete": [], "future": []}
    for s in steps:
        bucket = {"incoming": "incoming", "future": "future"}.get(s["state"], "incomplete")
        if s["state"] in ("incoming", "future") or s["state"] in WORKING:
            buckets[bucket].append(s)
    others = {rel["other_person_id"] for rel in record.get("relationships", [])}
    tray_entries = []
    for team in user.team_ids if user.runs_trays else ():
        tray = await r.allocation.tray(team, limit=1000)
        tray_entries += [e for e in (tray or {}).get("entries", []) if e["person_id"] == person_id]
    members = sorted({u["user_id"]: u for t in user.team_ids for u in await _team_members(request, t)}.values(),
                     key=lambda u: u["user_id"])
    events = chronology.build(steps=full_steps, notes=notes, record_history=history or [],
                              relationships=all_relationships, until=moment)
    step_types = await r.workflow.step_types()
    authorised = packs.needs_authorising(packs.authorised_types(step_types))
    then = chronology.steps_as_at(full_steps, moment, documents or [], authorised) if moment else None
    shown = _as_at(moment, record, notes, all_relationships, documents, history or []) if moment else {
        "notes": notes, "relationships": relationships, "personal": record.get("relationships") or [],
        "documents": documents, "changed_since": []}
    return await render(request, "person.html", user, person=record, steps=buckets, **shown,
                        finished=[s for s in steps if s["state"] in ("finished", "cancelled")],
                        names=await r.names(others), why=why,
                        tray_entries=tray_entries, members=members, title=_name(record),
                        as_at_words=chronology.as_at_label(moment) if moment else "",
                        chronology=events, history_missing=history is None,
                        steps_unread=sum(1 for s in full_steps if s is None),
                        as_at=moment, as_at_date=as_at if moment else "", at_time=at_time if moment else "",
                        then=then, today=date.today().isoformat(),
                        tomorrow=(date.today() + timedelta(days=1)).isoformat(),
                        startable=packs.startable(step_types, user.team_ids))


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
    person_id, document_id = _uuid(person_id), _uuid(document_id)
    if await why_allowed(request, user, person_id) is None:
        raise NoAccess(person_id)
    r = _readers(request)
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
    person_id = _uuid(person_id)
    if await why_allowed(request, user, person_id) is None:
        raise NoAccess(person_id)
    step_type = _opt(form, "step_type")
    if step_type not in packs.startable(await _readers(request).workflow.step_types(), user.team_ids):
        await set_flash(request, {"kind": "error", "message": "That step type cannot be started from here:",
                                  "reasons": [{"message": f"{step_type or 'no step type'} is not in a pack of"
                                               " your teams"}], "scope": "start_new"})
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
    return await render(request, "break_glass.html", user, status_code=403, person_id=_uuid(person_id),
                        title="Access to this record needs a reason")


@router.post("/people/{person_id}/access")
async def record_access(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = _uuid(person_id)
    reason = str(form.get("reason", "")).strip()
    if len(reason) < 10:
        await set_flash(request, {"kind": "error", "message": "Say why you need this record (at least 10"
                                  " characters): the reason is kept and shown to managers."})
        return back(f"/people/{person_id}/access")
    async with _pool(request).acquire() as conn, conn.transaction():
        await store.record_access(conn, user.user_id, list(user.roles), list(user.team_ids), uuid.UUID(person_id),
                                  reason[:2000])
        await store.audit_act(conn, "record.break_glass", actor=user.user_id, roles=user.roles, subject=person_id,
                              details={"reason": reason[:2000], "team_ids": ",".join(user.team_ids)})
    await set_flash(request, {"kind": "ok", "message": "Your reason was recorded; managers can see it."})
    return back(f"/people/{person_id}")


@router.get("/people")
async def find_page(request: Request) -> HTMLResponse:
    """The search form only: an NHS number is never taken from a URL, where access logs and history keep it."""
    user = await current_user(request)
    return await render(request, "find.html", user, nhs_number="", found=[], searched=False, title="Find a person")


@router.post("/people")
async def find_people(request: Request) -> HTMLResponse:
    user = await current_user(request)
    form = await checked_form(request, user)
    nhs_number = str(form.get("nhs_number", ""))[:40]
    digits = nhs_number.replace(" ", "")
    found = await _readers(request).referrals.by_nhs_number(digits) if len(digits) == 10 else []
    return await render(request, "find.html", user, nhs_number=nhs_number, found=found, searched=bool(digits),
                        title="Find a person")


@router.post("/people/{person_id}/notes")
async def add_note(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = _uuid(person_id)
    why = await why_allowed(request, user, person_id)
    if why is None:
        raise NoAccess(person_id)
    outcome = await send(request, user, "case_note.add", key=person_id, person_id=person_id,
                         title=_opt(form, "title"), type=_opt(form, "type") or "Case Note", text=_opt(form, "text"),
                         access_reason=access_reason(why))
    await report(request, outcome, "Case note added.", scope="notes")
    return back(f"/people/{person_id}#notes")


# --- steps ---------------------------------------------------------------------------------------


async def _step(request: Request, user: User, step_id: str) -> dict[str, Any]:
    step = await _readers(request).workflow.step(_uuid(step_id))
    if step is None:
        raise HTTPException(404, "no such step")
    if not access.step_is_mine(step, user.user_id, user.team_ids) and \
            await why_allowed(request, user, step["person_id"]) is None:
        raise NoAccess(step["person_id"])
    return step


@router.get("/steps/{step_id}")
async def step_page(request: Request, step_id: str) -> HTMLResponse:
    user = await current_user(request)
    step = await _step(request, user, step_id)
    r = _readers(request)
    record, blockers = await asyncio.gather(
        r.referrals.get(f"/people/{step['person_id']}"),
        r.workflow.blockers(step["step_id"], user.actor()) if step["state"] in WORKING else asyncio.sleep(0))
    flash = user.flash or {}
    refused = flash.get("kind") == "error" and flash.get("scope") == f"finish:{step['step_id']}"
    listed = forms.merge_reasons(flash.get("reasons", []) if refused else [], (blockers or {}).get("blockers", []))
    refused = refused and bool(listed)
    members = sorted({u["user_id"]: u for u in await store.all_users(_pool(request))}.values(),
                     key=lambda u: u["user_id"])
    teams = sorted({t for u in members for t in u["team_ids"]})
    my_request_ids = {q["request_id"] for q in step.get("sent_requests", []) if q["state"] == "open" and (
        (q["to"]["kind"] == "worker" and q["to"]["id"] == user.user_id)
        or (q["to"]["kind"] == "team" and q["to"]["id"] in user.team_ids))}
    return await render(
        request, "step.html", user, step=step, person=record or {}, title=step["step_type"],
        open_for_recording=step["state"] in WORKING, blockers=listed, refused=refused,
        warnings=(blockers or {}).get("warnings", []), can_finish=(blockers or {}).get("can_finish"),
        link_for=lambda reason: forms.link_for(reason, step["step_id"]), sections=forms.all_sections(step),
        members=members, teams=teams, my_request_ids=my_request_ids, rendered=forms.rendered(step, user.roles),
        just_saved=flash.get("kind") == "ok" and flash.get("scope") == f"save:{step['step_id']}")


STEP_ACTIONS = {"start", "save", "refresh", "add_form", "next_action", "remove_next_action", "send_request",
                "complete_request", "finish", "authorise", "return", "assign", "cancel"}


@router.post("/steps/{step_id}/{action}")
async def step_action(request: Request, step_id: str, action: str) -> Response:
    if action not in STEP_ACTIONS:
        raise HTTPException(404, "no such action")
    user = await current_user(request)
    form = await checked_form(request, user)
    step = await _step(request, user, step_id)
    sid, key = step["step_id"], step["person_id"]
    here = _local(str(form.get("next") or f"/steps/{sid}"))
    version = int(form["expected_version"]) if str(form.get("expected_version", "")).isdigit() else None
    outcome: Outcome
    match action:
        case "start":
            outcome = await send(request, user, "step.start", key=key, step_id=sid)
            await report(request, outcome, "Started: the step is in your incomplete work.")
        case "save":
            parsed = forms.parse_save(step, form, user.roles)
            if parsed.problems:
                await set_flash(request, {"kind": "error", "message": "Not saved:", "reasons": parsed.problems,
                                          "scope": f"save:{sid}"})
                return back(here)
            if not parsed.values and parsed.completed_sections is None:
                await set_flash(request, {"kind": "ok", "message": "Nothing had changed.", "scope": f"save:{sid}"})
                return back(here)
            outcome = await send(request, user, "step.save", key=key, step_id=sid, values=parsed.values,
                                 completed_sections=parsed.completed_sections, expected_version=version)
            await report(request, outcome, "Saved.", scope=f"save:{sid}")
        case "refresh":
            outcome = await send(request, user, "step.refresh_prepopulated", key=key, step_id=sid)
            await report(request, outcome, "Refreshed from the person record.")
        case "add_form":
            outcome = await send(request, user, "step.add_form", key=key, step_id=sid, form=_opt(form, "form"))
            await report(request, outcome, f"Added {form.get('form')}.")
        case "next_action":
            kind = _opt(form, "assignee_kind")
            outcome = await send(
                request, user, "step.add_next_action", key=key, step_id=sid, action=_opt(form, "action"),
                assignee=_target(kind, _opt(form, f"assignee_{kind}") if kind else None),
                send_immediately=form.get("send_immediately") == "true",
                scheduled_date=_opt(form, "scheduled_date"), reason=_opt(form, "reason"), note=_opt(form, "note"),
                priority=_opt(form, "priority") or "normal")
            created = outcome.of("step.created")
            await report(request, outcome, f"Next action {form.get('action')} added" + (
                f"; {created['step_type']} was sent at once." if created else "."), scope=f"next:{sid}")
        case "remove_next_action":
            outcome = await send(request, user, "step.remove_next_action", key=key, step_id=sid,
                                 next_action_id=_opt(form, "next_action_id"))
            await report(request, outcome, "Next action removed.")
        case "send_request":
            spec = next((q for q in step["requests"] if q["name"] == form.get("name")), None)
            kind = "step.send_notification" if spec and spec["kind"] == "notification" else "step.send_request"
            to_kind = _opt(form, "to_kind")
            outcome = await send(request, user, kind, key=key, step_id=sid, name=_opt(form, "name"),
                                 to=_target(to_kind, _opt(form, f"to_{to_kind}") if to_kind else None),
                                 note=_opt(form, "note"))
            await report(request, outcome, f"Sent {form.get('name')}.")
        case "complete_request":
            outcome = await send(request, user, "request.complete", key=key, request_id=_opt(form, "request_id"),
                                 note=_opt(form, "note"))
            await report(request, outcome, "Request completed.")
        case "finish" | "authorise":
            if action == "authorise":
                for q in step.get("sent_requests", []):
                    mine = (q["to"]["kind"] == "worker" and q["to"]["id"] == user.user_id) or (
                        q["to"]["kind"] == "team" and q["to"]["id"] in user.team_ids)
                    if q["state"] == "open" and q["kind"] == "request" and mine:
                        done = await send(request, user, "request.complete", key=key, request_id=q["request_id"],
                                          note=_opt(form, "note") or "Authorised")
                        if not done.ok:
                            await report(request, done, "", scope=f"finish:{sid}")
                            return back(here)
            outcome = await send(request, user, "step.finish" if action == "finish" else "step.authorise",
                                 key=key, step_id=sid)
            made = [e.get("data", {}) for e in outcome.events if e.get("type") == "step.created"]
            done_text = "Finished." if action == "finish" else "Authorised and finished."
            if made:
                done_text += " Created: " + ", ".join(m.get("step_type", "") for m in made) + "."
            await report(request, outcome, done_text, scope=f"finish:{sid}")
        case "return":
            outcome = await send(request, user, "step.return", key=key, step_id=sid, note=_opt(form, "note"))
            await report(request, outcome, "Returned to the worker with your note.")
        case "assign":
            to_kind = _opt(form, "to_kind") or "worker"
            outcome = await send(request, user, "step.assign", key=key, step_id=sid,
                                 to=_target(to_kind, _opt(form, f"to_{to_kind}")))
            await report(request, outcome, "Assigned.")
        case "cancel":
            outcome = await send(request, user, "step.cancel", key=key, step_id=sid, reason=_opt(form, "reason"))
            await report(request, outcome, "Cancelled.")
    return back(here)


# --- manager views -------------------------------------------------------------------------------


@router.get("/authorisations")
async def authorisations(request: Request) -> HTMLResponse:
    """Steps awaiting authorisation by me or my teams, from workflow's own tables (R-RQ4, R-RQ7)."""
    user = await current_user(request)
    r = _readers(request)
    lists = await asyncio.gather(r.workflow.awaiting_authorisation("worker", user.user_id),
                                 *(r.workflow.awaiting_authorisation("team", t) for t in user.team_ids))
    by_step: dict[str, dict[str, Any]] = {}
    for listed in lists:
        for step in listed or []:
            by_step.setdefault(step["step_id"], step)
    waiting = sorted(by_step.values(), key=lambda s: (s["request"] or {}).get("sent_at") or s["created_at"])
    return await render(request, "authorisations.html", user, waiting=waiting,
                        unavailable=any(listed is None for listed in lists),
                        names=await r.names({s["person_id"] for s in waiting}), title="Authorisations")


TRAY_SORTS = {"priority": "Priority", "complexity": "Complexity", "rag": "RAG", "days_waiting": "Days waiting",
              "next_review_at": "Next review"}


@router.get("/tray")
async def tray(request: Request, team: str = "", sort: str = "priority,rag,-days_waiting", rag: str = "",
               priority: str = "", complexity: str = "", review_overdue: str = "", past_target: str = "") -> Response:
    user = await current_user(request)
    if not user.team_ids:
        raise HTTPException(403, "you are in no team")
    team = team if team in user.team_ids else user.team_ids[0]
    r = _readers(request)
    query = {"sort": sort, "rag": rag, "priority": priority, "complexity": complexity,
             "review_overdue": review_overdue, "past_target": past_target, "limit": 500}
    listing, summary, everything = await asyncio.gather(
        r.allocation.tray(team, **query), r.allocation.tray_report(team),
        r.allocation.tray(team, sort="next_review_at", limit=1000))
    entries = (listing or {}).get("entries", [])
    whole = (everything or {}).get("entries", [])
    escalated = sorted((e for e in whole if e.get("escalated_at")), key=lambda e: e["escalated_at"], reverse=True)
    reviews_due = [e for e in whole if e.get("review_overdue")]
    people = {e["person_id"] for e in [*entries, *whole]}
    return await render(request, "tray.html", user, team=team, listing=listing, entries=entries, report=summary,
                        escalated=escalated, reviews_due=reviews_due,
                        query=query, sorts=TRAY_SORTS, names=await r.names(people),
                        members=await _team_members(request, team), title="Planned Work Tray",
                        today=date.today().isoformat())


@router.post("/people/{person_id}/tray")
async def tray_add(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = _uuid(person_id)
    team = _opt(form, "team_id") or ""
    outcome = await send(request, user, "tray.add", key=person_id, person_id=person_id, team_id=team,
                         rationale=_opt(form, "rationale"), priority=_opt(form, "priority"),
                         urgent=form.get("urgent") == "true", complexity=_opt(form, "complexity"),
                         support=_opt(form, "support"), risk=_opt(form, "risk"))
    added = outcome.of("tray.entry_added")
    await report(request, outcome, f"Placed on the Planned Work Tray of {team}"
                 + (f": RAG {added['rag'].upper()}." if added else "."))
    return back(f"/tray?team={quote(team)}" if outcome.ok else f"/people/{person_id}#tray")


async def _entry(request: Request, entry_id: str) -> dict[str, Any]:
    entry = await _readers(request).allocation.entry(_uuid(entry_id))
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
                             contacted=form.get("contacted") == "true", note=_opt(form, "note"),
                             priority=_opt(form, "priority"), complexity=_opt(form, "complexity"),
                             support=_opt(form, "support"), risk=_opt(form, "risk"),
                             increased_risk=form.get("increased_risk") == "true",
                             expected_version=entry.get("version"))
        reviewed = outcome.of("tray.entry_reviewed")
        await report(request, outcome, "Review recorded" + (f": RAG {reviewed['rag'].upper()}." if reviewed else "."))
    elif action == "allocate":
        outcome = await send(request, user, "case.allocate", key=key, person_id=key,
                             worker_id=_opt(form, "worker_id"), team_id=entry["team_id"])
        await report(request, outcome, f"Allocated to {form.get('worker_id')}; off the tray.")
    elif action == "remove":
        outcome = await send(request, user, "tray.remove", key=key, entry_id=entry["entry_id"],
                             reason=_opt(form, "reason"))
        await report(request, outcome, "Taken off the tray.")
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
    r = _readers(request)
    listing = await r.allocation.review_tray(team)
    entries = (listing or {}).get("entries", [])
    return await render(request, "review_tray.html", user, team=team, listing=listing, entries=entries,
                        due_count=sum(1 for e in entries if e["due"]), review_mark=trays.review_mark,
                        names=await r.names({e["person_id"] for e in entries}), title="Review tray")


@router.post("/people/{person_id}/review-tray")
async def review_tray_add(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = _uuid(person_id)
    team = _opt(form, "team_id") or ""
    outcome = await send(request, user, "review_tray.add", key=person_id, person_id=person_id, team_id=team,
                         review_due=_opt(form, "review_due"), reason=_opt(form, "reason"))
    await report(request, outcome, f"Put in the Review tray of {team} until {form.get('review_due')}.")
    return back(f"/review-tray?team={quote(team)}" if outcome.ok else f"/people/{person_id}#tray")


@router.post("/review-tray/{entry_id}/remove")
async def review_tray_remove(request: Request, entry_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    entry = await _readers(request).allocation.review_entry(_uuid(entry_id))
    if entry is None:
        raise HTTPException(404, "no such Review tray entry")
    outcome = await send(request, user, "review_tray.remove", key=entry["person_id"], entry_id=entry["entry_id"],
                         reason=_opt(form, "reason"), expected_version=entry.get("version"))
    await report(request, outcome, "Taken out of the Review tray.")
    return back(f"/review-tray?team={quote(entry['team_id'])}")


@router.post("/people/{person_id}/allocate")
async def allocate(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id = _uuid(person_id)
    outcome = await send(request, user, "case.allocate", key=person_id, person_id=person_id,
                         worker_id=_opt(form, "worker_id"), team_id=_opt(form, "team_id"))
    await report(request, outcome, f"Allocated to {form.get('worker_id')}.")
    return back(f"/people/{person_id}")


@router.get("/audit/access")
async def access_audit(request: Request) -> HTMLResponse:
    user = await current_user(request)
    if not user.is_manager:
        raise HTTPException(403, "managers only")
    return await render(request, "audit.html", user, entries=await store.access_log(_pool(request)),
                        title="Access audit")
