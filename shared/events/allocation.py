"""Events the allocation service publishes on allocation.events."""

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Rag = Literal["red", "amber", "green"]
Level = Literal["high", "medium", "low"]


class _Event(BaseModel):
    # Consumers ignore fields they do not know: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Target(_Event):
    """A worker or a team."""

    kind: Literal["worker", "team"]
    id: str


class WorkerRelationshipAdded(_Event):
    """A worker relationship was recorded: the case is in the worker's Allocations (R-A1)."""

    TYPE: ClassVar[str] = "worker_relationship.added"
    relationship_id: str
    person_id: str
    worker_id: str
    relationship: str
    start_date: date
    actor: str


class WorkerRelationshipEnded(_Event):
    """A worker relationship ended: the case left the worker's Allocations at once (R-A1)."""

    TYPE: ClassVar[str] = "worker_relationship.ended"
    relationship_id: str
    person_id: str
    worker_id: str
    end_date: date
    end_reason: str | None
    actor: str


class OrgRelationshipAdded(_Event):
    """An organisational relationship with a team was recorded (R-A2)."""

    TYPE: ClassVar[str] = "org_relationship.added"
    relationship_id: str
    person_id: str
    team_id: str
    relationship: str
    start_date: date
    actor: str


class OrgRelationshipEnded(_Event):
    """An organisational relationship ended; it shows until `visible_until` (R-A2)."""

    TYPE: ClassVar[str] = "org_relationship.ended"
    relationship_id: str
    person_id: str
    team_id: str
    end_date: date
    end_reason: str | None
    visible_until: datetime
    actor: str


class CaseAllocated(_Event):
    """A case was allocated to a worker: relationship recorded, tray entry removed, team work assigned (R-A3)."""

    TYPE: ClassVar[str] = "case.allocated"
    person_id: str
    worker_id: str
    team_id: str
    relationship_id: str
    assigned_step_ids: list[str]
    removed_entry_id: str | None
    actor: str
    removed_review_entry_id: str | None = None


class CaseReassigned(_Event):
    """A person's open and future work moved from one worker or team to another (R-A4)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, serialize_by_alias=True)
    TYPE: ClassVar[str] = "case.reassigned"
    person_id: str
    from_: Target = Field(alias="from")
    to: Target
    moved_step_ids: list[str]
    ended_relationship_ids: list[str]
    added_relationship_id: str | None
    actor: str


class TrayEntryAdded(_Event):
    """A case was placed on a team's Planned Work Tray with priority, complexity and RAG (R-T1, R-T3)."""

    TYPE: ClassVar[str] = "tray.entry_added"
    entry_id: str
    person_id: str
    team_id: str
    priority: Level
    complexity: Level
    support: str
    risk: str
    rag: Rag
    placed_at: datetime
    next_review_at: datetime
    actor: str


class TrayEntryReviewed(_Event):
    """A tray entry was reviewed; the next review is rescheduled by its RAG (R-T5)."""

    TYPE: ClassVar[str] = "tray.entry_reviewed"
    entry_id: str
    person_id: str
    team_id: str
    contacted: bool
    priority: Level
    complexity: Level
    support: str
    risk: str
    rag: Rag
    previous_rag: Rag
    increased_risk: bool
    next_review_at: datetime
    version: int
    actor: str


class TrayEntryEscalated(_Event):
    """A tray entry was escalated to the Strategic Service Manager (R-T6)."""

    TYPE: ClassVar[str] = "tray.entry_escalated"
    entry_id: str
    person_id: str
    team_id: str
    reason: Literal["red_over_a_month", "increased_risk"]
    rag: Rag
    placed_at: datetime
    actor: str


class TrayEntryRemoved(_Event):
    """A case left the tray: allocated, or removed by a manager with a reason."""

    TYPE: ClassVar[str] = "tray.entry_removed"
    entry_id: str
    person_id: str
    team_id: str
    reason: str
    days_waiting: int
    actor: str


class TrayReviewDue(_Event):
    """A tray entry's review fell due without a review: it is now overdue (R-T5)."""

    TYPE: ClassVar[str] = "tray.review_due"
    entry_id: str
    person_id: str
    team_id: str
    rag: Rag
    due_at: datetime


class SafeAndWellCheckRequested(_Event):
    """A review could not reach the person: the team is asked to consider a safe and well check (R-T5)."""

    TYPE: ClassVar[str] = "safe_and_well_check.requested"
    entry_id: str
    person_id: str
    team_id: str
    actor: str


class MessageRequested(_Event):
    """Ask the notifications service to tell a person something by their preferred method (R-T4)."""

    TYPE: ClassVar[str] = "message.requested"
    person_id: str
    team_id: str
    reason: Literal["pwt_added"]
    channel: str | None
    team_contact_number: str | None = None
    entry_id: str | None = None


class ReviewTrayEntryAdded(_Event):
    """A case was put in a team's Review tray until its rescheduled review falls due (R-T8)."""

    TYPE: ClassVar[str] = "review_tray.entry_added"
    entry_id: str
    person_id: str
    team_id: str
    review_due: date
    reason: str
    added_at: datetime
    actor: str


class ReviewTrayEntryDue(_Event):
    """A Review tray entry's review date came: the case is due for its review (R-T8)."""

    TYPE: ClassVar[str] = "review_tray.entry_due"
    entry_id: str
    person_id: str
    team_id: str
    review_due: date
    due_at: datetime


class ReviewTrayEntryRescheduled(_Event):
    """The person's next review was rescheduled again: their Review tray entry moved to its new date and team (R-T8)."""

    TYPE: ClassVar[str] = "review_tray.entry_rescheduled"
    entry_id: str
    person_id: str
    team_id: str
    review_due: date
    previous_team_id: str
    previous_review_due: date
    reason: str
    actor: str


class ReviewTrayEntryRemoved(_Event):
    """A case left a Review tray: removed by a manager with a reason, allocated, or placed on a PWT (R-T8)."""

    TYPE: ClassVar[str] = "review_tray.entry_removed"
    entry_id: str
    person_id: str
    team_id: str
    review_due: date
    reason: str
    actor: str
