"""Case closure: no closure while other work is open (R-K1); closure-only next actions (R-NA6)."""

from __future__ import annotations

from typing import Literal

from services.workflow.domain.access import holding_teams
from services.workflow.domain.model import OPEN_STATES, Context, Involvement, Step
from services.workflow.pack import StepDefinition
from shared.commands.base import Reason, reason
from shared.teams import team_name

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


def closure_warnings(ctx: Context, step: Step, defn: StepDefinition) -> list[Reason]:
    """R-K1: another team's open involvement — an organisational relationship, or a worker relationship made for
    another team — is named before a closure step finishes, without stopping it: the closure ends every
    relationship (R-A5), and seed 001 §6.5 asks the closer to have "checked relationships", not to wait for them."""
    if CLOSURE_GUARD not in defn.rules:
        return []
    if ctx.relationships is None:
        return [reason("involvement_unknown", "who else is involved with the person could not be read just now:"
                       " check their worker and team relationships before the case closes (R-K1)")]
    return [_other_team_involved(r) for r in _others_involved(ctx, step)]


def told_of_closure(ctx: Context, step: Step, defn: StepDefinition) -> list[tuple[Literal["worker", "team"], str]]:
    """R-K1: whom a closure step tells that the case is closing: each other team still involved (a worker's
    relationship tells the team it was made for), or the worker whose relationship names no team."""
    if CLOSURE_GUARD not in defn.rules:
        return []
    told: list[tuple[Literal["worker", "team"], str]] = [
        ("team", r.id) if r.kind == "team" else ("team", r.team_id) if r.team_id else ("worker", r.id)
        for r in _others_involved(ctx, step)]
    return list(dict.fromkeys(told))


def closing_teams(ctx: Context, step: Step) -> frozenset[str]:
    """The teams closing the case at this step: the closing worker's, those holding the step (R-W14: a worker's
    step is still the work of their team when another team answers it, R-C5), and those that closed the closure
    step it follows from (the proposer's team, at the admin team's Adult Case Closure in Progress)."""
    return frozenset(ctx.actor.team_ids) | holding_teams(step, ()) | set(step.provenance.get("closing_teams") or ())


def _others_involved(ctx: Context, step: Step) -> list[Involvement]:
    closing = closing_teams(ctx, step)
    closers = {ctx.actor.worker_id} | ({step.assignee_id} if step.assignee_kind == "worker" else set())
    return [r for r in ctx.relationships or () if _of_another_team(r, closing, closers)]


def _of_another_team(relationship: Involvement, closing: frozenset[str], closers: set[str]) -> bool:
    if relationship.kind == "team":
        return relationship.id not in closing
    if relationship.team_id is not None:
        return relationship.team_id not in closing
    return relationship.id not in closers


def _other_team_involved(relationship: Involvement) -> Reason:
    if relationship.kind == "team":
        who = f"{team_name(relationship.id)} (an open organisational relationship)"
    else:
        team = f" for {team_name(relationship.team_id)}" if relationship.team_id else ""
        who = f"worker {relationship.id!r}{team} (an open worker relationship)"
    return reason("other_team_involved", f"{who} is still involved with the person: closing the case ends that"
                  " involvement; check with them before the case closes (R-K1)")
