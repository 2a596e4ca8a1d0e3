"""R-K5: no third Telephone Wellbeing Review in a row; a face-to-face review is the way forward."""

from __future__ import annotations

from typing import Any

from services.workflow.domain.model import OPEN_STATES, Context
from services.workflow.pack import PackRegistry
from shared.commands.base import Reason, reason

# R-K5: the named rule, and the face-to-face way forward its refusal names.
TWR_RULE = "two_twr_limit"
TWR_WAY_FORWARD = "Review Planning"


def twr_limited(packs: PackRegistry, step_type: str | None) -> bool:
    """Whether the step type names the `two_twr_limit` rule (R-K5)."""
    if step_type is None:
        return False
    try:
        return TWR_RULE in packs.step(step_type).rules
    except KeyError:
        return False


def _is_review(packs: PackRegistry, step_type: str) -> bool:
    try:
        return packs.step(step_type).review
    except KeyError:
        return False


def twr_in_a_row(ctx: Context) -> int:
    """R-K5: the person's limited reviews in a row: the finished ones since the last other review
    (a Planned Short Review or Assessment Review resets the count), and any still open or waiting."""
    run = 0
    for step_type in ctx.case.finished_sequence:
        if twr_limited(ctx.packs, step_type):
            run += 1
        elif _is_review(ctx.packs, step_type):
            run = 0
    waiting = sum(1 for o in ctx.case.other_steps
                  if o.state in OPEN_STATES | {"future"} and twr_limited(ctx.packs, o.step_type))
    return run + waiting


def twr_limit(ctx: Context, step_type: str | None, *, pending: int = 0, **where: Any) -> list[Reason]:
    """R-K5: a third review of a `two_twr_limit` type in a row is refused; the way forward is named."""
    if not twr_limited(ctx.packs, step_type):
        return []
    count = twr_in_a_row(ctx) + pending
    if count < 2:
        return []
    forward = (f" use {TWR_WAY_FORWARD!r} for a face-to-face review" if TWR_WAY_FORWARD in ctx.packs.step_types()
               else " a face-to-face review is needed")
    return [reason("two_twr_limit", f"the person has had {count} {step_type}s in a row: no more than 2;"
                   f"{forward} (R-K5)", **where)]
