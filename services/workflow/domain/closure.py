"""Case closure: no closure while other work is open (R-K1); closure-only next actions (R-NA6)."""

from __future__ import annotations

from services.workflow.domain.model import OPEN_STATES, Context, Step
from services.workflow.pack import StepDefinition
from shared.commands.base import Reason, reason

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
    """R-K1: a closure step cannot finish while any other step of the person is open or waiting.

    Waiting work (Future Work, a scheduled review) would otherwise fall due later as new work on a
    closed case: it is named too, to be closed with an NFA or cancelled first.
    """
    if CLOSURE_GUARD not in defn.rules:
        return []
    reasons = []
    for other in ctx.case.other_steps:
        if other.step_id == step.step_id:
            continue
        if other.state in OPEN_STATES:
            reasons.append(reason("open_step", f"{other.step_type!r} is still {other.state}: the case cannot"
                                  f" close while it is open; finish it, or use '{OTHER_WORKFLOW_CONTINUES}' (R-K1)",
                                  step_id=other.step_id))
        elif other.state == "future":
            due = f" due {other.due_date:%d/%m/%Y}" if other.due_date else ""
            reasons.append(reason("waiting_step", f"{other.step_type!r}{due} is waiting: the case cannot close"
                                  " while work is scheduled; close it with a no-further-action or cancel it"
                                  " first (R-K1)", step_id=other.step_id))
    return reasons
