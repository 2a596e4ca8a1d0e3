"""Commands of `workflow.commands`, with exactly the arguments of docs/contracts.md "Commands"."""

import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from shared.bounds import BoundedJson, HistoryDate, SaneDate
from shared.commands.base import AccessReason, Command, Target

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Priority = Literal["normal", "high", "urgent"]
Section = Annotated[int, Field(ge=0, le=1000)]


class _StepCommand(Command):
    step_id: uuid.UUID


class StartNewStep(Command):
    """Start > New: a new workflow whose first step is `step_type` (R-W1); default assignee self."""

    TYPE: ClassVar[str] = "step.start_new"
    person_id: uuid.UUID
    step_type: Name
    assignee: Target | None = None


class StartStep(_StepCommand):
    """Start an incoming step: it moves to the worker's incomplete work (R-W2)."""

    TYPE: ClassVar[str] = "step.start"


class FinishStep(_StepCommand):
    """Finish a step: mandatory fields, next actions and requests are checked (R-W4, R-NA1, R-RQ2)."""

    TYPE: ClassVar[str] = "step.finish"


class AuthoriseStep(_StepCommand):
    """A manager authorises and finishes a step (R-RQ4, R-RQ5)."""

    TYPE: ClassVar[str] = "step.authorise"


class RefreshPrepopulated(_StepCommand):
    """Refresh the blue cog fields from the person record ("refresh current form", R-W5)."""

    TYPE: ClassVar[str] = "step.refresh_prepopulated"


class AssignStep(_StepCommand):
    """Assign a step to a worker or a team, or on from a team to a worker (R-W3)."""

    TYPE: ClassVar[str] = "step.assign"
    to: Target


class SaveStep(_StepCommand):
    """Save form values, partial allowed; a table is a list of row objects (R-W4, R-W8)."""

    TYPE: ClassVar[str] = "step.save"
    values: BoundedJson = Field(default_factory=dict)
    completed_sections: list[Section] | None = Field(default=None, max_length=100)


class AddForm(_StepCommand):
    """Add an optional form or letter to a step (R-W9)."""

    TYPE: ClassVar[str] = "step.add_form"
    form: Name


class AddNextAction(_StepCommand):
    """Add a next action to a step (R-NA2); the outcome names its `next_action_id`."""

    TYPE: ClassVar[str] = "step.add_next_action"
    action: Name
    assignee: Target | None = None
    send_immediately: bool = False
    scheduled_date: SaneDate | None = None
    reason: Name | None = None
    note: Text | None = None
    priority: Priority = "normal"


class RemoveNextAction(_StepCommand):
    """Remove a next action not yet sent."""

    TYPE: ClassVar[str] = "step.remove_next_action"
    next_action_id: uuid.UUID


class SendRequest(_StepCommand):
    """Send a request (needs a response) from a step to a team or worker (R-RQ1)."""

    TYPE: ClassVar[str] = "step.send_request"
    name: Name
    to: Target | None = None
    note: Text | None = None


class SendNotification(_StepCommand):
    """Send a notification (information only) from a step to a team or worker (R-RQ1)."""

    TYPE: ClassVar[str] = "step.send_notification"
    name: Name
    to: Target | None = None
    note: Text | None = None


class CompleteRequest(Command):
    """The recipient completes a request, which unblocks the step that sent it (R-RQ2)."""

    TYPE: ClassVar[str] = "request.complete"
    request_id: uuid.UUID
    note: Text | None = None


class ReturnStep(_StepCommand):
    """A manager returns a step to its worker with a note (R-RQ4)."""

    TYPE: ClassVar[str] = "step.return"
    note: Text


class RescheduleStep(_StepCommand):
    """Give Future Work another due date; due today or earlier makes it incoming now (R-S1)."""

    TYPE: ClassVar[str] = "step.reschedule"
    due_date: SaneDate
    note: Text | None = None


class CancelStep(_StepCommand):
    """Cancel a step with a reason, only when there is no other option (R-W2)."""

    TYPE: ClassVar[str] = "step.cancel"
    reason: Text


class RecordDeath(Command):
    """Record that a person has died: future work closed with an NFA, open steps listed (R-K8)."""

    TYPE: ClassVar[str] = "person.record_death"
    person_id: uuid.UUID
    date_of_death: HistoryDate
    access_reason: AccessReason | None = None  # without grounds to act on the person (break-glass)


COMMANDS: dict[str, type[Command]] = {
    model.TYPE: model
    for model in (
        StartNewStep, StartStep, FinishStep, AuthoriseStep, RefreshPrepopulated, AssignStep,
        SaveStep, AddForm, AddNextAction, RemoveNextAction, SendRequest, SendNotification,
        CompleteRequest, ReturnStep, CancelStep, RecordDeath, RescheduleStep,
    )
}
