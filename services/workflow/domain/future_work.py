"""Future Work: one per person (R-K2), the annual date kept (R-K4), a warning when none is left (R-K3)."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.workflow.domain.closure import CLOSURE_GUARD
from services.workflow.domain.model import OPEN_STATES, Context, OtherStep, Step
from services.workflow.pack import PackRegistry, StepDefinition
from shared.commands.base import Reason, reason


def is_future_work(packs: PackRegistry, step_type: str | None, version: int | None = None) -> bool:
    """Whether the pack flags the step type as Future Work (R-K2)."""
    if step_type is None:
        return False
    try:
        return packs.step(step_type, version).is_future_work
    except KeyError:
        return False


def open_future_work(ctx: Context, *, excluding: str | None = None) -> OtherStep | None:
    """The person's Future Work still open or waiting (R-K2), other than `excluding`."""
    for other in ctx.case.other_steps:
        if other.step_id == excluding or other.state not in OPEN_STATES | {"future"}:
            continue
        if is_future_work(ctx.packs, other.step_type, other.pack_version):
            return other
    return None


def one_future_work(existing: OtherStep, **where: Any) -> Reason:
    """R-K2: the refusal names the existing Future Work, to allocate from it instead."""
    due = f", due {existing.due_date.isoformat()}" if existing.due_date else ""
    return reason("one_future_work", f"the person already has {existing.step_type!r} (step"
                  f" {existing.step_id}, {existing.state}{due}): allocate from it rather than"
                  " creating another (R-K2)", step_id=existing.step_id, **where)


def previous_future_work_due(ctx: Context, step: Step) -> date | None:
    """R-K4: the due date of the Future Work the review came from: this step's, else the latest finished."""
    if step.due_date is not None and is_future_work(ctx.packs, step.step_type, step.pack_version):
        return step.due_date
    dates = [d for t, d in ctx.case.finished_due_dates.items() if is_future_work(ctx.packs, t)]
    return max(dates, default=None)


def has_ongoing_services(ctx: Context, step: Step, defn: StepDefinition) -> bool:
    """R-K3: a finished step of an `ongoing_services` type (a support plan), or care packages on the record."""
    if defn.ongoing_services:
        return True
    if ctx.person is not None and ctx.person.get("care_packages"):
        return True
    return any(t in ctx.packs.step_types() and ctx.packs.step(t).ongoing_services
               for t in ctx.case.finished_values)


def future_work_warnings(
    ctx: Context, step: Step, defn: StepDefinition, *, continuing: bool,
) -> list[Reason]:
    """R-K3: the last open work of a person with ongoing services ends and no Future Work is left.

    `continuing`: the step's next actions create further work, so its workflow goes on. A case
    closure is meant to end everything and is not warned about.
    """
    if continuing or CLOSURE_GUARD in defn.rules:
        return []
    others = [o for o in ctx.case.other_steps
              if o.step_id != step.step_id and o.state in OPEN_STATES | {"future"}]
    if others or not has_ongoing_services(ctx, step, defn):
        return []
    return [reason("no_future_work", "this is the person's last open work and they have ongoing"
                   " services, but nothing leads to a Future Work: one of the workflows must lead to a"
                   " Future Work (R-K3)", step_id=step.step_id)]
