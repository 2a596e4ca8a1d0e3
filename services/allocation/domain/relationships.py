"""R-A1, R-A2, R-A6: a worker's and a team's relationships with a person."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from services.allocation.domain.model import (
    ALLOCATING_ROLES,
    LONDON,
    Case,
    Context,
    Decision,
    OrgRelationship,
    Step,
    WorkerRelationship,
    org_relationship_visible,
    org_relationship_visible_until,
)
from shared.commands import allocation as cmd
from shared.commands.base import Reason, check, reason
from shared.events.allocation import (
    OrgRelationshipAdded,
    OrgRelationshipEnded,
    WorkerRelationshipAdded,
    WorkerRelationshipEnded,
)
from shared.grounds import OPEN_OR_FUTURE_STATES, why_allowed


def add_worker_relationship(ctx: Context, case: Case, command: cmd.AddWorkerRelationship,
                            steps: Sequence[Step] = ()) -> Decision:
    """R-A1: a worker relationship puts the case in the worker's Allocations; R-A6: adding oneself needs grounds;
    R-A7: adding another worker is an allocation, by a manager of a team that holds the person's work."""
    check(_for_another_worker(ctx, command.worker_id, "add"))
    grounds = grounds_reasons(ctx, case, steps, command.access_reason, "person_id")
    if command.worker_id != ctx.actor.worker_id:
        grounds = _allocation_scope(case, steps, grounds)
    check(grounds)
    if any(r.worker_id == command.worker_id and r.relationship == command.relationship
           for r in case.open_worker_relationships):
        check([reason("duplicate", f"the worker already has an open {command.relationship!r} relationship",
                       "worker_id")])
    return new_worker_relationship(ctx, case.person_id, command.worker_id, command.relationship,
                                command.start_date or ctx.now.astimezone(LONDON).date())


def new_worker_relationship(ctx: Context, person_id: str, worker_id: str, relationship: str,
                         start: date, team_id: str | None = None) -> Decision:
    rel = WorkerRelationship(next(ctx.ids), person_id, worker_id, relationship, start, ctx.now,
                             ctx.actor.worker_id, team_id=team_id)
    event = WorkerRelationshipAdded(relationship_id=rel.relationship_id, person_id=person_id, worker_id=worker_id,
                                    relationship=relationship, start_date=start, actor=ctx.actor.worker_id)
    return Decision(events=(event,), worker_relationships=(rel,))


def end_worker_relationship(ctx: Context, rel: WorkerRelationship, command: cmd.EndWorkerRelationship) -> Decision:
    """R-A1: ending a worker relationship removes the case from Allocations at once."""
    end = command.end_date or ctx.now.astimezone(LONDON).date()
    reasons = _for_another_worker(ctx, rel.worker_id, "end")
    if not rel.is_open:
        reasons.append(reason("already_ended", "the relationship has already ended", "relationship_id"))
    if end < rel.start_date:
        reasons.append(reason("invalid", "the end date is before the start date", "end_date"))
    check(reasons)
    return ended_worker_relationship(ctx, rel, end, command.end_reason)


def _for_another_worker(ctx: Context, worker_id: str, verb: str) -> list[Reason]:
    """R-A1, R-A3: a worker records their own involvement; another worker's is an allocation, a manager's act."""
    if worker_id == ctx.actor.worker_id or ctx.actor.roles & ALLOCATING_ROLES:
        return []
    return [reason("role", f"only a manager may {verb} another worker's relationship", "worker_id")]


def _allocation_scope(case: Case, steps: Sequence[Step], grounds: list[Reason]) -> list[Reason]:
    """R-A7: a manager without grounds (their team's work, tray or involvement) allocates for another team."""
    if not grounds:
        return []
    holding = sorted(person_teams(case, steps))
    held_by = f"team {', '.join(holding)}" if holding else "no team"
    return [reason("not_team_member", f"the person's work is held by {held_by}, not a team you manage: its own"
                   " managers, a senior officer or a head of service may allocate it, or give an access_reason"
                   " (break-glass), which is recorded (R-A7)", "worker_id")]


def person_teams(case: Case, steps: Sequence[Step]) -> frozenset[str]:
    """The teams that hold the person's work: open team steps, allocations made for a team, trays, involvement."""
    teams = {s.assignee_id for s in steps if s.assignee_kind == "team" and s.state in OPEN_OR_FUTURE_STATES}
    teams |= {r.team_id for r in case.open_worker_relationships if r.team_id}
    teams |= {r.team_id for r in case.org_relationships if r.ended_at is None}
    teams |= {e.team_id for e in (case.open_entry, case.open_review_entry) if e is not None}
    return frozenset(teams)


def ended_worker_relationship(ctx: Context, rel: WorkerRelationship, end: date, end_reason: str | None) -> Decision:
    ended = replace(rel, end_date=end, end_reason=end_reason, ended_at=ctx.now, ended_by=ctx.actor.worker_id)
    event = WorkerRelationshipEnded(relationship_id=rel.relationship_id, person_id=rel.person_id,
                                    worker_id=rel.worker_id, end_date=end, end_reason=end_reason,
                                    actor=ctx.actor.worker_id)
    return Decision(events=(event,), worker_relationships=(ended,))


def grounds_reasons(ctx: Context, case: Case, steps: Sequence[Step], access_reason: str | None,
                    field: str) -> list[Reason]:
    """R-A6: the actor's grounds to act on the person (shared/grounds.py), or a reason they give (break-glass)."""
    if access_reason:
        return []
    actor = ctx.actor
    relationships = {
        "worker_relationships": [{"worker_id": r.worker_id, "team_id": r.team_id, "open": r.is_open}
                                 for r in case.worker_relationships],
        "organisational_relationships": [
            {"team_id": r.team_id, "visible": r.ended_at is None or org_relationship_visible(r.end_date, ctx.now)}
            for r in case.org_relationships],
    }
    trays = {e.team_id for e in (case.open_entry, case.open_review_entry) if e is not None}
    why = why_allowed(worker_id=actor.worker_id, team_ids=actor.team_ids, person_id=case.person_id,
                      roles=actor.roles, relationships=relationships,
                      steps=[{"state": s.state, "step_type": s.step_type,
                              "assignee": {"kind": s.assignee_kind, "id": s.assignee_id}} for s in steps],
                      tray_person_ids=[case.person_id] if trays & actor.team_ids else [])
    if why is not None:
        return []
    return [reason("no_relationship", f"worker {actor.worker_id} has no relationship with person {case.person_id}"
                   " and no work for them: give an access_reason (break-glass), which is recorded (R-A6)", field)]


def add_org_relationship(ctx: Context, case: Case, command: cmd.AddOrgRelationship,
                         steps: Sequence[Step] = ()) -> Decision:
    """R-A2: a team's organisational relationship ("Involved Team"); R-A6: recorded by someone with grounds."""
    check(grounds_reasons(ctx, case, steps, command.access_reason, "person_id"))
    if any(r.team_id == command.team_id and r.relationship == command.relationship and r.ended_at is None
           for r in case.org_relationships):
        check([reason("duplicate", f"the team already has an open {command.relationship!r} relationship",
                       "team_id")])
    start = command.start_date or ctx.now.astimezone(LONDON).date()
    rel = OrgRelationship(next(ctx.ids), case.person_id, command.team_id, command.relationship, start, ctx.now,
                          ctx.actor.worker_id)
    event = OrgRelationshipAdded(relationship_id=rel.relationship_id, person_id=case.person_id,
                                 team_id=command.team_id, relationship=command.relationship, start_date=start,
                                 actor=ctx.actor.worker_id)
    return Decision(events=(event,), org_relationships=(rel,))


def end_org_relationship(ctx: Context, case: Case, rel: OrgRelationship, command: cmd.EndOrgRelationship,
                         steps: Sequence[Step] = ()) -> Decision:
    """R-A2: ended with a date; shown until midnight at the end of that date; R-A6: by someone with grounds."""
    check(grounds_reasons(ctx, case, steps, command.access_reason, "relationship_id"))
    end = command.end_date or ctx.now.astimezone(LONDON).date()
    reasons = []
    if rel.ended_at is not None:
        reasons.append(reason("already_ended", "the relationship has already ended", "relationship_id"))
    if end < rel.start_date:
        reasons.append(reason("invalid", "the end date is before the start date", "end_date"))
    check(reasons)
    return ended_org_relationship(ctx, rel, end, command.end_reason)


def ended_org_relationship(ctx: Context, rel: OrgRelationship, end: date, end_reason: str | None) -> Decision:
    ended = replace(rel, end_date=end, end_reason=end_reason, ended_at=ctx.now, ended_by=ctx.actor.worker_id)
    event = OrgRelationshipEnded(relationship_id=rel.relationship_id, person_id=rel.person_id, team_id=rel.team_id,
                                 end_date=end, end_reason=end_reason,
                                 visible_until=org_relationship_visible_until(end), actor=ctx.actor.worker_id)
    return Decision(events=(event,), org_relationships=(ended,))
