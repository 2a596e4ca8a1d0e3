"""Pure rules of allocation: relationships (R-A1..R-A4), Planned Work Trays (R-T1..R-T7), Review trays (R-T8).

No broker, no database, no clock, no uuid4: `now` and ids are passed in. Every rule broken
raises `RuleBroken` carrying every reason, not only the first.
"""

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from shared.actor import Actor
from shared.commands import allocation as cmd
from shared.commands.base import Reason
from shared.events.allocation import (
    CaseAllocated,
    CaseReassigned,
    MessageRequested,
    OrgRelationshipAdded,
    OrgRelationshipEnded,
    ReviewTrayEntryAdded,
    ReviewTrayEntryDue,
    ReviewTrayEntryRemoved,
    ReviewTrayEntryRescheduled,
    SafeAndWellCheckRequested,
    TrayEntryAdded,
    TrayEntryEscalated,
    TrayEntryRemoved,
    TrayEntryReviewed,
    TrayReviewDue,
    WorkerRelationshipAdded,
    WorkerRelationshipEnded,
)
from shared.events.workflow import StepRescheduled

Rag = Literal["red", "amber", "green"]
LONDON = ZoneInfo("Europe/London")
TRAY_ROLES = frozenset({"team_manager", "team_leader"})
REVIEW_TRAY_ROLES = frozenset({"team_manager", "team_leader", "assistant_team_manager"})
ALLOCATING_ROLES = frozenset({"team_manager", "assistant_team_manager", "team_leader", "senior_officer",
                              "head_of_service"})
# managers above the teams: they allocate to any team (a team's own managers only to theirs)
CROSS_TEAM_ROLES = frozenset({"senior_officer", "head_of_service"})
WAIT_TARGET_DAYS = 28
# steps that are work to do now (future work is allocated from, never to a worker: seed 001 §6.2)
ALLOCATABLE_STATES = frozenset({"incoming", "incomplete", "returned"})
MOVABLE_STATES = frozenset({"incoming", "incomplete", "returned", "awaiting_authorisation", "future"})
OWNER = "allocation"
REVIEW_TIMER = "tray-review"
ESCALATION_TIMER = "tray-escalation"
REVIEW_TRAY_TIMER = "review-tray"

# R-T3: support level x risk of harm
RAG_MATRIX: dict[tuple[str, str], Rag] = {
    ("none", "high"): "red", ("none", "moderate"): "red", ("none", "low"): "amber",
    ("moderate", "high"): "red", ("moderate", "moderate"): "amber", ("moderate", "low"): "green",
    ("full", "high"): "amber", ("full", "moderate"): "green", ("full", "low"): "green",
}
PWT_NOTE = "PWT"
MDD_NOTE = "Management Discussion / Decision"


class RuleBroken(Exception):
    """A command breaks one or more rules; `reasons` names every one of them."""

    def __init__(self, reasons: list[Reason]) -> None:
        super().__init__("; ".join(r.message for r in reasons))
        self.reasons = reasons

    @property
    def code(self) -> str:
        codes = {r.code for r in self.reasons}
        return codes.pop() if len(codes) == 1 else "rule_broken"


def reason(code: str, message: str, field: str | None = None) -> Reason:
    return Reason(code=code, message=message, field=field)


def _check(reasons: list[Reason]) -> None:
    if reasons:
        raise RuleBroken(reasons)


# --- state ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRelationship:
    """A worker's relationship with a person; open until ended (R-A1)."""

    relationship_id: str
    person_id: str
    worker_id: str
    relationship: str
    start_date: date
    created_at: datetime
    created_by: str
    end_date: date | None = None
    end_reason: str | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    team_id: str | None = None  # the team the case was allocated for (R-A3); its managers may reassign (R-A4)

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class OrgRelationship:
    """A team's relationship with a person; shown until midnight at the end of its end date (R-A2)."""

    relationship_id: str
    person_id: str
    team_id: str
    relationship: str
    start_date: date
    created_at: datetime
    created_by: str
    end_date: date | None = None
    end_reason: str | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None

    def visible_at(self, now: datetime) -> bool:
        return org_relationship_visible(self.end_date, now)


@dataclass(frozen=True)
class TrayEntry:
    """A case waiting on a team's Planned Work Tray (R-T1..R-T7)."""

    entry_id: str
    person_id: str
    team_id: str
    priority: str
    urgent: bool
    complexity: str
    support: str
    risk: str
    rag: Rag
    rationale: str
    placed_at: datetime
    placed_by: str
    next_review_at: datetime
    version: int = 1
    review_overdue: bool = False
    reviews: int = 0
    last_reviewed_at: datetime | None = None
    last_contacted: bool | None = None
    escalated_at: datetime | None = None
    red_escalated: bool = False
    removed_at: datetime | None = None
    removed_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.removed_at is None


@dataclass(frozen=True)
class ReviewTrayEntry:
    """A case in a team's Review tray until its rescheduled review falls due (R-T8)."""

    entry_id: str
    person_id: str
    team_id: str
    review_due: date
    reason: str
    added_at: datetime
    added_by: str
    version: int = 1
    due_at: datetime | None = None
    removed_at: datetime | None = None
    removed_by: str | None = None
    removed_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.removed_at is None


@dataclass(frozen=True)
class Case:
    """What allocation knows of a person: the referral's urgency and residence, relationships, tray entry."""

    person_id: str
    version: int = 0
    urgency: str | None = None
    ordinarily_resident: bool | None = None
    worker_relationships: tuple[WorkerRelationship, ...] = ()
    org_relationships: tuple[OrgRelationship, ...] = ()
    open_entry: TrayEntry | None = None
    open_review_entry: ReviewTrayEntry | None = None

    @property
    def open_worker_relationships(self) -> tuple[WorkerRelationship, ...]:
        return tuple(r for r in self.worker_relationships if r.is_open)


@dataclass(frozen=True)
class Step:
    """A step of the person's work, as the workflow service shows it."""

    step_id: str
    step_type: str
    state: str
    assignee_kind: str
    assignee_id: str

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> "Step":
        assignee = item.get("assignee") or {}
        return cls(str(item["step_id"]), str(item.get("step_type", "")), str(item.get("state", "")),
                   str(assignee.get("kind", "")), str(assignee.get("id", "")))


@dataclass(frozen=True)
class CaseNote:
    """A `case_note.add` for the referrals service (R-P3)."""

    person_id: str
    title: str
    type: str
    text: str
    notify_worker_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepAssign:
    """A `step.assign` for the workflow service."""

    step_id: str
    kind: str
    id: str


@dataclass(frozen=True)
class Timer:
    """A `timer.set` for the scheduler."""

    key: str
    due_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    """Everything one message changes: events to publish and state to save, nothing done yet."""

    events: tuple[BaseModel, ...] = ()
    entry: TrayEntry | None = None
    new_entry: bool = False
    worker_relationships: tuple[WorkerRelationship, ...] = ()
    org_relationships: tuple[OrgRelationship, ...] = ()
    case_notes: tuple[CaseNote, ...] = ()
    step_assigns: tuple[StepAssign, ...] = ()
    timers: tuple[Timer, ...] = ()
    cancelled_timers: tuple[str, ...] = ()
    review_entry: ReviewTrayEntry | None = None
    new_review_entry: bool = False

    def __add__(self, other: "Decision") -> "Decision":
        return Decision(
            events=self.events + other.events,
            entry=other.entry or self.entry,
            new_entry=self.new_entry or other.new_entry,
            worker_relationships=self.worker_relationships + other.worker_relationships,
            org_relationships=self.org_relationships + other.org_relationships,
            case_notes=self.case_notes + other.case_notes,
            step_assigns=self.step_assigns + other.step_assigns,
            timers=self.timers + other.timers,
            cancelled_timers=self.cancelled_timers + other.cancelled_timers,
            review_entry=other.review_entry or self.review_entry,
            new_review_entry=self.new_review_entry or other.new_review_entry,
        )


@dataclass
class Context:
    """What a decision may use besides state: the time, the actor and fresh ids."""

    now: datetime
    actor: Actor
    ids: Iterator[str]
    channel: str | None = None
    team_contact_number: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # R-A3 locality team finder: the person's locality team by address (None: not known), and every
    # locality team (a team outside them, e.g. wellbeing or specialist, is not checked)
    locality_team: str | None = None
    locality_teams: frozenset[str] = frozenset()


# --- pure rules ---------------------------------------------------------------------------------


def rag_rating(support: str, risk: str) -> Rag:
    """R-T3: the RAG rating from support level x risk of harm."""
    return RAG_MATRIX[(support, risk)]


def add_months(moment: datetime, months: int) -> datetime:
    """The same time `months` calendar months later; the 31st becomes the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def next_review_at(rag: Rag, after: datetime) -> datetime:
    """R-T5: Red at least weekly, Amber fortnightly, Green monthly (one calendar month)."""
    if rag == "red":
        return after + timedelta(days=7)
    if rag == "amber":
        return after + timedelta(days=14)
    return add_months(after, 1)


def escalation_due_at(placed_at: datetime) -> datetime:
    """R-T6: a Red case escalates once it has been on the tray for over a month."""
    return add_months(placed_at, 1)


def red_over_a_month(entry: TrayEntry, now: datetime) -> bool:
    """R-T6: Red and on the tray for more than one calendar month."""
    return entry.rag == "red" and now > escalation_due_at(entry.placed_at)


def escalation_reasons(entry: TrayEntry, now: datetime, *, increased_risk: bool, actor: Actor | None) -> list[str]:
    """R-T6: why an entry goes to the Strategic Service Manager now (empty: it does not)."""
    reasons = []
    if red_over_a_month(entry, now) and not entry.red_escalated:
        reasons.append("red_over_a_month")
    if increased_risk and actor is not None and actor.roles & TRAY_ROLES:
        reasons.append("increased_risk")
    return reasons


def days_waiting(placed_at: datetime, now: datetime) -> int:
    """R-T7: whole days since the case was placed on the tray."""
    return max(0, (now - placed_at).days)


def past_wait_target(placed_at: datetime, now: datetime) -> bool:
    """R-T7: nobody should wait more than 28 days for allocation to a named worker."""
    return days_waiting(placed_at, now) > WAIT_TARGET_DAYS


def org_relationship_visible_until(end_date: date) -> datetime:
    """R-A2: midnight at the end of the end date, UK time (aware)."""
    return datetime.combine(end_date + timedelta(days=1), time(0), tzinfo=LONDON)


def org_relationship_visible(end_date: date | None, now: datetime) -> bool:
    """R-A2: an organisational relationship shows until midnight at the end of its end date."""
    return end_date is None or now < org_relationship_visible_until(end_date)


def tray_permission_reasons(actor: Actor, action: str) -> list[Reason]:
    """R-T1: only a Team Manager or Team Leader places, reviews or removes tray entries."""
    if actor.roles & TRAY_ROLES:
        return []
    return [reason("role", f"only a Team Manager or Team Leader may {action} (R-T1)", "actor.roles")]


def team_member_reasons(actor: Actor, team_id: str, action: str) -> list[Reason]:
    """A team's managers act on its trays and allocations only: the actor must belong to the team."""
    if team_id in actor.team_ids:
        return []
    return [reason("not_team_member", f"you are not a member of team {team_id}, so you may not {action}"
                                      " (only the team's own managers may)", "actor.team_ids")]


def tray_eligibility_reasons(case: Case, *, urgent: bool) -> list[Reason]:
    """R-T2: urgent cases are actioned from Duty, and people not ordinarily resident are not placed."""
    reasons = []
    if urgent or case.urgency == "urgent":
        reasons.append(reason("urgent", "an urgent case is actioned from Duty, not placed on a tray (R-T2)",
                              "urgent"))
    if case.ordinarily_resident is False:
        reasons.append(reason("not_ordinarily_resident",
                              "the person is not ordinarily resident: another authority is responsible (R-T2)",
                              "person_id"))
    return reasons


def locality_reasons(ctx: Context, team_id: str) -> list[Reason]:
    """R-A3: a locality team takes only people whose address is in its area (the locality team finder).

    Allowed when the team is not a locality team, or the person's address maps to no locality team.
    """
    if team_id not in ctx.locality_teams or ctx.locality_team is None or ctx.locality_team == team_id:
        return []
    return [reason("wrong_locality",
                   f"the person's address is in the area of locality team {ctx.locality_team}, not {team_id}"
                   f" (R-A3 locality team finder): the case belongs to {ctx.locality_team}", "team_id")]


# --- relationships ------------------------------------------------------------------------------


def add_worker_relationship(ctx: Context, case: Case, command: cmd.AddWorkerRelationship) -> Decision:
    """R-A1: a worker relationship puts the case in the worker's Allocations."""
    _check(_for_another_worker(ctx, command.worker_id, "add"))
    if any(r.worker_id == command.worker_id and r.relationship == command.relationship
           for r in case.open_worker_relationships):
        _check([reason("duplicate", f"the worker already has an open {command.relationship!r} relationship",
                       "worker_id")])
    return _worker_relationship(ctx, case.person_id, command.worker_id, command.relationship,
                                command.start_date or ctx.now.astimezone(LONDON).date())


def _worker_relationship(ctx: Context, person_id: str, worker_id: str, relationship: str,
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
    _check(reasons)
    return _end_worker(ctx, rel, end, command.end_reason)


def _for_another_worker(ctx: Context, worker_id: str, verb: str) -> list[Reason]:
    """R-A1, R-A3: a worker records their own involvement; another worker's is an allocation, a manager's act."""
    if worker_id == ctx.actor.worker_id or ctx.actor.roles & ALLOCATING_ROLES:
        return []
    return [reason("role", f"only a manager may {verb} another worker's relationship", "worker_id")]


def _end_worker(ctx: Context, rel: WorkerRelationship, end: date, end_reason: str | None) -> Decision:
    ended = replace(rel, end_date=end, end_reason=end_reason, ended_at=ctx.now, ended_by=ctx.actor.worker_id)
    event = WorkerRelationshipEnded(relationship_id=rel.relationship_id, person_id=rel.person_id,
                                    worker_id=rel.worker_id, end_date=end, end_reason=end_reason,
                                    actor=ctx.actor.worker_id)
    return Decision(events=(event,), worker_relationships=(ended,))


def add_org_relationship(ctx: Context, case: Case, command: cmd.AddOrgRelationship) -> Decision:
    """R-A2: a team's organisational relationship ("Involved Team")."""
    if any(r.team_id == command.team_id and r.relationship == command.relationship and r.ended_at is None
           for r in case.org_relationships):
        _check([reason("duplicate", f"the team already has an open {command.relationship!r} relationship",
                       "team_id")])
    start = command.start_date or ctx.now.astimezone(LONDON).date()
    rel = OrgRelationship(next(ctx.ids), case.person_id, command.team_id, command.relationship, start, ctx.now,
                          ctx.actor.worker_id)
    event = OrgRelationshipAdded(relationship_id=rel.relationship_id, person_id=case.person_id,
                                 team_id=command.team_id, relationship=command.relationship, start_date=start,
                                 actor=ctx.actor.worker_id)
    return Decision(events=(event,), org_relationships=(rel,))


def end_org_relationship(ctx: Context, rel: OrgRelationship, command: cmd.EndOrgRelationship) -> Decision:
    """R-A2: ended with a date; shown until midnight at the end of that date."""
    end = command.end_date or ctx.now.astimezone(LONDON).date()
    reasons = []
    if rel.ended_at is not None:
        reasons.append(reason("already_ended", "the relationship has already ended", "relationship_id"))
    if end < rel.start_date:
        reasons.append(reason("invalid", "the end date is before the start date", "end_date"))
    _check(reasons)
    ended = replace(rel, end_date=end, end_reason=command.end_reason, ended_at=ctx.now,
                    ended_by=ctx.actor.worker_id)
    event = OrgRelationshipEnded(relationship_id=rel.relationship_id, person_id=rel.person_id, team_id=rel.team_id,
                                 end_date=end, end_reason=command.end_reason,
                                 visible_until=org_relationship_visible_until(end), actor=ctx.actor.worker_id)
    return Decision(events=(event,), org_relationships=(ended,))


# --- allocation ----------------------------------------------------------------------------------


def allocate(ctx: Context, case: Case, command: cmd.AllocateCase, steps: list[Step]) -> Decision:
    """R-A3: record the worker relationship, take the case off its tray, assign the team's work."""
    reasons = []
    if not ctx.actor.roles & ALLOCATING_ROLES:
        reasons.append(reason("role", "only a manager allocates cases", "actor.roles"))
    elif not ctx.actor.roles & CROSS_TEAM_ROLES:
        reasons += team_member_reasons(ctx.actor, command.team_id, "allocate a case for it")
    if case.ordinarily_resident is False:
        reasons.append(reason("not_ordinarily_resident", "the person is not ordinarily resident (R-A3)",
                              "person_id"))
    reasons += locality_reasons(ctx, command.team_id)
    allocated = case.open_worker_relationships
    if allocated:
        workers = ", ".join(sorted({r.worker_id for r in allocated}))
        reasons.append(reason("conflict", f"the case is already allocated (to {workers}); reassign it instead",
                              "person_id"))
    _check(reasons)
    start = ctx.now.astimezone(LONDON).date()
    decision = _worker_relationship(ctx, case.person_id, command.worker_id, "Involved Worker", start,
                                    team_id=command.team_id)
    removed_id = None
    if case.open_entry is not None:
        removed_id = case.open_entry.entry_id
        decision += _remove(ctx, case.open_entry, "allocated")
    removed_review_id = None
    if case.open_review_entry is not None:
        removed_review_id = case.open_review_entry.entry_id
        decision += _remove_from_review_tray(ctx, case.open_review_entry, "allocated")
    assigns = tuple(StepAssign(s.step_id, "worker", command.worker_id) for s in steps
                    if s.assignee_kind == "team" and s.state in ALLOCATABLE_STATES)
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
    _check(reasons)
    decision = Decision()
    end_date = ctx.now.astimezone(LONDON).date()
    for rel in preview["worker_relationships"]:
        decision += _end_worker(ctx, rel, end_date, "reassigned")
    added = None
    if preview["worker_relationships"] and command.to.kind == "worker" and not any(
            r.worker_id == command.to.id for r in case.open_worker_relationships):
        team_id = next((r.team_id for r in preview["worker_relationships"] if r.team_id), None)
        decision += _worker_relationship(ctx, case.person_id, command.to.id, "Involved Worker", end_date,
                                         team_id=team_id)
        added = decision.worker_relationships[-1].relationship_id
    assigns = tuple(StepAssign(s.step_id, command.to.kind, command.to.id) for s in preview["steps"])
    event = CaseReassigned.model_validate({
        "person_id": case.person_id, "from": command.from_.model_dump(), "to": command.to.model_dump(),
        "moved_step_ids": [a.step_id for a in assigns],
        "ended_relationship_ids": [r.relationship_id for r in preview["worker_relationships"]],
        "added_relationship_id": added, "actor": ctx.actor.worker_id})
    return decision + Decision(events=(event,), step_assigns=assigns)


# --- Planned Work Trays -------------------------------------------------------------------------


def _timers(entry: TrayEntry) -> tuple[tuple[Timer, ...], tuple[str, ...]]:
    """The review timer always; the escalation timer only while Red and not yet escalated."""
    payload = {"entry_id": entry.entry_id, "person_id": entry.person_id}
    timers = [Timer(timer_key(REVIEW_TIMER, entry.entry_id), entry.next_review_at, payload)]
    cancelled: list[str] = []
    if entry.rag == "red" and not entry.red_escalated:
        timers.append(Timer(timer_key(ESCALATION_TIMER, entry.entry_id), escalation_due_at(entry.placed_at),
                            payload))
    else:
        cancelled.append(timer_key(ESCALATION_TIMER, entry.entry_id))
    return tuple(timers), tuple(cancelled)


def timer_key(kind: str, entry_id: str) -> str:
    return f"{kind}:{entry_id}"


def tray_add(ctx: Context, case: Case, command: cmd.AddToTray) -> Decision:
    """R-T1..R-T4: placed by a TM/TL with rationale, a "PWT" note, RAG, review timers, the person told."""
    reasons = tray_permission_reasons(ctx.actor, "place a case on a Planned Work Tray")
    reasons += team_member_reasons(ctx.actor, command.team_id, "place a case on its Planned Work Tray")
    reasons += tray_eligibility_reasons(case, urgent=command.urgent)
    reasons += locality_reasons(ctx, command.team_id)
    if case.open_entry is not None:
        reasons.append(reason("duplicate", f"the person is already on the tray of team {case.open_entry.team_id}",
                              "person_id"))
    _check(reasons)
    rag = rag_rating(command.support, command.risk)
    entry = TrayEntry(
        entry_id=next(ctx.ids), person_id=case.person_id, team_id=command.team_id, priority=command.priority,
        urgent=command.urgent, complexity=command.complexity, support=command.support, risk=command.risk,
        rag=rag, rationale=command.rationale, placed_at=ctx.now, placed_by=ctx.actor.worker_id,
        next_review_at=next_review_at(rag, ctx.now),
    )
    added = TrayEntryAdded(
        entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id, priority=command.priority,
        complexity=command.complexity, support=command.support, risk=command.risk, rag=rag,
        placed_at=ctx.now, next_review_at=entry.next_review_at, actor=ctx.actor.worker_id)
    told = MessageRequested(person_id=entry.person_id, team_id=entry.team_id, reason="pwt_added",
                            channel=ctx.channel, team_contact_number=ctx.team_contact_number,
                            entry_id=entry.entry_id)
    note = CaseNote(
        entry.person_id, PWT_NOTE, MDD_NOTE,
        f"Placed on the Planned Work Tray of team {entry.team_id}. Rationale: {command.rationale}\n"
        f"Priority {command.priority}, complexity {command.complexity}, RAG {rag} "
        f"(support {command.support}, risk of harm {command.risk}). "
        f"Next review by {entry.next_review_at.date().isoformat()}.",
        (ctx.actor.worker_id,))
    timers, cancelled = _timers(entry)
    decision = Decision(events=(added, told), entry=entry, new_entry=True, case_notes=(note,), timers=timers,
                        cancelled_timers=cancelled)
    if case.open_review_entry is not None:  # R-T8: its review is being acted on now
        decision += _remove_from_review_tray(ctx, case.open_review_entry, "placed on the Planned Work Tray")
    return decision


def _open(entry: TrayEntry | None) -> TrayEntry:
    if entry is None or not entry.is_open:
        _check([reason("not_on_tray", "the entry is no longer on the tray", "entry_id")])
    assert entry is not None
    return entry


def _version(entry: TrayEntry, expected: int | None) -> list[Reason]:
    if expected is not None and expected != entry.version:
        return [reason("conflict", f"the entry is at version {entry.version}, not {expected}", "expected_version")]
    return []


def tray_review(ctx: Context, entry: TrayEntry | None, command: cmd.ReviewTrayEntry) -> Decision:
    """R-T5, R-T6: a review ("PWT" note, TM/TL notified) may change priority, complexity or RAG."""
    entry = _open(entry)
    reasons = (tray_permission_reasons(ctx.actor, "review a tray entry")
               + team_member_reasons(ctx.actor, entry.team_id, "review or escalate a case on its Planned Work Tray")
               + _version(entry, command.expected_version))
    _check(reasons)
    support, risk = command.support or entry.support, command.risk or entry.risk
    rag = rag_rating(support, risk)
    reviewed = replace(
        entry, priority=command.priority or entry.priority, complexity=command.complexity or entry.complexity,
        support=support, risk=risk, rag=rag, next_review_at=next_review_at(rag, ctx.now), review_overdue=False,
        reviews=entry.reviews + 1, last_reviewed_at=ctx.now, last_contacted=command.contacted,
        version=entry.version + 1)
    event = TrayEntryReviewed(
        entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id, contacted=command.contacted,
        priority=reviewed.priority, complexity=reviewed.complexity, support=support, risk=risk, rag=rag,
        previous_rag=entry.rag, increased_risk=command.increased_risk, next_review_at=reviewed.next_review_at,
        version=reviewed.version, actor=ctx.actor.worker_id)
    changes = [f"{what} {old} → {new}" for what, old, new in (
        ("priority", entry.priority, reviewed.priority), ("complexity", entry.complexity, reviewed.complexity),
        ("RAG", entry.rag, rag)) if old != new]
    text = (f"Planned Work Tray review ({'person contacted' if command.contacted else 'person NOT contacted'}). "
            f"{command.note}\n" + (f"Changed: {', '.join(changes)}. " if changes else "No change to priority, "
                                   "complexity or RAG. ")
            + f"Next review by {reviewed.next_review_at.date().isoformat()}.")
    notify = tuple(sorted({entry.placed_by, ctx.actor.worker_id}))
    events: list[BaseModel] = [event]
    if not command.contacted:
        events.append(SafeAndWellCheckRequested(entry_id=entry.entry_id, person_id=entry.person_id,
                                                team_id=entry.team_id, actor=ctx.actor.worker_id))
    decision = Decision(events=tuple(events), entry=reviewed,
                        case_notes=(CaseNote(entry.person_id, PWT_NOTE, PWT_NOTE, text, notify),))
    for why in escalation_reasons(reviewed, ctx.now, increased_risk=command.increased_risk, actor=ctx.actor):
        decision += _escalate(ctx, decision.entry or reviewed, why)  # type: ignore[arg-type]
    timers, cancelled = _timers(decision.entry or reviewed)
    return decision + Decision(timers=timers, cancelled_timers=cancelled)


def _escalate(ctx: Context, entry: TrayEntry, why: Literal["red_over_a_month", "increased_risk"]) -> Decision:
    """R-T6: to the Strategic Service Manager, recorded as a Management Discussion / Decision note."""
    escalated = replace(entry, escalated_at=ctx.now,
                        red_escalated=entry.red_escalated or why == "red_over_a_month")
    event = TrayEntryEscalated(entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id,
                               reason=why, rag=entry.rag, placed_at=entry.placed_at, actor=ctx.actor.worker_id)
    because = ("a Red case has waited on the Planned Work Tray for over a month"
               if why == "red_over_a_month" else "a Team Manager / Team Leader flagged increased risk of harm")
    text = (f"Escalated to the Strategic Service Manager: {because}. On the tray of team {entry.team_id} since "
            f"{entry.placed_at.date().isoformat()} ({days_waiting(entry.placed_at, ctx.now)} days), RAG {entry.rag}, "
            f"priority {entry.priority}, complexity {entry.complexity}.")
    note = CaseNote(entry.person_id, "PWT escalation to Strategic Service Manager", MDD_NOTE, text,
                    tuple(sorted({entry.placed_by})))
    return Decision(events=(event,), entry=escalated, case_notes=(note,))


def tray_remove(ctx: Context, entry: TrayEntry | None, command: cmd.RemoveFromTray) -> Decision:
    """A TM/TL takes a case off the tray with a reason; its timers are cancelled."""
    entry = _open(entry)
    _check(tray_permission_reasons(ctx.actor, "remove a case from a Planned Work Tray")
           + team_member_reasons(ctx.actor, entry.team_id, "remove a case from its Planned Work Tray")
           + _version(entry, command.expected_version))
    return _remove(ctx, entry, command.reason)


def _remove(ctx: Context, entry: TrayEntry, why: str) -> Decision:
    removed = replace(entry, removed_at=ctx.now, removed_reason=why, version=entry.version + 1)
    event = TrayEntryRemoved(entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id, reason=why,
                             days_waiting=days_waiting(entry.placed_at, ctx.now), actor=ctx.actor.worker_id)
    return Decision(events=(event,), entry=removed, cancelled_timers=(
        timer_key(REVIEW_TIMER, entry.entry_id), timer_key(ESCALATION_TIMER, entry.entry_id)))


def timer_due(ctx: Context, entry: TrayEntry | None, key: str, due_at: datetime) -> Decision:
    """A review timer marks the review overdue; an escalation timer escalates a Red entry (R-T5, R-T6).

    A timer that no longer matches the entry (removed, reviewed since, no longer Red) does nothing.
    """
    kind, _, _ = key.partition(":")
    if entry is None or not entry.is_open:
        return Decision()
    if kind == REVIEW_TIMER:
        if entry.review_overdue or due_at != entry.next_review_at:
            return Decision()
        overdue = replace(entry, review_overdue=True, version=entry.version + 1)
        return Decision(events=(TrayReviewDue(entry_id=entry.entry_id, person_id=entry.person_id,
                                              team_id=entry.team_id, rag=entry.rag, due_at=due_at),),
                        entry=overdue)
    if kind == ESCALATION_TIMER:
        # the timer fires at one month; "over a month" holds by then on the scheduler's clock
        if entry.rag != "red" or entry.red_escalated or due_at != escalation_due_at(entry.placed_at):
            return Decision()
        decision = _escalate(ctx, entry, "red_over_a_month")
        assert decision.entry is not None
        return replace(decision, entry=replace(decision.entry, version=entry.version + 1))
    return Decision()


# --- Review trays (R-T8) ------------------------------------------------------------------------


def review_tray_due_at(review_due: date) -> datetime:
    """R-T8: the Review tray timer fires at the start of the review date, UK time (aware)."""
    return datetime.combine(review_due, time(0), tzinfo=LONDON)


def review_tray_due(entry: ReviewTrayEntry, now: datetime) -> bool:
    """Due once its timer fired or its review date has come (UK date)."""
    return entry.due_at is not None or entry.review_due <= now.astimezone(LONDON).date()


def review_tray_overdue(entry: ReviewTrayEntry, now: datetime) -> bool:
    """Still in the Review tray after its review date has passed."""
    return entry.review_due < now.astimezone(LONDON).date()


def review_tray_add(ctx: Context, case: Case, command: cmd.AddToReviewTray) -> Decision:
    """R-T8: a case whose next review is rescheduled waits in the team's Review tray until it is due."""
    reasons = []
    if not ctx.actor.roles & REVIEW_TRAY_ROLES:
        reasons.append(reason("role", "only a Team Manager, Team Leader or Assistant Team Manager may put a case"
                                      " in a Review tray (R-T8)", "actor.roles"))
    reasons += team_member_reasons(ctx.actor, command.team_id, "put a case in its Review tray")
    if command.review_due <= ctx.now.astimezone(LONDON).date():
        reasons.append(reason("invalid", "the review date must be after today", "review_due"))
    if case.open_review_entry is not None:
        reasons.append(reason("duplicate", "the person is already in the Review tray of team "
                                           f"{case.open_review_entry.team_id}", "person_id"))
    if case.open_entry is not None:
        reasons.append(reason("duplicate", "the person is waiting on the Planned Work Tray of team "
                                           f"{case.open_entry.team_id}: take them off it first", "person_id"))
    _check(reasons)
    return _add_to_review_tray(ctx, case, command.team_id, command.review_due, command.reason)


def _add_to_review_tray(ctx: Context, case: Case, team_id: str, review_due: date, why: str) -> Decision:
    entry = ReviewTrayEntry(entry_id=next(ctx.ids), person_id=case.person_id, team_id=team_id,
                            review_due=review_due, reason=why, added_at=ctx.now, added_by=ctx.actor.worker_id)
    event = ReviewTrayEntryAdded(entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id,
                                 review_due=entry.review_due, reason=entry.reason, added_at=ctx.now,
                                 actor=ctx.actor.worker_id)
    timer = Timer(timer_key(REVIEW_TRAY_TIMER, entry.entry_id), review_tray_due_at(entry.review_due),
                  {"entry_id": entry.entry_id, "person_id": entry.person_id})
    return Decision(events=(event,), review_entry=entry, new_review_entry=True, timers=(timer,))


def review_tray_remove(ctx: Context, entry: ReviewTrayEntry | None,
                       command: cmd.RemoveFromReviewTray) -> Decision:
    """R-T8: a TM, TL or ATM takes a case out of the Review tray with a reason; its timer is cancelled."""
    if entry is None or not entry.is_open:
        _check([reason("not_on_tray", "the entry is no longer in the Review tray", "entry_id")])
    assert entry is not None
    reasons = []
    if not ctx.actor.roles & REVIEW_TRAY_ROLES:
        reasons.append(reason("role", "only a Team Manager, Team Leader or Assistant Team Manager may take a case"
                                      " out of a Review tray (R-T8)", "actor.roles"))
    reasons += team_member_reasons(ctx.actor, entry.team_id, "take a case out of its Review tray")
    if command.expected_version is not None and command.expected_version != entry.version:
        reasons.append(reason("conflict", f"the entry is at version {entry.version}, not {command.expected_version}",
                              "expected_version"))
    _check(reasons)
    return _remove_from_review_tray(ctx, entry, command.reason)


def _remove_from_review_tray(ctx: Context, entry: ReviewTrayEntry, why: str) -> Decision:
    removed = replace(entry, removed_at=ctx.now, removed_by=ctx.actor.worker_id, removed_reason=why,
                      version=entry.version + 1)
    event = ReviewTrayEntryRemoved(entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id,
                                   review_due=entry.review_due, reason=why, actor=ctx.actor.worker_id)
    return Decision(events=(event,), review_entry=removed,
                    cancelled_timers=(timer_key(REVIEW_TRAY_TIMER, entry.entry_id),))


def review_tray_timer_due(ctx: Context, entry: ReviewTrayEntry | None, due_at: datetime) -> Decision:
    """R-T8: the review date came; the entry is marked due (once) and stays in the tray until acted on.

    A timer of an earlier review date (the review was rescheduled since) does nothing.
    """
    if entry is None or due_at != review_tray_due_at(entry.review_due):
        return Decision()
    return _mark_review_due(ctx, entry, due_at)


def _mark_review_due(ctx: Context, entry: ReviewTrayEntry | None, due_at: datetime) -> Decision:
    if entry is None or not entry.is_open or entry.due_at is not None:
        return Decision()
    marked = replace(entry, due_at=ctx.now, version=entry.version + 1)
    return Decision(events=(ReviewTrayEntryDue(entry_id=entry.entry_id, person_id=entry.person_id,
                                               team_id=entry.team_id, review_due=entry.review_due,
                                               due_at=due_at),), review_entry=marked)


def review_rescheduled(ctx: Context, case: Case, rescheduled: StepRescheduled) -> Decision:
    """R-T8 fed by the workflow: a person's next review (their future work) rescheduled to a later date.

    The case waits in the Review tray of the team the future work is assigned to, until the new date;
    an entry already there moves to that date and team. Nothing changes for future work assigned to a
    worker (the case is theirs, not a team's), nor while the case waits on a Planned Work Tray or is
    allocated. Rescheduled to today or earlier, the step is incoming work now: an open entry is due.
    """
    if rescheduled.state == "incoming":
        return _mark_review_due(ctx, case.open_review_entry, ctx.now)
    if rescheduled.assignee.kind != "team" or case.open_entry is not None or case.open_worker_relationships:
        return Decision()
    team_id, review_due = rescheduled.assignee.id, rescheduled.due_date
    why = f"Next review ({rescheduled.step_type}) rescheduled to {review_due.isoformat()}"
    entry = case.open_review_entry
    if entry is None:
        return _add_to_review_tray(ctx, case, team_id, review_due, why)
    if (entry.team_id, entry.review_due) == (team_id, review_due):
        return Decision()
    moved = replace(entry, team_id=team_id, review_due=review_due, reason=why, due_at=None,
                    version=entry.version + 1)
    event = ReviewTrayEntryRescheduled(
        entry_id=entry.entry_id, person_id=entry.person_id, team_id=team_id, review_due=review_due,
        previous_team_id=entry.team_id, previous_review_due=entry.review_due, reason=why, actor=ctx.actor.worker_id)
    timer = Timer(timer_key(REVIEW_TRAY_TIMER, entry.entry_id), review_tray_due_at(review_due),
                  {"entry_id": entry.entry_id, "person_id": entry.person_id})
    return Decision(events=(event,), review_entry=moved, timers=(timer,))
