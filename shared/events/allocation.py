"""Events the allocation service publishes on allocation.events."""

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.bounds import Count, FreeText, HistoryDate, IdText, Items, NameText, SaneDate, SaneDatetime, Version
from shared.events.base import Event

Rag = Literal["red", "amber", "green"]
Level = Literal["high", "medium", "low"]


class _Event(Event):
    # Consumers ignore fields they do not know: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Target(BaseModel):
    """A worker or a team."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    kind: Literal["worker", "team"]
    id: IdText


class WorkerRelationshipAdded(_Event):
    """A worker relationship was recorded: the case is in the worker's Allocations (R-A1)."""

    TYPE: ClassVar[str] = "worker_relationship.added"
    relationship_id: IdText
    person_id: IdText
    worker_id: IdText
    relationship: NameText
    start_date: HistoryDate
    actor: IdText


class WorkerRelationshipEnded(_Event):
    """A worker relationship ended: the case left the worker's Allocations at once (R-A1)."""

    TYPE: ClassVar[str] = "worker_relationship.ended"
    relationship_id: IdText
    person_id: IdText
    worker_id: IdText
    end_date: HistoryDate
    end_reason: FreeText | None
    actor: IdText


class OrgRelationshipAdded(_Event):
    """An organisational relationship with a team was recorded (R-A2)."""

    TYPE: ClassVar[str] = "org_relationship.added"
    relationship_id: IdText
    person_id: IdText
    team_id: IdText
    relationship: NameText
    start_date: HistoryDate
    actor: IdText


class OrgRelationshipEnded(_Event):
    """An organisational relationship ended; it shows until `visible_until` (R-A2)."""

    TYPE: ClassVar[str] = "org_relationship.ended"
    relationship_id: IdText
    person_id: IdText
    team_id: IdText
    end_date: HistoryDate
    end_reason: FreeText | None
    visible_until: SaneDatetime
    actor: IdText


class CaseAllocated(_Event):
    """A case was allocated to a worker: relationship recorded, tray entry removed, team work assigned (R-A3)."""

    TYPE: ClassVar[str] = "case.allocated"
    person_id: IdText
    worker_id: IdText
    team_id: IdText
    relationship_id: IdText
    assigned_step_ids: Items[IdText]
    removed_entry_id: IdText | None
    actor: IdText
    removed_review_entry_id: IdText | None = None


class CaseReassigned(_Event):
    """A person's open and future work moved from one worker or team to another (R-A4)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, serialize_by_alias=True)
    TYPE: ClassVar[str] = "case.reassigned"
    person_id: IdText
    from_: Target = Field(alias="from")
    to: Target
    moved_step_ids: Items[IdText]
    ended_relationship_ids: Items[IdText]
    added_relationship_id: IdText | None
    actor: IdText


class TrayEntryAdded(_Event):
    """A case was placed on a team's Planned Work Tray with priority, complexity and RAG (R-T1, R-T3)."""

    TYPE: ClassVar[str] = "tray.entry_added"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    priority: Level
    complexity: Level
    support: IdText
    risk: IdText
    rag: Rag
    placed_at: SaneDatetime
    next_review_at: SaneDatetime
    actor: IdText
    matrix_rag: Rag | None = None  # R-T3: the matrix's; differs from `rag` when overridden by judgement
    rag_override_reason: FreeText | None = None


class TrayEntryReviewed(_Event):
    """A tray entry was reviewed; the next review is rescheduled by its RAG (R-T5)."""

    TYPE: ClassVar[str] = "tray.entry_reviewed"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    contacted: bool
    priority: Level
    complexity: Level
    support: IdText
    risk: IdText
    rag: Rag
    previous_rag: Rag
    increased_risk: bool
    next_review_at: SaneDatetime
    version: Version
    actor: IdText
    matrix_rag: Rag | None = None
    rag_override_reason: FreeText | None = None


class TrayEntryEscalated(_Event):
    """A tray entry was escalated to the Strategic Service Manager (R-T6)."""

    TYPE: ClassVar[str] = "tray.entry_escalated"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    reason: Literal["red_over_a_month", "increased_risk"]
    rag: Rag
    placed_at: SaneDatetime
    actor: IdText


class TrayEntryRemoved(_Event):
    """A case left the tray: allocated, or removed by a manager with a reason."""

    TYPE: ClassVar[str] = "tray.entry_removed"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    reason: FreeText
    days_waiting: Count
    actor: IdText


class TrayNextReviewSet(_Event):
    """An entry's next review was set by hand, with the reason; its review timer moved (R-T5)."""

    TYPE: ClassVar[str] = "tray.next_review_set"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    next_review_at: SaneDatetime
    previous_next_review_at: SaneDatetime
    reason: FreeText
    version: Version
    actor: IdText


class UrgentActionsRecorded(_Event):
    """Duty recorded that the urgent actions of an urgent referral are done: the case may go on a tray (R-T2)."""

    TYPE: ClassVar[str] = "urgent_actions.recorded"
    person_id: IdText
    note: FreeText
    recorded_at: SaneDatetime
    actor: IdText


class TrayReviewDue(_Event):
    """A tray entry's review fell due without a review: it is now overdue (R-T5)."""

    TYPE: ClassVar[str] = "tray.review_due"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    rag: Rag
    due_at: SaneDatetime


class SafeAndWellCheckRequested(_Event):
    """A review could not reach the person: the team is asked to consider a safe and well check (R-T5)."""

    TYPE: ClassVar[str] = "safe_and_well_check.requested"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    actor: IdText


class MessageRequested(_Event):
    """Ask the notifications service to tell a person something by their preferred method (R-T4)."""

    TYPE: ClassVar[str] = "message.requested"
    person_id: IdText
    team_id: IdText
    reason: Literal["pwt_added"]
    channel: IdText | None
    team_contact_number: IdText | None = None
    entry_id: IdText | None = None


class ReviewTrayEntryAdded(_Event):
    """A case was put in a team's Review tray until its rescheduled review falls due (R-T8)."""

    TYPE: ClassVar[str] = "review_tray.entry_added"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    review_due: SaneDate
    reason: FreeText
    added_at: SaneDatetime
    actor: IdText


class ReviewTrayEntryDue(_Event):
    """A Review tray entry's review date came: the case is due for its review (R-T8)."""

    TYPE: ClassVar[str] = "review_tray.entry_due"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    review_due: SaneDate
    due_at: SaneDatetime


class ReviewTrayEntryRescheduled(_Event):
    """The person's next review was rescheduled again: their Review tray entry moved to its new date and team (R-T8)."""

    TYPE: ClassVar[str] = "review_tray.entry_rescheduled"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    review_due: SaneDate
    previous_team_id: IdText
    previous_review_due: SaneDate
    reason: FreeText
    actor: IdText


class ReviewTrayEntryRemoved(_Event):
    """A case left a Review tray: removed by a manager with a reason, allocated, or placed on a PWT (R-T8)."""

    TYPE: ClassVar[str] = "review_tray.entry_removed"
    entry_id: IdText
    person_id: IdText
    team_id: IdText
    review_due: SaneDate
    reason: FreeText
    actor: IdText
