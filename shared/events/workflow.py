"""Events the workflow service publishes on workflow.events."""

from datetime import date
from typing import ClassVar, Literal

from pydantic import BaseModel


class Assignee(BaseModel):
    """Who a step is assigned to: a worker or a team (R-W3)."""

    kind: Literal["worker", "team"]
    id: str


class WorkflowStarted(BaseModel):
    """A new workflow began for a person (R-W1)."""

    TYPE: ClassVar[str] = "workflow.started"
    workflow_id: str
    person_id: str
    first_step_type: str
    origin: Literal["referral", "start_new"]
    referral_id: str | None = None


class StepCreated(BaseModel):
    """A step was created as incoming (or future) work for its assignee."""

    TYPE: ClassVar[str] = "step.created"
    step_id: str
    workflow_id: str
    person_id: str
    step_type: str
    assignee: Assignee
    state: Literal["incoming", "future"]
    priority: Literal["normal", "high", "urgent"]
    due_date: date | None = None
    linked_person_id: str | None = None
    pack_version: int
