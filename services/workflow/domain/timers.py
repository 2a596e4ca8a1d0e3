"""Timers set with the scheduler for a step: Future Work falling due (R-S1) and renewals (R-K6).

Also rescheduling Future Work (its timer moves) and what the workflow decides when a timer is due.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from services.workflow.domain.access import may_hand_on
from services.workflow.domain.dates import next_renewal_date
from services.workflow.domain.model import OPEN_STATES, Context, Decision, Step, Timer, bump, event_base, history_entry
from services.workflow.pack import StepDefinition
from shared.calendar import london_date, start_of_day
from shared.commands import workflow as cmd
from shared.commands.base import check, reason
from shared.events.workflow import StepDue, StepRenewalDue, StepRescheduled

FUTURE_WORK_TIMER = "future-work"
RENEWAL_TIMER = "renewal"


def timer_key(kind: str, step_id: str) -> str:
    return f"{kind}:{step_id}"


def step_timer_keys(step_id: str) -> tuple[str, ...]:
    """Every timer a step may have; the handler cancels only those it actually set."""
    return (timer_key(FUTURE_WORK_TIMER, step_id), timer_key(RENEWAL_TIMER, step_id))


def future_work_timer(step: Step) -> Timer:
    """R-S1: fires at the start of the due date (Europe/London)."""
    assert step.due_date is not None
    return Timer(timer_key(FUTURE_WORK_TIMER, step.step_id), start_of_day(step.due_date), step.step_id,
                 FUTURE_WORK_TIMER, {"step_id": step.step_id, "due_date": step.due_date.isoformat()})


def renewal_timer(step: Step, opened_on: date, today: date, every_days: int) -> Timer:
    """R-K6: the next renewal of an open step, counted from the date it opened."""
    due = next_renewal_date(opened_on, today, every_days)
    return Timer(timer_key(RENEWAL_TIMER, step.step_id), start_of_day(due), step.step_id, RENEWAL_TIMER,
                 {"step_id": step.step_id, "opened_on": opened_on.isoformat(), "every_days": every_days,
                  "renewal_due_date": due.isoformat()})


def timers_of_new_step(ctx: Context, step: Step) -> list[Timer]:
    """Future work waits for its due date; an open step whose type renews gets its first renewal."""
    if step.state == "future":
        return [future_work_timer(step)]
    every = ctx.packs.step(step.step_type, step.pack_version).renewal_days
    if every and step.state in OPEN_STATES:
        return [renewal_timer(step, ctx.today, ctx.today, every)]
    return []


def reschedule(ctx: Context, step: Step, defn: StepDefinition, command: cmd.RescheduleStep) -> Decision:
    """R-S1: future work moves to another due date (its timer moves); due by today it is incoming now."""
    reasons = [] if step.state == "future" else [
        reason("invalid_state", f"only future work can be rescheduled; this step is {step.state}")]
    if not may_hand_on(step, defn, ctx.actor):
        reasons.append(reason("role", "only the assignee, a member of the assigned team or a manager may"
                              " reschedule this step" if not defn.is_future_work else
                              "only a manager reschedules Future Work (R-K13)"))
    check(reasons)
    due = command.due_date
    state = "future" if due > ctx.today else "incoming"
    new = bump(step, ctx, due_date=due, state=state)
    timers: tuple[Timer, ...] = ()
    cancelled: tuple[str, ...] = ()
    if state == "future":
        timers = (future_work_timer(new),)  # same key: the scheduler moves it
    else:
        cancelled = (timer_key(FUTURE_WORK_TIMER, step.step_id),)
        timers = tuple(timers_of_new_step(ctx, new))
    event = StepRescheduled(**event_base(new, ctx), step_type=step.step_type, assignee=new.assignee,
                            previous_due_date=step.due_date, due_date=due, state=state,  # type: ignore[arg-type]
                            note=command.note)
    return Decision(events=(event,), step=new, timers=timers, cancelled_timers=cancelled, history=(history_entry(
        new, ctx, "step.rescheduled", previous_due_date=step.due_date.isoformat() if step.due_date else None,
        due_date=due.isoformat(), state=state, note=command.note),))


def timer_due(ctx: Context, step: Step, kind: str, payload: Mapping[str, Any]) -> Decision:
    """A timer the workflow set fell due: future work becomes incoming (R-S1), or a renewal (R-K6)."""
    if kind == FUTURE_WORK_TIMER:
        if step.state != "future":
            return Decision(events=())  # started, rescheduled or closed meanwhile
        new = bump(step, ctx, state="incoming")
        event = StepDue(**event_base(new, ctx), workflow_id=step.workflow_id, step_type=step.step_type,
                        assignee=new.assignee, priority=new.priority, due_date=new.due_date)
        return Decision(events=(event,), step=new, timers=tuple(timers_of_new_step(ctx, new)),
                        history=(history_entry(new, ctx, "step.due", due_date=new.due_date.isoformat()
                                          if new.due_date else None, rule="R-S1"),))
    if kind == RENEWAL_TIMER:
        if step.state not in OPEN_STATES:
            return Decision(events=())
        opened_on = date.fromisoformat(str(payload["opened_on"]))
        every = int(payload["every_days"])
        due = date.fromisoformat(str(payload["renewal_due_date"]))
        following = renewal_timer(step, opened_on, max(due, ctx.today), every)
        number = (due - opened_on).days // every
        renewal = StepRenewalDue(**event_base(step, ctx), step_type=step.step_type, assignee=step.assignee,
                                 renewal_due_date=due, renewal_number=number,
                                 next_renewal_date=london_date(following.due_at))
        return Decision(events=(renewal,), timers=(following,), history=(history_entry(
            step, ctx, "step.renewal_due", renewal_due_date=due.isoformat(), renewal_number=number,
            rule="R-K6"),))
    return Decision(events=())
