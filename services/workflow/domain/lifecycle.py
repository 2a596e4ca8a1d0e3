"""The step lifecycle (R-W2..R-W9): start, assign, save, refresh prepopulated fields, add a form."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from services.workflow.domain.access import (
    answer_fields,
    answers,
    finisher_problems,
    future_work_to_worker,
    handed_to_disabled,
    is_assignee,
    may_contribute,
    may_hand_on,
    may_log,
    may_work,
    not_assignee,
    state_problems,
)
from services.workflow.domain.forms import (
    fill_system_columns,
    is_empty,
    log_problems,
    prepopulated,
    role_refusal,
    save_problems,
)
from services.workflow.domain.generated_values import budget_problems, budget_values, system_values, with_system
from services.workflow.domain.model import (
    OPEN_STATES,
    WORKING_STATES,
    Context,
    Decision,
    Request,
    Step,
    Timer,
    bump,
    event_base,
    history_entry,
)
from services.workflow.domain.timers import FUTURE_WORK_TIMER, renewal_timer, timer_key
from services.workflow.pack import Field, StepDefinition
from shared.actor import Actor
from shared.commands import workflow as cmd
from shared.commands.base import Reason, check, reason
from shared.events.workflow import StepAssigned, StepFormAdded, StepPrepopulatedRefreshed, StepSaved, StepStarted


def start(ctx: Context, step: Step, defn: StepDefinition) -> Decision:
    """R-W2: incoming → incomplete; a team member who starts a team step takes it."""
    reasons: list[Reason] = []
    if step.state not in ("incoming", "future"):
        reasons.append(reason("invalid_state", f"only incoming or future work can be started; this step is"
                              f" {step.state}"))
    if not is_assignee(step, ctx.actor):
        reasons.append(not_assignee(step))
    reasons += finisher_problems(defn, ctx.actor)  # R-W11: a manager's step is opened by a manager
    check(reasons)
    new = with_system(ctx, bump(step, ctx, state="incomplete", assignee_kind="worker",
                                  assignee_id=ctx.actor.worker_id), defn)
    details: dict[str, Any] = {"assignee": new.assignee.model_dump()}
    if step.assignee_kind == "team":
        details["previous"] = step.assignee.model_dump()  # R-W14: taken from the team, still its work
    timers: list[Timer] = []
    cancelled: tuple[str, ...] = ()
    if step.state == "future":
        # brought forward for earlier involvement (seed 001 §2.2): its due-date timer is withdrawn
        details["brought_forward_from"] = step.due_date.isoformat() if step.due_date else None
        cancelled = (timer_key(FUTURE_WORK_TIMER, step.step_id),)
        if defn.renewal_days:
            timers.append(renewal_timer(new, ctx.today, ctx.today, defn.renewal_days))
    return Decision(events=(StepStarted(**event_base(new, ctx), assignee=new.assignee),), step=new,
                    history=(history_entry(new, ctx, "step.started", **details),), timers=tuple(timers),
                    cancelled_timers=cancelled)


def assign(ctx: Context, step: Step, defn: StepDefinition, to: cmd.Target) -> Decision:
    """R-W3: to a worker or a team, or on from a team to a worker."""
    reasons = state_problems(step, OPEN_STATES | {"future"}, "assign")
    if not may_hand_on(step, defn, ctx.actor):
        reasons.append(reason("role", "only the assignee, a member of the assigned team or a manager"
                              " may assign this step (R-W3)" if not defn.is_future_work else
                              "only a manager assigns Future Work (R-K13)"))
    reasons += future_work_to_worker(defn, to.kind)
    reasons += handed_to_disabled(ctx, to.kind, to.id, field="to", what="this step")
    check(reasons)
    new = with_system(ctx, bump(step, ctx, assignee_kind=to.kind, assignee_id=to.id), defn)
    event = StepAssigned(**event_base(new, ctx), previous=step.assignee, assignee=new.assignee, state=new.state)
    return Decision(events=(event,), step=new, history=(history_entry(
        new, ctx, "step.assigned", previous=step.assignee.model_dump(), assignee=new.assignee.model_dump()),))


def save(ctx: Context, step: Step, defn: StepDefinition, command: cmd.SaveStep,
         requests: Sequence[Request] = ()) -> Decision:
    """R-W4: partial saves at any time; "section completed" is a marker only."""
    reasons = state_problems(step, WORKING_STATES, "save")
    writer = writer_of(step, defn, requests, ctx.involved, ctx.actor, command.values)
    reasons += writer_problems(step, defn, writer, command.values)
    reasons += save_problems(defn, step, command.values, ctx.actor, contributor=writer == "contributor")
    reasons += log_problems(defn, step, command.values, ctx.actor)
    at_fault = {r.field for r in reasons}
    reasons += [r for r in budget_problems(defn, command.values, ctx.packs.rates) if r.field not in at_fault]
    numbers = {s.number for s in defn.form_sections}
    for number in command.completed_sections or ():
        if number not in numbers:
            reasons.append(reason("unknown_section", f"{step.step_type} has no section {number}",
                                  section=number))
    check(reasons)
    values = {**step.values, **fill_system_columns(defn, dict(command.values), ctx.actor)}
    values.update(budget_values(defn, values, ctx.packs.rates))  # R-K10, R-F5
    completed = step.completed_sections
    if command.completed_sections is not None:
        completed = tuple(sorted(set(command.completed_sections)))
    new = with_system(ctx, bump(step, ctx, values=values, completed_sections=completed), defn)
    changes = value_changes(step.values, new.values)
    event = StepSaved(**event_base(new, ctx), fields=sorted(command.values), completed_sections=list(completed),
                      changed_fields=[c["field"] for c in changes])
    return Decision(events=(event,), step=new, history=(history_entry(
        new, ctx, "step.saved", fields=sorted(command.values), completed_sections=list(completed),
        changes=changes),))


def writer_of(step: Step, defn: StepDefinition, requests: Sequence[Request], involved: frozenset[str], actor: Actor,
              keys: Collection[str]) -> str | None:
    """As whom the actor writes these fields of the step: its `worker` (assignee or authoriser), a `contributor`
    (R-W10), an involved worker adding to its activity logs (`logger`, R-W13), or whom a request answered in one of
    its sections went to (`answerer`, R-C5); None: none of them."""
    if may_work(step, defn, actor):
        return "worker"
    if may_contribute(defn, actor):
        return "contributor"
    if may_log(defn, keys, involved, actor):
        return "logger"
    return "answerer" if answers(defn, requests, actor) else None


def writer_problems(step: Step, defn: StepDefinition, writer: str | None, keys: Collection[str]) -> list[Reason]:
    """R-C5: the team a request went to completes the section that answers it, nothing else, and nobody else
    completes that section; nobody but those of `writer_of` writes on the step."""
    if writer is None:
        return [not_assignee(step)]
    if writer != "answerer":
        return [reason("answered_by_request", f"{key!r} is completed by whom the step's request goes to (R-C5)",
                       field=key) for key in sorted(set(keys) & answer_fields(defn))]
    return [reason("not_answered_here", f"{key!r} is completed by the step's worker: you complete the section that"
                   " answers the request sent to you (R-C5)", field=key)
            for key in sorted(set(keys) - answer_fields(defn))]


def writable_sections(step: Step, defn: StepDefinition, requests: Sequence[Request], involved: frozenset[str],
                      actor: Actor) -> dict[str, bool]:
    """Issue #22 §9: for each section of the step's form and of its added forms (by `section_key`), whether the
    actor may write one of its fields now, by the save's own rules of who writes what (R-W6, R-W10, R-W13, R-C5)."""
    sections = [(None, s) for s in defn.form_sections] + [
        (form.name, s) for form in defn.optional_forms if form.name in step.forms for s in form.sections]
    return {section_key(form, s.number): step.state in WORKING_STATES
            and any(_may_write(step, defn, requests, involved, actor, f) for f in s.fields) for form, s in sections}


def section_key(form: str | None, number: int) -> str:
    """A section of the step's own form by its number; of an added form by `form name#number`."""
    return str(number) if form is None else f"{form}#{number}"


def _may_write(step: Step, defn: StepDefinition, requests: Sequence[Request], involved: frozenset[str], actor: Actor,
               f: Field) -> bool:
    writer = writer_of(step, defn, requests, involved, actor, {f.key})
    return not writer_problems(step, defn, writer, {f.key}) and role_refusal(
        defn, f, actor, writer == "contributor", {"field": f.key}) is None


def value_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """#20: each field whose value a save changed, from what to what (for the step's history only).

    The values are personal data: they go to the step's own record, never to logs or events.
    """
    return [{"field": key, "from": before.get(key), "to": after.get(key)}
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def refresh_prepopulated(ctx: Context, step: Step, defn: StepDefinition) -> Decision:
    """R-W5: blue cog fields copied again from the record; yellow ones only where still empty."""
    reasons = state_problems(step, OPEN_STATES, "refresh")
    if not may_work(step, defn, ctx.actor):
        reasons.append(not_assignee(step))
    if ctx.person is None:
        reasons.append(reason("person_record_unavailable", "the person record cannot be read now; try again"))
    check(reasons)
    assert ctx.person is not None
    fresh = prepopulated(defn, ctx.person, cogs=frozenset({"blue"}))
    for key, value in prepopulated(defn, ctx.person, cogs=frozenset({"yellow"})).items():
        if is_empty(step.values.get(key)):
            fresh[key] = value
    fresh.update(system_values(ctx, step, defn))
    changed = sorted(k for k, v in fresh.items() if step.values.get(k) != v)
    new = bump(step, ctx, values={**step.values, **fresh})
    return Decision(events=(StepPrepopulatedRefreshed(**event_base(new, ctx), fields=changed),), step=new,
                    history=(history_entry(new, ctx, "step.prepopulated_refreshed", fields=changed),))


def add_form(ctx: Context, step: Step, defn: StepDefinition, name: str) -> Decision:
    """R-W9: an optional form or letter of the step type."""
    reasons = state_problems(step, WORKING_STATES, "add a form to")
    if not may_work(step, defn, ctx.actor):
        reasons.append(not_assignee(step))
    try:
        form = defn.form(name)
    except KeyError:
        reasons.append(reason("unknown_form", f"{step.step_type} has no optional form {name!r}", field="form"))
    else:
        if name in step.forms:
            reasons.append(reason("already_added", f"{name!r} is already on the step", field="form"))
    check(reasons)
    new = with_system(ctx, bump(step, ctx, forms=(*step.forms, name)), defn)
    return Decision(events=(StepFormAdded(**event_base(new, ctx), form=name, kind=form.kind),), step=new,
                    history=(history_entry(new, ctx, "step.form_added", form=name),))
