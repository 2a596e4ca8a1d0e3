"""Events the workflow service publishes on workflow.events."""

from typing import ClassVar, Literal

from pydantic import BaseModel

from shared.bounds import BoundedJson, Count, FreeText, HistoryDate, IdText, Items, NameText, SaneDate, Version
from shared.events.base import Event

Priority = Literal["normal", "high", "urgent"]


class Assignee(BaseModel):
    """Who a step is assigned to: a worker or a team (R-W3)."""

    kind: Literal["worker", "team"]
    id: IdText


class WorkflowStarted(Event):
    """A new workflow began for a person (R-W1)."""

    TYPE: ClassVar[str] = "workflow.started"
    workflow_id: IdText
    person_id: IdText
    first_step_type: NameText
    origin: Literal["referral", "start_new"]
    referral_id: IdText | None = None


class StepCreated(Event):
    """A step was created as incoming (or future) work for its assignee."""

    TYPE: ClassVar[str] = "step.created"
    step_id: IdText
    workflow_id: IdText
    person_id: IdText
    step_type: NameText
    assignee: Assignee
    state: Literal["incoming", "future"]
    priority: Priority
    due_date: SaneDate | None = None
    linked_person_id: IdText | None = None
    pack_version: Count
    provenance: BoundedJson | None = None


class _StepEvent(Event):
    step_id: IdText
    person_id: IdText
    actor: IdText
    version: Version


class StepStarted(_StepEvent):
    """A worker started a step: it is now in their incomplete work (R-W2)."""

    TYPE: ClassVar[str] = "step.started"
    assignee: Assignee


class StepAssigned(_StepEvent):
    """A step was assigned to a worker or team, or on from a team to a worker (R-W3)."""

    TYPE: ClassVar[str] = "step.assigned"
    previous: Assignee
    assignee: Assignee
    state: NameText


class StepSaved(_StepEvent):
    """Form values were saved (partial saves allowed); the keys sent and those that changed (R-W4)."""

    TYPE: ClassVar[str] = "step.saved"
    VERSION: ClassVar[int] = 2  # v2 adds `changed_fields` (#20)
    fields: Items[IdText]
    completed_sections: Items[Count]
    # #20: the keys whose value this save changed (`fields` are the keys sent); no values: the step's
    # history (GET /steps/{id}) says from what to what
    changed_fields: Items[IdText] = []


class StepPrepopulatedRefreshed(_StepEvent):
    """Prepopulated fields were refreshed from the person record (R-W5)."""

    TYPE: ClassVar[str] = "step.prepopulated_refreshed"
    fields: Items[IdText]


class StepFormAdded(_StepEvent):
    """An optional form or letter was added to a step (R-W9)."""

    TYPE: ClassVar[str] = "step.form_added"
    form: NameText
    kind: NameText


class NextActionAdded(_StepEvent):
    """A next action was added to a step (R-NA2)."""

    TYPE: ClassVar[str] = "next_action.added"
    next_action_id: IdText
    action: NameText
    nfa: bool
    target_step_type: NameText | None
    assignee: Assignee | None
    send_immediately: bool
    scheduled_date: SaneDate | None
    reason: FreeText | None
    priority: Priority


class NextActionRemoved(_StepEvent):
    """A next action not yet sent was removed."""

    TYPE: ClassVar[str] = "next_action.removed"
    next_action_id: IdText
    action: NameText


class NextActionSent(_StepEvent):
    """A next action was sent immediately: its step exists before this step finishes (R-NA3)."""

    TYPE: ClassVar[str] = "next_action.sent"
    next_action_id: IdText
    action: NameText
    created_step_id: IdText


class RequestRaised(_StepEvent):
    """A request was sent from a step to a team or worker; it needs a response (R-RQ1)."""

    TYPE: ClassVar[str] = "request.raised"
    request_id: IdText
    step_type: NameText
    name: NameText
    required: bool
    to: Assignee
    note: FreeText | None
    step_state: NameText


class NotificationSent(_StepEvent):
    """A notification (information only) was sent from a step to a team or worker (R-RQ1)."""

    TYPE: ClassVar[str] = "notification.sent"
    request_id: IdText
    step_type: NameText
    name: NameText
    to: Assignee
    note: FreeText | None


class RequestCompleted(_StepEvent):
    """The recipient completed a request; the step that sent it may finish (R-RQ2)."""

    TYPE: ClassVar[str] = "request.completed"
    request_id: IdText
    name: NameText
    note: FreeText | None


class FinishedAction(BaseModel):
    """A next action as a finished step records it."""

    next_action_id: IdText
    action: NameText
    nfa: bool
    target_step_type: NameText | None
    assignee: Assignee | None
    reason: FreeText | None
    created_step_id: IdText | None
    sent_immediately: bool


class StepWarning(BaseModel):
    """Something the worker should know that does not stop the step (e.g. R-K3)."""

    code: IdText
    message: FreeText
    step_id: IdText | None = None


class StepFinished(_StepEvent):
    """A step was finished and locked, with its next actions (R-W2, R-NA3) and any warnings (R-K3)."""

    TYPE: ClassVar[str] = "step.finished"
    workflow_id: IdText
    step_type: NameText
    next_actions: Items[FinishedAction]
    authorised: bool = False
    warnings: Items[StepWarning] = []
    warned_worker_ids: Items[IdText] = []
    # R-K1: a closure step's other teams (or workers) still involved with the person, each told by a task
    told_of_closure: Items[Assignee] = []
    # R-K11: a signed-off document (statement of need, support plan, review) goes to the person: who sends it
    send_to_person: Assignee | None = None


class StepDue(_StepEvent):
    """Future Work fell due: the step is now incoming work to allocate (R-S1)."""

    TYPE: ClassVar[str] = "step.due"
    workflow_id: IdText
    step_type: NameText
    assignee: Assignee
    state: Literal["incoming"] = "incoming"
    priority: Priority
    due_date: SaneDate | None


class StepRescheduled(_StepEvent):
    """Future Work was given another due date; due today or earlier it is incoming at once (R-S1)."""

    TYPE: ClassVar[str] = "step.rescheduled"
    step_type: NameText
    assignee: Assignee
    previous_due_date: SaneDate | None
    due_date: SaneDate
    state: Literal["future", "incoming"]
    note: FreeText | None = None


class StepRenewalDue(_StepEvent):
    """An open step must be renewed or closed now, e.g. Professional Support every 4 weeks (R-K6)."""

    TYPE: ClassVar[str] = "step.renewal_due"
    step_type: NameText
    assignee: Assignee
    renewal_due_date: SaneDate
    renewal_number: Count
    next_renewal_date: SaneDate


class StepReturned(_StepEvent):
    """A manager returned a step to its worker with a note (R-RQ4)."""

    TYPE: ClassVar[str] = "step.returned"
    note: FreeText
    assignee: Assignee


class StepCancelled(_StepEvent):
    """A step was cancelled with a reason (R-W2)."""

    TYPE: ClassVar[str] = "step.cancelled"
    reason: FreeText


class CaseClosed(Event):
    """The person's case was fully closed (R-C5): every workflow of the person ended."""

    TYPE: ClassVar[str] = "case.closed"
    person_id: IdText
    closed_by_step_id: IdText
    actor: IdText
    workflow_ids: Items[IdText]


class CaseClosureWithdrawn(Event):
    """A full case closure step was cancelled (R-K1): the case is not closing after all, so the teams told that
    their involvement would end (`told_of_closure`) are told no more."""

    TYPE: ClassVar[str] = "case.closure_withdrawn"
    person_id: IdText
    workflow_id: IdText
    step_id: IdText
    actor: IdText
    reason: FreeText


class OpenStepListed(BaseModel):
    """A step still open, listed for the manager."""

    step_id: IdText
    step_type: NameText
    state: NameText


class PersonDeathRecorded(Event):
    """A death was recorded: future work closed with an NFA, open steps listed (R-K8)."""

    TYPE: ClassVar[str] = "person.death_recorded"
    person_id: IdText
    date_of_death: HistoryDate
    actor: IdText
    closed_future_step_ids: Items[IdText]
    open_steps: Items[OpenStepListed]


