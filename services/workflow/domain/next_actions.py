"""Next actions (R-NA1..R-NA6): which may be added, when scheduled, and the steps they create."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from services.workflow.domain.access import handed_to_disabled, may_act_for, may_work, not_assignee, state_problems
from services.workflow.domain.closure import closure_in_progress
from services.workflow.domain.dates import annual_review_date, scheduled_window
from services.workflow.domain.forms import date_value, form_complete
from services.workflow.domain.future_work import (
    is_future_work,
    one_future_work,
    open_future_work,
    previous_future_work_due,
)
from services.workflow.domain.model import (
    WORKING_STATES,
    Context,
    Decision,
    History,
    NextAction,
    Step,
    Timer,
    bump,
    event_base,
    history_entry,
)
from services.workflow.domain.new_steps import creation_events, new_step
from services.workflow.domain.reviews import twr_limit, twr_limited
from services.workflow.domain.timers import timers_of_new_step
from services.workflow.pack import NextActionDefinition, StepDefinition
from shared.actor import held_roles, roles_in_words
from shared.commands import workflow as cmd
from shared.commands.base import Reason, RuleBroken, check, reason
from shared.events.base import Event
from shared.events.workflow import Assignee, NextActionAdded, NextActionRemoved, NextActionSent
from shared.teams import team_named


def _action_problems(
    ctx: Context, step: Step, defn: StepDefinition, action: NextActionDefinition,
    command: cmd.AddNextAction,
) -> list[Reason]:
    reasons: list[Reason] = []
    roles = held_roles(ctx.actor.roles)
    if action.added_by_roles and not roles & set(action.added_by_roles):
        reasons.append(reason("role", f"only a {roles_in_words(action.added_by_roles)} may add"
                              f" {action.action!r} (R-NA5)", field="action"))
    if action.allowed_when == "case_closure_in_progress" and not closure_in_progress(ctx, step):
        reasons.append(reason("not_allowed_in_case_state", f"{action.action!r} needs an Adult Proposed"
                              " Case Closure or Adult Case Closure in Progress in current work (R-NA6)",
                              field="action"))
    if action.allowed_when == "no_case_closure_in_progress" and closure_in_progress(ctx, step):
        reasons.append(reason("not_allowed_in_case_state", "a case closure is already in progress: use"
                              " 'Adult Case Closure Already Started (NFA)' (R-NA6)", field="action"))
    kind = action.assignee_kind
    given = command.assignee
    if kind == "none" and given is not None:
        reasons.append(reason("assignee_not_allowed", f"{action.action!r} is NFA and needs no assignee"
                              " (R-NA4)", field="assignee"))
    elif kind == "self" and given is not None and (given.kind, given.id) != ("worker", ctx.actor.worker_id):
        reasons.append(reason("assignee_kind", f"{action.action!r} is assigned to self ('Assign to me')"
                              " (R-NA5)", field="assignee"))
    elif kind in ("worker", "team") and given is not None and given.kind != kind:
        reasons.append(reason("assignee_kind", f"{action.action!r} goes to a {kind}, not a {given.kind}"
                              " (R-NA5)", field="assignee"))
    elif kind == "worker" and given is None:
        reasons.append(reason("assignee_required", f"{action.action!r} needs a worker to assign to",
                              field="assignee"))
    elif kind == "team" and given is None and _team_for(ctx, step, action) is None:
        reasons.append(reason("assignee_required", f"{action.action!r} needs a team to pass to"
                              + (f" (or the team chosen in {_label(defn, action.team_from_field)}, R-NA7)"
                                 if action.team_from_field else ""), field="assignee"))
    if given is not None:
        reasons += handed_to_disabled(ctx, given.kind, given.id, field="assignee", what=f"{action.action!r}")
    if command.send_immediately and action.send_immediately == "forbidden":
        reasons.append(reason("send_immediately_not_allowed", f"{action.action!r} cannot be sent"
                              " immediately (R-NA2)", field="send_immediately"))
    if not command.send_immediately and action.send_immediately == "required":
        reasons.append(reason("send_immediately_required", f"{action.action!r} must be sent immediately",
                              field="send_immediately"))
    if command.scheduled_date is not None:
        schedulable = action.scheduled_offset_days is not None or action.scheduled_window_days is not None
        if action.nfa or not schedulable:
            reasons.append(reason("scheduling_not_allowed", f"{action.action!r} cannot be scheduled"
                                  " (R-NA2)", field="scheduled_date"))
        elif command.send_immediately:
            reasons.append(reason("scheduling_not_allowed", "an action sent immediately cannot be"
                                  " scheduled", field="scheduled_date"))
        elif action.scheduled_window_days is not None:
            first, last = _window(ctx, step, action)
            if not first <= command.scheduled_date <= last:
                reasons.append(reason("outside_window", f"{action.action!r} is due"
                                      f" {action.scheduled_window_days[0]}–{action.scheduled_window_days[1]}"
                                      f" days after {action.window_from_field or 'today'}: between"
                                      f" {first.isoformat()} and {last.isoformat()} (R-S2)",
                                      field="scheduled_date"))
    if is_future_work(ctx.packs, action.target_step_type):
        reasons += _future_work_problems(ctx, step, action, command)
    queued = sum(1 for a in step.next_actions if a.created_step_id is None and a.target_step_type
                 and twr_limited(ctx.packs, a.target_step_type))
    reasons += twr_limit(ctx, action.target_step_type, pending=queued, field="action")
    if action.reasons and command.reason is not None and command.reason not in action.reasons:
        reasons.append(reason("invalid_reason", f"the reason must be one of {list(action.reasons)}",
                              field="reason"))
    if action.reason_required and command.reason is None:
        reasons.append(reason("reason_required", f"{action.action!r} needs a reason (R-NA2)",
                              field="reason"))
    if command.priority != "normal" and command.note is None:
        reasons.append(reason("note_required", "a priority other than normal needs a note (R-NA2)",
                              field="note"))
    if action.requires_form and not form_complete(defn, step, action.requires_form):
        reasons.append(reason("form_required", f"{action.action!r} needs the form"
                              f" {action.requires_form!r} added and completed first (R-W9)",
                              field="action"))
    return reasons


def _window(ctx: Context, step: Step, action: NextActionDefinition) -> tuple[date, date]:
    assert action.scheduled_window_days is not None
    start = date_value(step.values, action.window_from_field) or ctx.today
    return scheduled_window(start, action.scheduled_window_days)


def _annual_date(ctx: Context, step: Step, action: NextActionDefinition) -> date | None:
    """R-K4: the annual review date a Future Work created by this action must keep."""
    assert action.target_step_type is not None
    months = ctx.packs.step(action.target_step_type).review_interval_months
    if months is None:
        return None
    return annual_review_date(ctx.today, previous_due=previous_future_work_due(ctx, step),
                              recorded=date_value(step.values, action.review_date_field), months=months)


def _future_work_problems(
    ctx: Context, step: Step, action: NextActionDefinition, command: cmd.AddNextAction,
) -> list[Reason]:
    """R-K2: no second Future Work; R-K4: another date than the annual review date needs a note."""
    reasons: list[Reason] = []
    existing = open_future_work(ctx, excluding=step.step_id)
    if existing is not None:
        reasons.append(one_future_work(existing, field="action"))
    pending = next((a for a in step.next_actions if a.created_step_id is None
                    and is_future_work(ctx.packs, a.target_step_type)), None)
    if pending is not None:
        reasons.append(reason("one_future_work", f"{pending.action!r} is already a next action of this"
                              " step: one Future Work per person (R-K2)", field="action",
                              step_id=step.step_id))
    annual = _annual_date(ctx, step, action)
    if (annual is not None and command.scheduled_date is not None and command.scheduled_date != annual
            and command.note is None):
        reasons.append(reason("note_required", f"the annual review date is {annual.isoformat()} (R-K4):"
                              " a different date needs a note saying why", field="note"))
    return reasons


def _resolve_assignee(action: NextAction) -> tuple[str, str]:
    """"Assign to me" is the worker who added the action, whoever later finishes the step (R-NA5)."""
    if action.assignee_kind == "self":
        return ("worker", action.added_by)
    assert action.assignee_id is not None
    return (action.assignee_kind, action.assignee_id)


def create_from_action(ctx: Context, step: Step, action: NextAction, rule: str) -> tuple[Step, History]:
    assert action.target_step_type is not None
    sources = {**ctx.case.finished_values, step.step_type: step.values}
    due = action.scheduled_date
    defn = ctx.packs.step(step.step_type, step.pack_version).next_action(action.action)
    # R-CL8: the day a windowed action counts from (new care starting), for the clock timing its step
    window_from = date_value(step.values, defn.window_from_field) if defn.scheduled_window_days else None
    return new_step(
        ctx, step_type=action.target_step_type, workflow_id=step.workflow_id, person_id=step.person_id,
        assignee=_resolve_assignee(action), priority=action.priority, due_date=due,
        provenance={"rule": rule, "action": action.action, "from_step_id": step.step_id,
                    "next_action_id": action.next_action_id, "from_pack_version": step.pack_version,
                    **({"window_from": window_from.isoformat()} if window_from else {})},
        source_values=sources, from_step=step,
    )


def _team_for(ctx: Context, step: Step, action: NextActionDefinition) -> str | None:
    """The action's team when the worker names none: the one chosen in the step's own team field (R-NA7), else
    the one for the person's locality where the pack lists it (R-C5), else its default."""
    chosen = team_named(str(step.values.get(action.team_from_field) or "")) if action.team_from_field else None
    if chosen is not None:
        return chosen
    if ctx.locality_team is not None and ctx.locality_team in action.team_by_locality:
        return action.team_by_locality[ctx.locality_team]
    return action.default_team


def _label(defn: StepDefinition, key: str | None) -> str:
    return next((f"'{f.label}'" for s in defn.form_sections for f in s.fields if f.key == key), repr(key))


def add_next_action(ctx: Context, step: Step, defn: StepDefinition, command: cmd.AddNextAction) -> Decision:
    """R-NA2: an allowed action with its assignee, reason, note and priority; sent at once if asked."""
    reasons = state_problems(step, WORKING_STATES, "add a next action to")
    try:
        action = defn.next_action(command.action)
    except KeyError:
        reasons.append(reason("unknown_action", f"{step.step_type} has no next action {command.action!r}",
                              field="action"))
        raise RuleBroken(reasons) from None
    if not may_act_for(step, defn, ctx.actor, action.added_by_roles):
        reasons.append(not_assignee(step))  # R-W10: a contributor adds the actions named for their role
    reasons += _action_problems(ctx, step, defn, action, command)
    check(reasons)
    assignee_kind, assignee_id = action.assignee_kind, None
    if command.assignee is not None:
        assignee_id = command.assignee.id
    elif action.assignee_kind == "team":
        assignee_id = _team_for(ctx, step, action)
    scheduled = command.scheduled_date
    if scheduled is None and not command.send_immediately and not action.nfa:
        if is_future_work(ctx.packs, action.target_step_type):
            scheduled = _annual_date(ctx, step, action)  # R-K4
        if scheduled is None and action.scheduled_window_days is not None:
            scheduled = _window(ctx, step, action)[0]  # R-S2: the start of the window
        if scheduled is None and action.scheduled_offset_days:
            scheduled = ctx.today + timedelta(days=action.scheduled_offset_days)
    added = NextAction(
        next_action_id=next(ctx.ids), action=action.action, nfa=action.nfa,
        target_step_type=action.target_step_type, assignee_kind=assignee_kind, assignee_id=assignee_id,
        send_immediately=command.send_immediately, scheduled_date=scheduled, reason=command.reason,
        note=command.note, priority=command.priority, added_by=ctx.actor.worker_id, added_at=ctx.now,
    )
    created: tuple[Step, ...] = ()
    history: list[History] = []
    events: list[Event] = []
    timers: list[Timer] = []
    if command.send_immediately:
        target, prepop = create_from_action(ctx, step, added, "R-NA3 send immediately")
        added = replace(added, created_step_id=target.step_id)
        created = (target,)
        timers = timers_of_new_step(ctx, target)
        history += [History(target.step_id, ctx.now, ctx.actor.worker_id, "step.created",
                            {"state": target.state, "provenance": target.provenance}), prepop]
    new = bump(step, ctx, next_actions=(*step.next_actions, added))
    events.append(NextActionAdded(
        **event_base(new, ctx), next_action_id=added.next_action_id, action=added.action, nfa=added.nfa,
        target_step_type=added.target_step_type, assignee=assignee_of(added),
        send_immediately=added.send_immediately, scheduled_date=added.scheduled_date,
        reason=added.reason, priority=added.priority,
    ))
    if created:
        target, made, opened = creation_events(ctx, created[0])
        created, history = (target,), history + opened
        events += [NextActionSent(**event_base(new, ctx), next_action_id=added.next_action_id,
                                  action=added.action, created_step_id=target.step_id), *made]
    history.insert(0, history_entry(new, ctx, "next_action.added", next_action_id=added.next_action_id,
                               action=added.action, sent=created[0].step_id if created else None,
                               scheduled_date=scheduled.isoformat() if scheduled else None))
    return Decision(events=tuple(events), step=new, created=created, history=tuple(history),
                    timers=tuple(timers))


def assignee_of(action: NextAction) -> Assignee | None:
    if action.assignee_kind in ("worker", "team") and action.assignee_id:
        return Assignee(kind=action.assignee_kind, id=action.assignee_id)  # type: ignore[arg-type]
    return None


def remove_next_action(ctx: Context, step: Step, defn: StepDefinition, next_action_id: str) -> Decision:
    """A next action can be removed until it has been sent."""
    reasons = state_problems(step, WORKING_STATES, "remove a next action from")
    if not may_work(step, defn, ctx.actor):
        reasons.append(not_assignee(step))
    found = next((a for a in step.next_actions if a.next_action_id == next_action_id), None)
    if found is None:
        reasons.append(reason("not_found", "the step has no such next action", field="next_action_id"))
    elif found.created_step_id is not None:
        reasons.append(reason("already_sent", f"{found.action!r} was sent immediately and cannot be"
                              " removed", field="next_action_id"))
    check(reasons)
    assert found is not None
    new = bump(step, ctx, next_actions=tuple(a for a in step.next_actions if a is not found))
    return Decision(events=(NextActionRemoved(**event_base(new, ctx), next_action_id=next_action_id,
                                              action=found.action),), step=new,
                    history=(history_entry(new, ctx, "next_action.removed", next_action_id=next_action_id,
                                      action=found.action),))
