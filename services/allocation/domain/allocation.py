"""R-A3, R-A4: allocating a case to a worker and moving its work to another worker or team."""

from typing import Any

from services.allocation.domain.model import (
    ALLOCATING_ROLES,
    LONDON,
    Case,
    Context,
    Decision,
    Step,
    StepAssign,
    locality_reasons,
    team_member_reasons,
)
from services.allocation.domain.relationships import ended_worker_relationship, new_worker_relationship
from services.allocation.domain.review_trays import remove_from_review_tray
from services.allocation.domain.trays import remove_from_tray
from shared.actor import CROSS_TEAM_ROLES, Actor
from shared.commands import allocation as cmd
from shared.commands.base import Reason, check, reason
from shared.events.allocation import (
    CaseAllocated,
    CaseReassigned,
)

# steps that are work to do now (a step due later is allocated when it falls due; Future Work, due or not, is
# allocated from, never to a worker: seed 001 §6.2.1)
ALLOCATABLE_STATES = frozenset({"incoming", "incomplete", "returned"})
MOVABLE_STATES = frozenset({"incoming", "incomplete", "returned", "awaiting_authorisation", "future"})


def allocate(ctx: Context, case: Case, command: cmd.AllocateCase, steps: list[Step]) -> Decision:
    """R-A3: record the worker's own involvement (several workers may be involved, each with their own
    relationship), take the case off its tray, assign the allocating team's waiting work."""
    reasons = []
    if not ctx.actor.roles & ALLOCATING_ROLES:
        reasons.append(reason("role", "only a manager allocates cases", "actor.roles"))
    elif not ctx.actor.roles & CROSS_TEAM_ROLES:
        reasons += team_member_reasons(ctx.actor, command.team_id, "allocate a case for it")
    if case.ordinarily_resident is False:
        reasons.append(reason("not_ordinarily_resident", "the person is not ordinarily resident (R-A3)",
                              "person_id"))
    reasons += locality_reasons(ctx, command.team_id)
    if any(r.worker_id == command.worker_id for r in case.open_worker_relationships):
        reasons.append(reason("conflict", f"{command.worker_id} is already an involved worker of this case;"
                              " another worker may be allocated beside them, or reassign it (R-A3)", "worker_id"))
    check(reasons)
    start = ctx.now.astimezone(LONDON).date()
    decision = new_worker_relationship(ctx, case.person_id, command.worker_id, "Involved Worker", start,
                                    team_id=command.team_id)
    removed_id = None
    if case.open_entry is not None:
        removed_id = case.open_entry.entry_id
        decision += remove_from_tray(ctx, case.open_entry, "allocated")
    removed_review_id = None
    if case.open_review_entry is not None:
        removed_review_id = case.open_review_entry.entry_id
        decision += remove_from_review_tray(ctx, case.open_review_entry, "allocated")
    # only the allocating team's own work moves: another team's inbox keeps its steps (a safeguarding triage);
    # its Future Work stays with the team, whose manager hands the worker the actual piece of work from it
    assigns = tuple(StepAssign(s.step_id, "worker", command.worker_id) for s in steps
                    if s.assignee_kind == "team" and s.assignee_id == command.team_id
                    and s.state in ALLOCATABLE_STATES and not s.future_work)
    event = CaseAllocated(person_id=case.person_id, worker_id=command.worker_id, team_id=command.team_id,
                          relationship_id=decision.worker_relationships[0].relationship_id,
                          assigned_step_ids=[a.step_id for a in assigns], removed_entry_id=removed_id,
                          actor=ctx.actor.worker_id, removed_review_entry_id=removed_review_id)
    return decision + Decision(events=(event,), step_assigns=assigns)


def reassign_preview(case: Case, source: cmd.Target, steps: list[Step]) -> dict[str, Any]:
    """R-A4: every item that `case.reassign` from `source` would move."""
    moving = [s for s in steps if s.assignee_kind == source.kind and s.assignee_id == source.id
              and s.state in MOVABLE_STATES]
    rels = [r for r in case.open_worker_relationships if source.kind == "worker" and r.worker_id == source.id]
    return {"steps": moving, "worker_relationships": rels}


def holding_teams(case: Case, source: cmd.Target) -> frozenset[str]:
    """The teams that hold the work `source` has with the person: the team itself; for a worker, the team
    they were allocated the case for, or when none is known (their own involvement, an older allocation)
    any team with the person on its tray or in an open organisational relationship."""
    if source.kind == "team":
        return frozenset({source.id})
    allocated_for = {r.team_id for r in case.open_worker_relationships if r.worker_id == source.id and r.team_id}
    if allocated_for:
        return frozenset(allocated_for)
    known_to = {r.team_id for r in case.org_relationships if r.ended_at is None}
    return frozenset(known_to | {e.team_id for e in (case.open_entry, case.open_review_entry) if e is not None})


def _holding_team_reasons(actor: Actor, case: Case, source: cmd.Target) -> list[Reason]:
    """R-A4: a team's managers move only the work their team holds; a senior officer or head of service any."""
    holding = holding_teams(case, source)
    if holding & actor.team_ids:
        return []
    held_by = f"team {', '.join(sorted(holding))}" if holding else "no team"
    return [reason("not_team_member", f"the work of {source.kind} {source.id} with this person is held by {held_by},"
                                      " not a team of yours: its own managers, a senior officer or a head of"
                                      " service may reassign it", "actor.team_ids")]


def _reassigned(step: Step, case: Case, command: cmd.ReassignCase, actor: Actor) -> StepAssign | None:
    """R-A4: where a moving step goes. Future Work never goes to a worker (seed 001 §6.2.1, "they will not be
    able to open future work"; R-K13): a team's stays with it, a worker's goes to a team."""
    if not step.future_work or command.to.kind == "team":
        return StepAssign(step.step_id, command.to.kind, command.to.id)
    if command.from_.kind == "team":
        return None
    team = future_work_team(actor, case, command.from_)
    return StepAssign(step.step_id, "team", team) if team is not None else None


def future_work_team(actor: Actor, case: Case, worker: cmd.Target) -> str | None:
    """R-A4: the team a worker's Future Work goes to: the team holding their work with the person; of several,
    the one the reassigning manager belongs to; none known, the manager's own; still several, the first by id."""
    holding = holding_teams(case, worker)
    candidates = (holding & actor.team_ids) or holding or actor.team_ids
    return min(candidates) if candidates else None


def reassign(ctx: Context, case: Case, command: cmd.ReassignCase, steps: list[Step]) -> Decision:
    """R-A4: move incoming, incomplete and future work (and the allocation) to another worker or team."""
    reasons = []
    preview = reassign_preview(case, command.from_, steps)
    if not ctx.actor.roles & ALLOCATING_ROLES:
        reasons.append(reason("role", "only a manager reassigns cases", "actor.roles"))
    if command.from_ == command.to:
        reasons.append(reason("invalid", "`from` and `to` are the same", "to"))
    if not preview["steps"] and not preview["worker_relationships"]:
        reasons.append(reason("nothing_to_reassign",
                              f"the person has no work or allocation with {command.from_.kind} {command.from_.id}",
                              "from"))
    elif ctx.actor.roles & ALLOCATING_ROLES and not ctx.actor.roles & CROSS_TEAM_ROLES:
        reasons += _holding_team_reasons(ctx.actor, case, command.from_)
    check(reasons)
    decision = Decision()
    end_date = ctx.now.astimezone(LONDON).date()
    for rel in preview["worker_relationships"]:
        decision += ended_worker_relationship(ctx, rel, end_date, "reassigned")
    added = None
    if preview["worker_relationships"] and command.to.kind == "worker" and not any(
            r.worker_id == command.to.id for r in case.open_worker_relationships):
        team_id = next((r.team_id for r in preview["worker_relationships"] if r.team_id), None)
        decision += new_worker_relationship(ctx, case.person_id, command.to.id, "Involved Worker", end_date,
                                         team_id=team_id)
        added = decision.worker_relationships[-1].relationship_id
    assigns = tuple(a for a in (_reassigned(s, case, command, ctx.actor) for s in preview["steps"])
                    if a is not None)
    event = CaseReassigned.model_validate({
        "person_id": case.person_id, "from": command.from_.model_dump(), "to": command.to.model_dump(),
        "moved_step_ids": [a.step_id for a in assigns],
        "ended_relationship_ids": [r.relationship_id for r in preview["worker_relationships"]],
        "added_relationship_id": added, "actor": ctx.actor.worker_id})
    return decision + Decision(events=(event,), step_assigns=assigns)
