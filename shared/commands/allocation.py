"""Commands of `allocation.commands`, with exactly the arguments of docs/contracts.md "Commands"."""

import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from shared.bounds import HistoryDate, SaneDate
from shared.commands.base import AccessReason, Actor, Command, Id, Target
from shared.commands.workflow import Name, Text

__all__ = ["Actor", "Target", "COMMANDS", "Command"]


def _lower(value: object) -> object:
    # front ends send "High" / "Amber" as shown on screen; the contract's values are lower case
    return value.strip().lower() if isinstance(value, str) else value


Level = Annotated[Literal["high", "medium", "low"], BeforeValidator(_lower)]
Support = Annotated[Literal["none", "moderate", "full"], BeforeValidator(_lower)]
Risk = Annotated[Literal["high", "moderate", "low"], BeforeValidator(_lower)]
Rag = Annotated[Literal["red", "amber", "green"], BeforeValidator(_lower)]
MAX_NOTIFIED = 50  # as a case note's notify list (R-P3)


class _Command(Command):
    # `from` is a Python keyword: the field is `from_`, sent and shown as "from"
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class AddWorkerRelationship(_Command):
    """Record a worker relationship ("Involved Worker"): the case shows in the worker's Allocations (R-A1)."""

    TYPE: ClassVar[str] = "worker_relationship.add"
    person_id: uuid.UUID
    worker_id: Id
    relationship: Name = "Involved Worker"
    start_date: HistoryDate | None = None
    access_reason: AccessReason | None = None  # adding oneself with no grounds yet (R-A6)


class AddOrgRelationship(_Command):
    """Record an organisational relationship ("Involved Team") of a person with a team (R-A2)."""

    TYPE: ClassVar[str] = "org_relationship.add"
    person_id: uuid.UUID
    team_id: Id
    relationship: Name = "Involved Team"
    start_date: HistoryDate | None = None
    access_reason: AccessReason | None = None  # R-A6


class EndWorkerRelationship(_Command):
    """End a worker relationship: the case leaves the worker's Allocations at once (R-A1)."""

    TYPE: ClassVar[str] = "worker_relationship.end"
    relationship_id: uuid.UUID
    end_date: HistoryDate | None = None
    end_reason: Text | None = None


class EndOrgRelationship(_Command):
    """End an organisational relationship: it shows until midnight at the end of its end date (R-A2)."""

    TYPE: ClassVar[str] = "org_relationship.end"
    relationship_id: uuid.UUID
    end_date: HistoryDate | None = None
    end_reason: Text | None = None
    access_reason: AccessReason | None = None  # R-A6


class AllocateCase(_Command):
    """Allocate a case to a worker: the worker relationship, off any tray, team work assigned (R-A3)."""

    TYPE: ClassVar[str] = "case.allocate"
    person_id: uuid.UUID
    worker_id: Id
    team_id: Id


class ReassignCase(_Command):
    """Move a person's incoming, incomplete and future work from one worker or team to another (R-A4)."""

    TYPE: ClassVar[str] = "case.reassign"
    person_id: uuid.UUID
    from_: Target = Field(alias="from")
    to: Target


class AddToTray(_Command):
    """Place a case on a team's Planned Work Tray (R-T1..R-T4); only a Team Manager or Team Leader."""

    TYPE: ClassVar[str] = "tray.add"
    person_id: uuid.UUID
    team_id: Id
    rationale: Text
    priority: Level
    urgent: bool = False
    complexity: Level
    support: Support
    risk: Risk
    # R-T3 professional judgement: a RAG other than the matrix's, always with the reason
    rag_override: Rag | None = None
    rag_override_reason: Text | None = None


class ReviewTrayEntry(_Command):
    """Record a review contact of a tray entry; may change priority, complexity or RAG (R-T5, R-T6).

    By the tray team's Team Managers, Team Leaders, Assistant Team Managers and practitioners; the TM/TL
    who placed the case and every worker in `notify_worker_ids` are notified on its "PWT" case note.
    """

    TYPE: ClassVar[str] = "tray.review"
    entry_id: uuid.UUID
    contacted: bool
    note: Text
    priority: Level | None = None
    complexity: Level | None = None
    support: Support | None = None
    risk: Risk | None = None
    increased_risk: bool = False
    rag_override: Rag | None = None
    rag_override_reason: Text | None = None
    notify_worker_ids: list[Id] = Field(default_factory=list, max_length=MAX_NOTIFIED)


class RemoveFromTray(_Command):
    """Take a case off the tray with a reason."""

    TYPE: ClassVar[str] = "tray.remove"
    entry_id: uuid.UUID
    reason: Text


class SetTrayNextReview(_Command):
    """Set an entry's next review date by hand (worker absence, change of circumstances), with the reason (R-T5)."""

    TYPE: ClassVar[str] = "tray.set_next_review"
    entry_id: uuid.UUID
    next_review_on: SaneDate
    reason: Text


class RecordUrgentActionsDone(_Command):
    """Duty records that the urgent and immediate actions of an urgent referral are done (R-T2)."""

    TYPE: ClassVar[str] = "urgent_actions.record"
    person_id: uuid.UUID
    note: Text


class AddToReviewTray(_Command):
    """Put a case in a team's Review tray until its rescheduled review falls due (R-T8); TM, TL or ATM."""

    TYPE: ClassVar[str] = "review_tray.add"
    person_id: uuid.UUID
    team_id: Id
    review_due: SaneDate
    reason: Text


class RemoveFromReviewTray(_Command):
    """Take a case out of a Review tray with a reason (R-T8); TM, TL or ATM."""

    TYPE: ClassVar[str] = "review_tray.remove"
    entry_id: uuid.UUID
    reason: Text


COMMANDS: dict[str, type[Command]] = {
    model.TYPE: model
    for model in (
        AddWorkerRelationship, EndWorkerRelationship, AddOrgRelationship, EndOrgRelationship,
        AllocateCase, ReassignCase, AddToTray, ReviewTrayEntry, RemoveFromTray, SetTrayNextReview,
        RecordUrgentActionsDone, AddToReviewTray, RemoveFromReviewTray,
    )
}
