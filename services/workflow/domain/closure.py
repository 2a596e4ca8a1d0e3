"""Case closure: no closure while other work is open (R-K1); closure-only next actions (R-NA6)."""

from __future__ import annotations

from services.workflow.domain.model import OPEN_STATES, Context, Step, reason
from services.workflow.pack import StepDefinition
from shared.commands.base import Reason

CLOSURE_GUARD = "case_closure_guard"
OTHER_WORKFLOW_CONTINUES = "No further action – other workflow continues"


def closure_in_progress(ctx: Context, step: Step) -> bool:
    for other in ctx.case.other_steps:
        if other.step_id == step.step_id or other.state not in OPEN_STATES:
            continue
        try:
            rules = ctx.packs.step(other.step_type, other.pack_version).rules
        except KeyError:
            continue
        if CLOSURE_GUARD in rules:
            return True
    return False


def closure_blockers(ctx: Context, step: Step, defn: StepDefinition) -> list[Reason]:
    """R-K1: a closure step cannot finish while any other step of the person is open."""
    if CLOSURE_GUARD not in defn.rules:
        return []
    return [
        reason("open_step", f"{other.step_type!r} is still {other.state}: the case cannot close while"
               f" it is open; finish it, or use '{OTHER_WORKFLOW_CONTINUES}' (R-K1)",
               step_id=other.step_id)
        for other in ctx.case.other_steps
        if other.step_id != step.step_id and other.state in OPEN_STATES
    ]
