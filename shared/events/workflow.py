"""Events the workflow service publishes on workflow.events."""

from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

Priority = Literal["normal", "high", "urgent"]


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
    priority: Priority
    due_date: date | None = None
    linked_person_id: str | None = None
    pack_version: int
    provenance: dict[str, Any] | None = None


class _StepEvent(BaseModel):
    step_id: str
    person_id: str
    actor: str
    version: int


class StepStarted(_StepEvent):
    """A worker started a step: it is now in their incomplete work (R-W2)."""

    TYPE: ClassVar[str] = "step.started"
    assignee: Assignee


class StepAssigned(_StepEvent):
    """A step was assigned to a worker or team, or on from a team to a worker (R-W3)."""

    TYPE: ClassVar[str] = "step.assigned"
    previous: Assignee
    assignee: Assignee
    state: str


class StepSaved(_StepEvent):
    """Form values were saved (partial saves allowed); the keys sent and those that changed (R-W4)."""

    TYPE: ClassVar[str] = "step.saved"
    VERSION: ClassVar[int] = 2  # v2 adds `changed_fields` (#20)
    fields: list[str]
    completed_sections: list[int]
    # #20: the keys whose value this save changed (`fields` are the keys sent); no values: the step's
    # history (GET /steps/{id}) says from what to what
    changed_fields: list[str] = []


class StepPrepopulatedRefreshed(_StepEvent):
    """Prepopulated fields were refreshed from the person record (R-W5)."""

    TYPE: ClassVar[str] = "step.prepopulated_refreshed"
    fields: list[str]


class StepFormAdded(_StepEvent):
    """An optional form or letter was added to a step (R-W9)."""

    TYPE: ClassVar[str] = "step.form_added"
    form: str
    kind: str


class NextActionAdded(_StepEvent):
    """A next action was added to a step (R-NA2)."""

    TYPE: ClassVar[str] = "next_action.added"
    next_action_id: str
    action: str
    nfa: bool
    target_step_type: str | None
    assignee: Assignee | None
    send_immediately: bool
    scheduled_date: date | None
    reason: str | None
    priority: Priority


class NextActionRemoved(_StepEvent):
    """A next action not yet sent was removed."""

    TYPE: ClassVar[str] = "next_action.removed"
    next_action_id: str
    action: str


class NextActionSent(_StepEvent):
    """A next action was sent immediately: its step exists before this step finishes (R-NA3)."""

    TYPE: ClassVar[str] = "next_action.sent"
    next_action_id: str
    action: str
    created_step_id: str


class RequestRaised(_StepEvent):
    """A request was sent from a step to a team or worker; it needs a response (R-RQ1)."""

    TYPE: ClassVar[str] = "request.raised"
    request_id: str
    step_type: str
    name: str
    required: bool
    to: Assignee
    note: str | None
    step_state: str


class NotificationSent(_StepEvent):
    """A notification (information only) was sent from a step to a team or worker (R-RQ1)."""

    TYPE: ClassVar[str] = "notification.sent"
    request_id: str
    step_type: str
    name: str
    to: Assignee
    note: str | None


class RequestCompleted(_StepEvent):
    """The recipient completed a request; the step that sent it may finish (R-RQ2)."""

    TYPE: ClassVar[str] = "request.completed"
    request_id: str
    name: str
    note: str | None


class FinishedAction(BaseModel):
    """A next action as a finished step records it."""

    next_action_id: str
    action: str
    nfa: bool
    target_step_type: str | None
    assignee: Assignee | None
    reason: str | None
    created_step_id: str | None
    sent_immediately: bool


class StepWarning(BaseModel):
    """Something the worker should know that does not stop the step (e.g. R-K3)."""

    code: str
    message: str
    step_id: str | None = None


class StepFinished(_StepEvent):
    """A step was finished and locked, with its next actions (R-W2, R-NA3) and any warnings (R-K3)."""

    TYPE: ClassVar[str] = "step.finished"
    workflow_id: str
    step_type: str
    next_actions: list[FinishedAction]
    authorised: bool = False
    warnings: list[StepWarning] = []
    warned_worker_ids: list[str] = []


class StepDue(_StepEvent):
    """Future Work fell due: the step is now incoming work to allocate (R-S1)."""

    TYPE: ClassVar[str] = "step.due"
    workflow_id: str
    step_type: str
    assignee: Assignee
    state: Literal["incoming"] = "incoming"
    priority: Priority
    due_date: date | None


class StepRescheduled(_StepEvent):
    """Future Work was given another due date; due today or earlier it is incoming at once (R-S1)."""

    TYPE: ClassVar[str] = "step.rescheduled"
    step_type: str
    assignee: Assignee
    previous_due_date: date | None
    due_date: date
    state: Literal["future", "incoming"]
    note: str | None = None


class StepRenewalDue(_StepEvent):
    """An open step must be renewed or closed now, e.g. Professional Support every 4 weeks (R-K6)."""

    TYPE: ClassVar[str] = "step.renewal_due"
    step_type: str
    assignee: Assignee
    renewal_due_date: date
    renewal_number: int
    next_renewal_date: date


class StepReturned(_StepEvent):
    """A manager returned a step to its worker with a note (R-RQ4)."""

    TYPE: ClassVar[str] = "step.returned"
    note: str
    assignee: Assignee


class StepCancelled(_StepEvent):
    """A step was cancelled with a reason (R-W2)."""

    TYPE: ClassVar[str] = "step.cancelled"
    reason: str


class CaseClosed(BaseModel):
    """The person's case was fully closed (R-C5): every workflow of the person ended."""

    TYPE: ClassVar[str] = "case.closed"
    person_id: str
    closed_by_step_id: str
    actor: str
    workflow_ids: list[str]


class OpenStepListed(BaseModel):
    """A step still open, listed for the manager."""

    step_id: str
    step_type: str
    state: str


class PersonDeathRecorded(BaseModel):
    """A death was recorded: future work closed with an NFA, open steps listed (R-K8)."""

    TYPE: ClassVar[str] = "person.death_recorded"
    person_id: str
    date_of_death: date
    actor: str
    closed_future_step_ids: list[str]
    open_steps: list[OpenStepListed]


