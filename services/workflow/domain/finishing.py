"""Finishing, authorising, returning and cancelling a step; a recorded death (R-K8).

What stops a step finishing (R-W4, R-NA1, R-RQ2, R-RQ3, R-RQ7, R-K1, R-K2, R-K5, R-K9), what only warns
(R-K3), and what finishing does: next actions create their steps (R-NA3), a case closure closes the case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from services.workflow.domain.access import (
    answers,
    authorise_problems,
    finisher_problems,
    is_recipient,
    may_work,
    not_assignee,
    sent_to_answer,
    state_problems,
    two_part,
)
from services.workflow.domain.carers import carers_blockers
from services.workflow.domain.closure import CLOSURE_GUARD, closure_blockers, closure_warnings, told_of_closure
from services.workflow.domain.forms import form_complete, missing_fields
from services.workflow.domain.future_work import future_work_warnings, is_future_work, one_future_work, open_future_work
from services.workflow.domain.generated_values import with_system
from services.workflow.domain.model import (
    OPEN_STATES,
    WORKING_STATES,
    Context,
    Decision,
    History,
    NextAction,
    Request,
    Step,
    Timer,
    bump,
    event_base,
    history_entry,
)
from services.workflow.domain.monitoring_form import review_monitoring_warnings
from services.workflow.domain.new_steps import creation_events
from services.workflow.domain.next_actions import assignee_of, create_from_action
from services.workflow.domain.reviews import twr_limit, twr_limited
from services.workflow.domain.timers import step_timer_keys, timers_of_new_step
from services.workflow.pack import StepDefinition
from shared.actor import MANAGER_ROLES, roles_in_words
from shared.commands import workflow as cmd
from shared.commands.base import Reason, RuleBroken, check, reason
from shared.events.base import Event
from shared.events.workflow import (
    Assignee,
    CaseClosed,
    CaseClosureWithdrawn,
    FinishedAction,
    OpenStepListed,
    PersonDeathRecorded,
    RequestCompleted,
    StepCancelled,
    StepFinished,
    StepReturned,
    StepWarning,
)


def finish_blockers(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
    *, authorising: bool = False, check_actor: bool = True,
) -> list[Reason]:
    """Every reason the step cannot finish now (R-W4, R-NA1, R-RQ2, R-RQ3, R-RQ7, R-K1)."""
    reasons = state_problems(step, WORKING_STATES, "finish")
    if check_actor:
        if authorising:
            reasons += authorise_problems(ctx, step, defn, requests)
        elif two_part(defn) and not ctx.actor.roles & set(defn.authorisers):
            reasons.append(reason("role", f"a {roles_in_words(defn.authorisers)} finishes a {step.step_type}:"
                                  " send the required request and close the step (R-RQ7)"))
        elif two_part(defn):  # the authoriser signs it off by finishing: never their own work (R-RQ4)
            reasons += authorise_problems(ctx, step, defn, requests)
        elif not (may_work(step, defn, ctx.actor) or answers(defn, requests, ctx.actor)):
            reasons.append(not_assignee(step))
        reasons += finisher_problems(defn, ctx.actor)
    missing = missing_fields(defn, step)
    reasons += missing
    if not step.next_actions:
        reasons.append(reason("no_next_action", "add at least one next action before finishing (R-NA1)"))
    for added in step.next_actions:
        spec = next((a for a in defn.next_actions if a.action == added.action), None)
        if spec and spec.requires_form and not form_complete(defn, step, spec.requires_form):
            reasons.append(reason("form_required", f"{added.action!r} needs the form"
                                  f" {spec.requires_form!r} completed (R-W9)"))
    finishing_answers = {r.request_id for r in answered_requests(ctx, defn, requests)} if check_actor else set()
    for request in requests:  # R-C5: the recipient answering a request completes it by finishing
        if request.kind == "request" and request.state == "open" and request.request_id not in finishing_answers:
            reasons.append(reason("open_request", f"the request {request.name!r} sent to"
                                  f" {request.to_kind} {request.to_id!r} is not completed (R-RQ2)",
                                  request_id=request.request_id))
    for wanted in defn.requests:
        sent = {r.state for r in requests if r.name == wanted.name}
        if wanted.required_for(step.values) and not sent & {"completed", "open"}:  # an open one: reported above
            reasons.append(reason("required_request", f"the REQUIRED request {wanted.name!r} must be"
                                  " sent and completed (R-RQ3)"))
    reasons += closure_blockers(ctx, step, defn)
    pending = [a for a in step.next_actions if not a.nfa and a.created_step_id is None]
    if any(is_future_work(ctx.packs, a.target_step_type) for a in pending):
        existing = open_future_work(ctx, excluding=step.step_id)
        if existing is not None:  # created since the action was added (R-K2)
            reasons.append(one_future_work(existing))
    earlier = 0
    for added in pending:  # R-K5: finished since the action was added
        if twr_limited(ctx.packs, added.target_step_type):
            reasons += twr_limit(ctx, added.target_step_type, pending=earlier)
            earlier += 1
    reported = {r.field for r in missing}
    reasons += [r for r in carers_blockers(ctx, step, defn, requests) if r.field not in reported]
    return reasons


def finish_warnings(ctx: Context, step: Step, defn: StepDefinition) -> list[Reason]:
    """What finishing now would warn about, without stopping it (R-K3, R-K12, R-K1 other teams' involvement)."""
    continuing = any(not a.nfa for a in step.next_actions)
    return (future_work_warnings(ctx, step, defn, continuing=continuing) + review_monitoring_warnings(ctx, step, defn)
            + closure_warnings(ctx, step, defn))


def finish(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
    *, authorising: bool = False,
) -> Decision:
    """R-NA3: finished and locked; each action not yet sent creates its step; a closure closes."""
    signed = signed_requests(ctx, defn, requests) if authorising else answered_requests(ctx, defn, requests)
    requests = [next((done for done in signed if done.request_id == r.request_id), r) for r in requests]
    check(finish_blockers(ctx, step, defn, requests, authorising=authorising))
    warnings = finish_warnings(ctx, step, defn)
    created: list[Step] = []
    history: list[History] = []
    actions: list[NextAction] = []
    timers: list[Timer] = []
    for added in step.next_actions:
        if not added.nfa and added.created_step_id is None:
            target, prepop = create_from_action(ctx, step, added, "R-NA3 next action on finish")
            created.append(target)
            timers += timers_of_new_step(ctx, target)
            history += [History(target.step_id, ctx.now, ctx.actor.worker_id, "step.created",
                                {"state": target.state, "provenance": target.provenance}), prepop]
            added = replace(added, created_step_id=target.step_id)
        actions.append(added)
    new = with_system(ctx, bump(step, ctx, state="finished", next_actions=tuple(actions)), defn)
    what = "step.authorised_and_finished" if authorising else "step.finished"
    history.insert(0, history_entry(new, ctx, what, next_actions=[a.action for a in actions],
                               **({"warnings": [w.code for w in warnings]} if warnings else {})))
    warned = sorted({ctx.actor.worker_id, *([step.assignee_id] if step.assignee_kind == "worker" else [])}
                    ) if warnings else []
    events: list[Event] = [StepFinished(
        **event_base(new, ctx), workflow_id=step.workflow_id, step_type=step.step_type, authorised=authorising,
        next_actions=[FinishedAction(
            next_action_id=a.next_action_id, action=a.action, nfa=a.nfa,
            target_step_type=a.target_step_type,
            assignee=assignee_of(a) if a.assignee_kind != "self" else Assignee(kind="worker", id=a.added_by),
            reason=a.reason, created_step_id=a.created_step_id, sent_immediately=a.send_immediately,
        ) for a in actions],
        warnings=[StepWarning(code=w.code, message=w.message, step_id=w.step_id) for w in warnings],
        warned_worker_ids=warned,
        told_of_closure=[Assignee(kind=kind, id=who) for kind, who in told_of_closure(ctx, step, defn)],
        send_to_person=document_worker(step, requests, ctx.actor.worker_id) if defn.sent_to_person else None,
    )]
    opened = [creation_events(ctx, s) for s in created]
    created = [s for s, _, _ in opened]
    events += [e for _, made, _ in opened for e in made]
    history += [h for _, _, started in opened for h in started]
    events += [RequestCompleted(**event_base(new, ctx), request_id=r.request_id, name=r.name, note=r.completion_note)
               for r in signed]
    history += [history_entry(new, ctx, "request.completed", request_id=r.request_id, name=r.name)
                for r in signed]
    closed: tuple[str, ...] = ()
    if CLOSURE_GUARD in defn.rules and all(a.nfa for a in actions):
        closed = tuple(sorted({*ctx.case.workflow_ids, step.workflow_id}))
        events.append(CaseClosed(person_id=step.person_id, closed_by_step_id=step.step_id,
                                 actor=ctx.actor.worker_id, workflow_ids=list(closed)))
        history.append(history_entry(new, ctx, "case.closed", workflow_ids=list(closed)))
    return Decision(events=tuple(events), step=new, created=tuple(created), history=tuple(history),
                    requests=signed, closed_workflow_ids=closed, timers=tuple(timers),
                    cancelled_timers=step_timer_keys(step.step_id))


def document_worker(step: Step, requests: Sequence[Request], finisher: str) -> Assignee:
    """R-K11: who sends the signed-off document to the person — its worker; when it waits with a team at sign-off,
    the worker who first sent it for sign-off (it is their document, and a team inbox is nobody's task list);
    never sent for sign-off, the worker who last worked on it (its last change before the finish), else the
    worker finishing it."""
    if step.assignee_kind == "worker":
        return step.assignee
    sender = next((r.sent_by for r in requests if r.kind == "request" and r.required), None)
    last = step.updated_by if step.updated_by and not step.updated_by.startswith("system:") else None
    return Assignee(kind="worker", id=sender or last or finisher)


def signed_requests(ctx: Context, defn: StepDefinition, requests: Sequence[Request]) -> tuple[Request, ...]:
    """R-RQ4: authorising completes the open REQUIRED requests sent to the authoriser, in one decision."""
    if not ctx.actor.roles & set(defn.authorisers):
        return ()
    return tuple(
        replace(r, state="completed", completed_by=ctx.actor.worker_id, completed_at=ctx.now,
                completion_note="Authorised")
        for r in requests
        if r.kind == "request" and r.required and r.state == "open" and is_recipient(r, ctx.actor)
    )


def answered_requests(ctx: Context, defn: StepDefinition, requests: Sequence[Request]) -> tuple[Request, ...]:
    """R-C5: the recipient who answers a request in its section (the Adult Care (Area) team's checklist) finishes
    the step, which completes that request."""
    return tuple(
        replace(r, state="completed", completed_by=ctx.actor.worker_id, completed_at=ctx.now,
                completion_note="Answered and finished")
        for r in sent_to_answer(defn, requests, ctx.actor) if r.state == "open"
    )


def return_step(ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request], note: str) -> Decision:
    """R-RQ4: a manager returns the step with a note; its worker re-sends the required request."""
    reasons = state_problems(step, {"incomplete", "awaiting_authorisation"}, "return")
    if not ctx.actor.roles & (set(defn.authorisers) | MANAGER_ROLES):
        reasons.append(reason("role", "only a manager or an authoriser of the step may return it (R-RQ4)"))
    check(reasons)
    closed = tuple(
        replace(r, state="returned", completed_by=ctx.actor.worker_id, completed_at=ctx.now,
                completion_note=note)
        for r in requests if r.state == "open" and r.required
    )
    new = bump(step, ctx, state="returned", return_note=note)
    return Decision(events=(StepReturned(**event_base(new, ctx), note=note, assignee=new.assignee),), step=new,
                    requests=closed, history=(history_entry(new, ctx, "step.returned", note=note),))


def cancel(ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request], why: str) -> Decision:
    """R-W2: cancelled with a reason; its open requests are withdrawn."""
    reasons = state_problems(step, OPEN_STATES | {"future"}, "cancel")
    if step.state == "incoming":
        reasons = []
    if not (may_work(step, defn, ctx.actor) or ctx.actor.roles & MANAGER_ROLES):
        reasons.append(not_assignee(step))
    check(reasons)
    withdrawn = tuple(replace(r, state="cancelled") for r in requests if r.state == "open")
    new = bump(step, ctx, state="cancelled")
    events: list[Event] = [StepCancelled(**event_base(new, ctx), reason=why)]
    if CLOSURE_GUARD in defn.rules:  # R-K1: the case is not closing after all
        events.append(CaseClosureWithdrawn(person_id=step.person_id, workflow_id=step.workflow_id,
                                           step_id=step.step_id, actor=ctx.actor.worker_id, reason=why))
    return Decision(events=tuple(events), step=new, requests=withdrawn,
                    history=(history_entry(new, ctx, "step.cancelled", reason=why),),
                    cancelled_timers=step_timer_keys(step.step_id))


def record_death(ctx: Context, command: cmd.RecordDeath, steps: Sequence[Step]) -> Decision:
    """R-K8: future work closed with an NFA and a reason; steps still open listed for the manager."""
    if command.date_of_death > ctx.today:
        raise RuleBroken([reason("invalid_value", "the date of death cannot be in the future",
                                 field="date_of_death")])
    closed: list[Step] = []
    history: list[History] = []
    for s in steps:
        # waiting work, and Future Work (R-K2) that fell due or was started but is still open
        future_work = s.state in OPEN_STATES and is_future_work(ctx.packs, s.step_type, s.pack_version)
        if s.state != "future" and not future_work:
            continue
        nfa = NextAction(
            next_action_id=next(ctx.ids), action="NFA – person has died", nfa=True,
            target_step_type=None, assignee_kind="none", assignee_id=None, send_immediately=False,
            scheduled_date=None, reason=f"Person died on {command.date_of_death.isoformat()}",
            note=None, priority="normal", added_by=ctx.actor.worker_id, added_at=ctx.now,
        )
        done = bump(s, ctx, state="finished", next_actions=(nfa,))
        closed.append(done)
        history.append(history_entry(done, ctx, "step.finished", reason=nfa.reason, rule="R-K8"))
    event = PersonDeathRecorded(
        person_id=str(command.person_id), date_of_death=command.date_of_death, actor=ctx.actor.worker_id,
        closed_future_step_ids=[s.step_id for s in closed],
        open_steps=[OpenStepListed(step_id=s.step_id, step_type=s.step_type, state=s.state)
                    for s in steps if s.state in OPEN_STATES and s.step_id not in {c.step_id for c in closed}],
    )
    return Decision(events=(event,), finished_future=tuple(closed), history=tuple(history),
                    cancelled_timers=tuple(k for s in closed for k in step_timer_keys(s.step_id)))
