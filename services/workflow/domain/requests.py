"""Requests and notifications sent from a step, and completing a request (R-RQ1..R-RQ7)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from pydantic import BaseModel

from services.workflow.domain.access import is_recipient, may_act_for, not_assignee, state_problems
from services.workflow.domain.model import (
    WORKING_STATES,
    Context,
    Decision,
    Request,
    Step,
    bump,
    event_base,
    history_entry,
)
from services.workflow.pack import StepDefinition
from shared.actor import held_roles, roles_in_words
from shared.commands import workflow as cmd
from shared.commands.base import Reason, RuleBroken, check, reason
from shared.events.workflow import Assignee, NotificationSent, RequestCompleted, RequestRaised


def send_request(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
    command: cmd.SendRequest | cmd.SendNotification, kind: Literal["request", "notification"],
) -> Decision:
    """R-RQ1: a request or notification of the step type to a team or worker, with a note."""
    reasons = state_problems(step, WORKING_STATES, f"send a {kind} from")
    try:
        spec = defn.request(command.name)
    except KeyError:
        reasons.append(reason("unknown_request", f"{step.step_type} has no {kind} {command.name!r}",
                              field="name"))
        raise RuleBroken(reasons) from None
    if not may_act_for(step, defn, ctx.actor, spec.sent_by_roles):
        reasons.append(not_assignee(step))  # R-W10: a contributor sends the requests named for their role
    if spec.sent_by_roles and not held_roles(ctx.actor.roles) & set(spec.sent_by_roles):
        reasons.append(reason("role", f"only a {roles_in_words(spec.sent_by_roles)} sends {spec.name!r} (R-W10)",
                              field="name"))
    if spec.kind != kind:
        reasons.append(reason("wrong_kind", f"{command.name!r} is a {spec.kind}, not a {kind}", field="name"))
    to = command.to
    if to is None and spec.default_to is not None and spec.default_to.kind in ("worker", "team"):
        to = cmd.Target(kind=spec.default_to.kind, id=spec.default_to.id)  # type: ignore[arg-type]
    if to is None:
        reasons.append(reason("recipient_required", f"say which team or worker {command.name!r} goes to",
                              field="to"))
    if to is not None and to.kind == "worker" and to.id in ctx.disabled_workers:
        reasons.append(reason("account_disabled", f"worker {to.id}'s account is disabled: they would never see"
                              f" this {kind} (R-RQ10)", field="to"))
    elif to is not None and kind == "request" and spec.required:
        reasons += signer_problems(ctx, step, defn, to)
    if kind == "request" and any(r.name == spec.name and r.state == "open" for r in requests):
        reasons.append(reason("already_open", f"{spec.name!r} was sent and is not completed yet",
                              field="name"))
    check(reasons)
    assert to is not None
    request = Request(
        request_id=next(ctx.ids), step_id=step.step_id, person_id=step.person_id, name=spec.name,
        kind=kind, required=spec.required, to_kind=to.kind, to_id=to.id, note=command.note,
        state="open" if kind == "request" else "sent", sent_by=ctx.actor.worker_id, sent_at=ctx.now,
    )
    state = step.state
    if kind == "request" and spec.required and defn.authorisers:
        state = "awaiting_authorisation"  # R-RQ4/R-RQ7: the worker's part is done
    new = bump(step, ctx, state=state)
    to_assignee = Assignee(kind=to.kind, id=to.id)
    event: BaseModel
    if kind == "request":
        event = RequestRaised(**event_base(new, ctx), request_id=request.request_id, step_type=step.step_type,
                              name=spec.name, required=spec.required, to=to_assignee, note=command.note,
                              step_state=state)
    else:
        event = NotificationSent(**event_base(new, ctx), request_id=request.request_id,
                                 step_type=step.step_type, name=spec.name, to=to_assignee,
                                 note=command.note)
    return Decision(events=(event,), step=new, requests=(request,), history=(history_entry(
        new, ctx, f"{kind}.sent", request_id=request.request_id, name=spec.name,
        to=to_assignee.model_dump()),))


def complete_request(
    ctx: Context, step: Step, defn: StepDefinition, request: Request, note: str | None,
) -> Decision:
    """The recipient completes a request; the sending step may then finish (R-RQ2)."""
    reasons: list[Reason] = []
    if request.required and request.kind == "request" and defn.authorisers and not defn.self_authorise \
            and not ctx.actor.roles & set(defn.authorisers):
        reasons.append(reason("cannot_sign", f"{request.name!r} asks for the sign-off of a"
                              f" {roles_in_words(defn.authorisers)}: return the step so that its worker sends it"
                              " to one (R-RQ5)", request_id=request.request_id))
    if request.kind != "request":
        reasons.append(reason("not_a_request", "a notification needs no completion", field="request_id"))
    elif request.state != "open":
        reasons.append(reason("not_open", f"the request is {request.state}", field="request_id",
                              request_id=request.request_id))
    if not is_recipient(request, ctx.actor):
        reasons.append(reason("not_recipient", f"the request was sent to {request.to_kind}"
                              f" {request.to_id!r}", request_id=request.request_id))
    check(reasons)
    done = replace(request, state="completed", completed_by=ctx.actor.worker_id, completed_at=ctx.now,
                   completion_note=note)
    new = bump(step, ctx)
    return Decision(
        events=(RequestCompleted(**event_base(new, ctx), request_id=request.request_id, name=request.name,
                                 note=note),),
        step=new, requests=(done,),
        history=(history_entry(new, ctx, "request.completed", request_id=request.request_id,
                          name=request.name),))


def signer_problems(ctx: Context, step: Step, defn: StepDefinition, to: cmd.Target) -> list[Reason]:
    """R-RQ9: a sign-off request goes to someone who can sign the step (R-RQ5): a worker whose role may
    authorise it, or a team with such an enabled member, as the staff directory lists them (or, not listed yet,
    as workflow last saw them act); one neither listed nor seen it cannot judge."""
    signing = set(defn.authorisers)
    if not signing or defn.self_authorise:
        return []
    known = {w: actor for w, actor in ctx.known_workers.items() if w not in ctx.disabled_workers}
    if to.kind == "worker":
        worker = known.get(to.id)
        if worker is None or worker.roles & signing:
            return []
        who = f"worker {to.id} cannot"
    else:
        members = [w for w in known.values() if to.id in w.team_ids]
        if not members or any(w.roles & signing for w in members):
            return []
        who = f"nobody in team {to.id} can"
    signers = sorted(w.worker_id for w in known.values() if w.roles & signing and w.team_ids & ctx.actor.team_ids)
    named = f" ({', '.join(signers[:5])} in your teams)" if signers else ""
    return [reason("cannot_sign", f"{who} sign a {step.step_type}: only a"
                   f" {roles_in_words(defn.authorisers)} may (R-RQ5); send it to one of"
                   f" them{named} (R-RQ9)", field="to")]
