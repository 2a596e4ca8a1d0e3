"""The step page, and what its forms post: start, save, refresh, add a form, next actions, requests, finish,
authorise, return, assign, cancel (one function per action)."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from services.web import access, chronology, forms, packs, store
from services.web.auth import ROLE_NAMES, User
from services.web.commands import Outcome
from services.web.pages import (
    WORKING,
    NoAccess,
    back,
    checked_form,
    checked_uuid,
    current_user,
    form_value,
    inputs_at_fault,
    local_path,
    pool,
    readers,
    render,
    report,
    send,
    set_flash,
    target_of,
    why_allowed,
)
from shared import bearer
from shared.actor import who_did
from shared.teams import team_name

router = APIRouter()


async def _step(request: Request, user: User, step_id: str) -> dict[str, Any]:
    with bearer.as_component():  # whose step it is decides whether the worker may read it
        step = await readers(request).workflow.step(checked_uuid(step_id))
    if step is None:
        raise HTTPException(404, "no such step")
    if access.step_is_mine(step, user.user_id, user.team_ids):
        bearer.grant(step["person_id"], "relationship")
    elif await why_allowed(request, user, step["person_id"]) is None:
        raise NoAccess(step["person_id"])
    # read again as the worker, with the grant just made: workflow says which sections they may write (#22 §9)
    return await readers(request).workflow.step(step["step_id"]) or step


@router.get("/steps/{step_id}")
async def step_page(request: Request, step_id: str) -> HTMLResponse:
    user = await current_user(request)
    step = await _step(request, user, step_id)
    r = readers(request)
    record, blockers = await asyncio.gather(
        r.referrals.get(f"/people/{step['person_id']}"),
        r.workflow.blockers(step["step_id"], user.actor()) if step["state"] in WORKING else asyncio.sleep(0))
    flash = user.flash or {}
    refused = flash.get("kind") == "error" and flash.get("scope") == f"finish:{step['step_id']}"
    listed = forms.merge_reasons(flash.get("reasons", []) if refused else [], (blockers or {}).get("blockers", []))
    refused = refused and bool(listed)
    next_refused = flash.get("kind") == "error" and flash.get("scope") == f"next:{step['step_id']}"
    save_refused = flash.get("kind") == "error" and flash.get("scope") == f"save:{step['step_id']}"
    at_fault = forms.inline_errors((listed if refused else []) + (flash.get("reasons", []) if save_refused else []),
                                   step["step_id"])
    acted = inputs_at_fault(flash, STEP_ACTION_INPUTS.get(str(flash.get("command")), {}))
    members = [u for u in await store.all_users(pool(request)) if "administrator" not in u["roles"]]
    # §9: people by name, those whose account has since been disabled too (they did what the history says)
    names = {u["user_id"]: u["display_name"] for u in await store.every_user(pool(request))}
    teams = sorted({t for u in members for t in u["team_ids"]})
    # R-RQ5: a REQUIRED sign-off request goes only to someone whose role can sign the step
    signers = [u for u in members if set(u["roles"]) & set(step.get("authorisers", []))]
    my_request_ids = {q["request_id"] for q in step.get("sent_requests", [])
                      if q["state"] == "open" and _sent_to(q, user)}
    logging_only = logs_only(step, user)
    answering = answers_only(step, user)
    step_types = await r.workflow.step_types()
    pickers = packs.next_action_pickers(step, step_types, members)
    teams_of_pack = packs.pack_teams(step_types, step["step_type"], step["pack_version"])
    return await render(
        request, "step.html", user, step=step, person=record or {}, title=step["step_type"],
        open_for_recording=step["state"] in WORKING, blockers=listed, refused=refused,
        field_errors=at_fault | acted["field_errors"],
        next_errors=inputs_at_fault(flash if next_refused else None, NEXT_ACTION_INPUTS)["field_errors"],
        next_inputs=NEXT_ACTION_INPUTS,
        warnings=(blockers or {}).get("warnings", []), can_finish=(blockers or {}).get("can_finish"),
        link_for=lambda reason: acted["link_for"](reason) or forms.link_for(reason, step["step_id"]),
        sections=forms.all_sections(step), can_save=forms.may_save(step),
        members=members, signers=signers, assignable=_assignable(members, teams_of_pack), teams=teams,
        assign_teams=sorted(teams_of_pack or teams, key=team_name),
        pickers=pickers, na_teams=sorted({t for p in pickers.values() for t in p["teams"]}, key=team_name),
        request_teams=_request_teams(step, teams_of_pack or set(teams)),
        next_refused=next_refused, chosen=flash.get("chosen") or {} if next_refused else {},
        my_request_ids=my_request_ids, offer=finish_offer(step, user, my_request_ids),
        rendered=forms.rendered(step, user.roles, logging_only, user.team_ids, answering),
        logging_only=logging_only, answering_only=answering,
        names=names, history=history_rows(step, names),
        just_saved=flash.get("kind") == "ok" and flash.get("scope") == f"save:{step['step_id']}")


# §4: the Finish section's forms' inputs, by the command refused and the field it names
STEP_ACTION_INPUTS = {"step.authorise": {"note": "auth-note"}, "step.return": {"note": "return-note"},
                      "step.cancel": {"reason": "cancel-reason"}}
# §4: the next action dialog's inputs, by the field a refusal names (R-NA1..R-NA7)
NEXT_ACTION_INPUTS = {"action": "na-action", "assignee": "na-assignee", "send_immediately": "na-send",
                      "scheduled_date": "na-date", "reason": "na-reason", "priority": "na-priority", "note": "na-note"}


def history_rows(step: Mapping[str, Any], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """§9: the step's own History as the person's chronology says it: who by name, what in words (fields by their
    labels, a worker or team it went to by name)."""
    labels = chronology.field_labels(step)
    return [{**h, "who": who_did(h.get("actor"), names),
             "words": chronology.describe_step_event(step["step_type"], str(h.get("what", "")),
                                                     h.get("details") or {}, labels, names)}
            for h in step.get("history") or []]


@dataclass(frozen=True)
class FinishOffer:
    """Issue #22 §9: what the Finish section offers this worker — only what they can do (R-RQ4, R-RQ7).

    `finish`: the Finish button (with what still stops it); `sign_off`: Authorise and finish, and Return, for
    the signer a REQUIRED request waits with; `prepare`: a two-part step's worker, before sending it for
    sign-off (what still needs doing, no Finish: a signer finishes it); `sent`: sent for sign-off, nothing to
    press."""

    kind: str
    signers: str = ""  # the roles that sign the step off, as people say them
    sent_to: dict[str, Any] | None = None


def finish_offer(step: dict[str, Any], user: User, my_request_ids: set[str]) -> FinishOffer:
    authorisers = step.get("authorisers") or []
    signers = " or ".join(ROLE_NAMES.get(r, r) for r in authorisers)
    open_required = [q for q in step.get("sent_requests", []) if q["required"] and q["state"] == "open"
                     and q["kind"] == "request"]
    if set(user.roles) & set(authorisers) and any(q["request_id"] in my_request_ids for q in open_required):
        return FinishOffer("sign_off", signers)
    two_part = bool(authorisers) and any(q["required"] and q["kind"] == "request" for q in step["requests"])
    if not two_part or set(user.roles) & set(authorisers):
        return FinishOffer("finish", signers)
    return FinishOffer("sent", signers, open_required[0]["to"]) if open_required else FinishOffer("prepare", signers)


def _request_teams(step: dict[str, Any], teams_of_pack: set[str]) -> list[str]:
    """§9: the teams a request of the step may go to — its pack's, and any team a request goes to by default."""
    defaults = {q["default_to"]["id"] for q in step["requests"] if (q.get("default_to") or {}).get("kind") == "team"}
    return sorted(teams_of_pack | defaults, key=team_name)


def _assignable(members: list[Any], teams_of_pack: set[str]) -> list[Any]:
    """Issue #22 §9: whom the step may be assigned to — the workers of the teams that work steps of its pack (the
    desk's every worker when the pack names none), by name."""
    workers = [u for u in members if set(u["team_ids"]) & teams_of_pack] or members
    return sorted(workers, key=lambda u: u["display_name"])


def works_on(step: dict[str, Any], user: User) -> bool:
    """The step's assignee (or a member of its team) or one of its authorisers."""
    return access.step_is_mine(step, user.user_id, user.team_ids) or bool(
        set(user.roles) & set(step.get("authorisers", [])))


def logs_only(step: dict[str, Any], user: User) -> bool:
    """R-W13: a worker involved with the person whose step this is not (they opened it on their grounds) adds to
    its activity logs and does nothing else on it; the step's assignee and its authorisers do the rest."""
    return not works_on(step, user) and bool(forms.activity_logs(step))


def answers_only(step: dict[str, Any], user: User) -> bool:
    """R-C5: whose step this is not, but to whom (or to whose team) a request answered in one of its sections went
    (workflow's `access.sent_to_answer`): they complete that section and finish, nothing else."""
    answered = {s["answered_by"]["request"] for s, _ in forms.all_sections(step) if s.get("answered_by")}
    return not works_on(step, user) and any(
        q["name"] in answered and q["state"] in ("open", "completed") and _sent_to(q, user)
        for q in step.get("sent_requests", []))


def _sent_to(request: dict[str, Any], user: User) -> bool:
    """Whether a request the step sent went to this user, or to one of their teams."""
    to = request["to"]
    return (to["kind"] == "worker" and to["id"] == user.user_id) or (
        to["kind"] == "team" and to["id"] in user.team_ids)


# --- what the step page's forms post: one function per action ------------------------------------


@dataclass(frozen=True)
class StepPost:
    """A form posted from a step page: the request, its signed-in user, the checked form and the step."""

    request: Request
    user: User
    form: FormData
    step: dict[str, Any]

    @property
    def step_id(self) -> str:
        return self.step["step_id"]

    async def send(self, type_: str, **arguments: Any) -> Outcome:
        """A command about the step, keyed by its person."""
        return await send(self.request, self.user, type_, key=self.step["person_id"], **arguments)

    async def report(self, outcome: Outcome, done: str, *, scope: str = "", **extra: Any) -> None:
        await report(self.request, outcome, done, scope=scope, **extra)

    def value(self, name: str) -> str | None:
        return form_value(self.form, name)


async def _start(post: StepPost) -> None:
    outcome = await post.send("step.start", step_id=post.step_id)
    await post.report(outcome, "Started: the step is in your incomplete work.")


async def _save(post: StepPost) -> None:
    sid = post.step_id
    parsed = forms.parse_save(post.step, post.form, post.user.roles, logs_only(post.step, post.user),
                              post.user.team_ids, answers_only(post.step, post.user))
    if parsed.problems:
        await set_flash(post.request, {"kind": "error", "message": "Not saved:", "reasons": parsed.problems,
                                       "scope": f"save:{sid}"})
        return
    if not parsed.values and parsed.completed_sections is None:
        await set_flash(post.request, {"kind": "ok", "message": "Nothing had changed.", "scope": f"save:{sid}"})
        return
    given = str(post.form.get("expected_version", ""))
    outcome = await post.send("step.save", step_id=sid, values=parsed.values,
                              completed_sections=parsed.completed_sections,
                              expected_version=int(given) if given.isdigit() else None)
    await post.report(outcome, "Saved.", scope=f"save:{sid}")


async def _refresh(post: StepPost) -> None:
    outcome = await post.send("step.refresh_prepopulated", step_id=post.step_id)
    await post.report(outcome, "Refreshed from the person record.")


async def _add_form(post: StepPost) -> None:
    outcome = await post.send("step.add_form", step_id=post.step_id, form=post.value("form"))
    await post.report(outcome, f"Added {post.form.get('form')}.")


NEXT_ACTION_FIELDS = ("action", "assignee_kind", "assignee_worker", "assignee_team", "send_immediately",
                      "scheduled_date", "reason", "priority", "note")


async def _add_next_action(post: StepPost) -> None:
    kind = post.value("assignee_kind")
    outcome = await post.send(
        "step.add_next_action", step_id=post.step_id, action=post.value("action"),
        assignee=target_of(kind, post.value(f"assignee_{kind}") if kind else None),
        send_immediately=post.form.get("send_immediately") == "true", scheduled_date=post.value("scheduled_date"),
        reason=post.value("reason"), note=post.value("note"), priority=post.value("priority") or "normal")
    created = outcome.of("step.created")
    # §9: refused, the dialog opens again with what was chosen and every reason
    chosen = {name: post.value(name) for name in NEXT_ACTION_FIELDS}
    await post.report(outcome, f"Next action {post.form.get('action')} added" + (
        f"; {created['step_type']} was sent at once." if created else "."), scope=f"next:{post.step_id}",
        chosen=chosen)


async def _remove_next_action(post: StepPost) -> None:
    outcome = await post.send("step.remove_next_action", step_id=post.step_id,
                              next_action_id=post.value("next_action_id"))
    await post.report(outcome, "Next action removed.")


async def _send_request(post: StepPost) -> None:
    spec = next((q for q in post.step["requests"] if q["name"] == post.form.get("name")), None)
    kind = "step.send_notification" if spec and spec["kind"] == "notification" else "step.send_request"
    to_kind = post.value("to_kind")
    outcome = await post.send(kind, step_id=post.step_id, name=post.value("name"),
                              to=target_of(to_kind, post.value(f"to_{to_kind}") if to_kind else None),
                              note=post.value("note"))
    await post.report(outcome, f"Sent {post.form.get('name')}.")


async def _complete_request(post: StepPost) -> None:
    outcome = await post.send("request.complete", request_id=post.value("request_id"), note=post.value("note"))
    await post.report(outcome, "Request completed.")


async def _finish(post: StepPost, *, authorising: bool = False) -> None:
    # R-RQ4: authorising completes the REQUIRED requests sent to the authoriser in the same command
    outcome = await post.send("step.authorise" if authorising else "step.finish", step_id=post.step_id)
    made = [e.get("data", {}) for e in outcome.events if e.get("type") == "step.created"]
    done_text = "Authorised and finished." if authorising else "Finished."
    if made:
        done_text += " Created: " + ", ".join(m.get("step_type", "") for m in made) + "."
    await post.report(outcome, done_text, scope=f"finish:{post.step_id}")


async def _authorise(post: StepPost) -> None:
    await _finish(post, authorising=True)


async def _return(post: StepPost) -> None:
    outcome = await post.send("step.return", step_id=post.step_id, note=post.value("note"))
    await post.report(outcome, "Returned to the worker with your note.", row=post.step_id)


async def _assign(post: StepPost) -> None:
    to_kind = post.value("to_kind") or "worker"
    outcome = await post.send("step.assign", step_id=post.step_id, to=target_of(to_kind, post.value(f"to_{to_kind}")))
    await post.report(outcome, "Assigned.")


async def _cancel(post: StepPost) -> None:
    outcome = await post.send("step.cancel", step_id=post.step_id, reason=post.value("reason"))
    await post.report(outcome, "Cancelled.")


STEP_ACTIONS: dict[str, Callable[[StepPost], Awaitable[None]]] = {
    "start": _start, "save": _save, "refresh": _refresh, "add_form": _add_form, "next_action": _add_next_action,
    "remove_next_action": _remove_next_action, "send_request": _send_request, "complete_request": _complete_request,
    "finish": _finish, "authorise": _authorise, "return": _return, "assign": _assign, "cancel": _cancel,
}


@router.post("/steps/{step_id}/{action}")
async def step_action(request: Request, step_id: str, action: str) -> Response:
    """Whatever the action did or refused, the browser goes back to the page it came from with the outcome."""
    handle = STEP_ACTIONS.get(action)
    if handle is None:
        raise HTTPException(404, "no such action")
    user = await current_user(request)
    form = await checked_form(request, user)
    step = await _step(request, user, step_id)
    here = local_path(str(form.get("next") or f"/steps/{step['step_id']}"))
    await handle(StepPost(request, user, form, step))
    return back(here)
