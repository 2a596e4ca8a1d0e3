"""Events the notifications service publishes on notifications.events: ids, kinds and channels only."""

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from shared.bounds import Count, FreeText, IdText, NameText, SaneDatetime
from shared.events.base import Event

# "phone": the tray's team was asked to phone (a task in its inbox), R-T4
Channel = Literal["email", "sms", "letter", "phone"]
Addressee = Literal["person", "representative", "referrer"]


class _Event(Event):
    # Consumers ignore fields they do not know: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Recipient(BaseModel):
    """The worker or team whose inbox holds an item."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    kind: Literal["worker", "team"]
    id: IdText


class NotificationDelivered(_Event):
    """A request or notification is in its recipient's inbox (R-RQ1); one per item, however often delivered."""

    TYPE: ClassVar[str] = "notification.delivered"
    request_id: IdText
    kind: Literal["request", "notification"]
    recipient: Recipient
    step_id: IdText
    person_id: IdText
    due_at: SaneDatetime | None = None


class RequestReminder(_Event):
    """An open request passed its due date without being completed: its recipient is reminded once (R-S2)."""

    TYPE: ClassVar[str] = "request.reminder"
    request_id: IdText
    recipient: Recipient
    step_id: IdText
    person_id: IdText
    due_at: SaneDatetime
    sent_at: SaneDatetime


class MessageSent(_Event):
    """A message about a person left for them, their representative or their referrer (email, SMS or a letter a
    provider took: `sent`), a letter was queued for the documents service to print (`queued_for_print`), or the
    team was asked to phone (`phone_call_task`, channel `phone`, with the task's id) (R-T4)."""

    TYPE: ClassVar[str] = "message.sent"
    message_id: IdText
    person_id: IdText
    recipient: Addressee = "person"
    channel: Channel
    status: Literal["sent", "queued_for_print", "phone_call_task"]
    reason: FreeText
    team_id: IdText | None = None
    template: NameText
    attempts: Count
    # what a letter says about the team (R-T4): not personal data; absent from older producers
    team_name: IdText | None = None
    team_number: IdText | None = None
    # seed 004: the regular contact the letter promises ("at least once every two weeks")
    regular_contact: NameText | None = None
    # who took it: notify, smtp, print_queue, or team (a phone call); absent from older producers
    provider: IdText | None = None
    # the preferred channel that could not be used, and why (`no_sms_provider`, `interpreter_needed`…)
    fallback_from: Channel | None = None
    fallback_reason: IdText | None = None
    task_id: IdText | None = None


class MessageFailed(_Event):
    """A message about a person could not be sent to them or their referrer, or its provider could not deliver it
    (`error_code` `notify_permanent-failure`…); `error_code` says why, never with the address (R-T4)."""

    TYPE: ClassVar[str] = "message.failed"
    message_id: IdText
    person_id: IdText
    recipient: Addressee = "person"
    channel: Channel | None
    reason: FreeText
    team_id: IdText | None = None
    error_code: IdText
    attempts: Count
    # the phone call asked of the tray's team instead, so that the person is still told (R-T4)
    task_id: IdText | None = None


class TaskCreated(_Event):
    """A system prompt became a task in a worker's or team's inbox (issue #22 §1): ids and codes only; what it
    says is read from the inbox."""

    TYPE: ClassVar[str] = "task.created"
    task_id: IdText
    code: IdText
    rule: IdText
    recipient: Recipient
    person_id: IdText
    step_id: IdText | None = None
    due_at: SaneDatetime | None = None


class TaskCompleted(_Event):
    """A task was done: by its recipient worker (`task.complete`, `how` = `done`), or by what it asked for
    happening (`how` names it: `step_finished`, `request_completed`, `reviewed`…; `by` = whoever did that)."""

    TYPE: ClassVar[str] = "task.completed"
    task_id: IdText
    code: IdText
    recipient: Recipient
    person_id: IdText
    by: IdText
    how: IdText
    note: FreeText | None = None
