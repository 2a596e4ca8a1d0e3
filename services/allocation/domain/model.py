"""What every allocation rule shares: the state it decides on, the decision it returns, who may act, the refusal.

No broker, no database, no clock, no uuid4: `now` and ids are passed in. Every rule broken
raises `RuleBroken` carrying every reason, not only the first.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from shared.actor import MANAGER_ROLES, Actor, held_roles
from shared.calendar import LONDON
from shared.commands.base import Reason, reason
from shared.events.allocation import Level
from shared.events.base import Event

Rag = Literal["red", "amber", "green"]
REVIEW_TRAY_ROLES = frozenset({"team_manager", "team_leader", "assistant_team_manager"})
ALLOCATING_ROLES = MANAGER_ROLES  # managers above the teams (CROSS_TEAM_ROLES) allocate to any team
OWNER = "allocation"


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


def org_relationship_visible_until(end_date: date) -> datetime:
    """R-A2: midnight at the end of the end date, UK time (aware)."""
    return datetime.combine(end_date + timedelta(days=1), time(0), tzinfo=LONDON)


def org_relationship_visible(end_date: date | None, now: datetime) -> bool:
    """R-A2: an organisational relationship shows until midnight at the end of its end date."""
    return end_date is None or now < org_relationship_visible_until(end_date)


@dataclass(frozen=True)
class TrayEntry:
    """A case waiting on a team's Planned Work Tray (R-T1..R-T7)."""

    entry_id: str
    person_id: str
    team_id: str
    priority: Level
    urgent: bool
    complexity: Level
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
    matrix_rag: Rag | None = None  # R-T3: the matrix's rating; `rag` differs only by professional judgement
    rag_override_reason: str | None = None
    rag_overridden_by: str | None = None
    rag_overridden_at: datetime | None = None
    next_review_reason: str | None = None  # R-T5: set when the next review date was chosen by hand
    next_review_set_by: str | None = None
    next_review_set_at: datetime | None = None

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
    urgent_actions_done_at: datetime | None = None  # R-T2: Duty's record that the urgent actions are done
    urgent_actions_done_by: str | None = None

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
    future_work: bool = False

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> "Step":
        assignee = item.get("assignee") or {}
        return cls(str(item["step_id"]), str(item.get("step_type", "")), str(item.get("state", "")),
                   str(assignee.get("kind", "")), str(assignee.get("id", "")), bool(item.get("future_work")))


# --- decisions --------------------------------------------------------------------------------


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


def timer_key(kind: str, entry_id: str) -> str:
    return f"{kind}:{entry_id}"


@dataclass(frozen=True)
class Decision:
    """Everything one message changes: events to publish and state to save, nothing done yet."""

    events: tuple[Event, ...] = ()
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
    urgent_actions_done: tuple[datetime, str] | None = None  # R-T2: Duty's record to save (when, by whom)

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
            urgent_actions_done=other.urgent_actions_done or self.urgent_actions_done,
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


# --- checks shared by allocation and the trays ------------------------------------------------


def holds(actor: Actor, roles: frozenset[str]) -> bool:
    """The actor holds one of `roles`, a team-specific role counting as its generic one (a locality social worker)."""
    return bool(held_roles(actor.roles) & roles)


def team_member_reasons(actor: Actor, team_id: str, action: str) -> list[Reason]:
    """A team's managers act on its trays and allocations only: the actor must belong to the team."""
    if team_id in actor.team_ids:
        return []
    return [reason("not_team_member", f"you are not a member of team {team_id}, so you may not {action}"
                                      " (only the team's own managers may)", "actor.team_ids")]


def locality_reasons(ctx: Context, team_id: str) -> list[Reason]:
    """R-A3: a locality team takes only people whose address is in its area (the locality team finder).

    Allowed when the team is not a locality team, or the person's address maps to no locality team.
    """
    if team_id not in ctx.locality_teams or ctx.locality_team is None or ctx.locality_team == team_id:
        return []
    return [reason("wrong_locality",
                   f"the person's address is in the area of locality team {ctx.locality_team}, not {team_id}"
                   f" (R-A3 locality team finder): the case belongs to {ctx.locality_team}", "team_id")]
