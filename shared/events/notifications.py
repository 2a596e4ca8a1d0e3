"""Events the notifications service publishes on notifications.events: ids, kinds and channels only."""

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

Channel = Literal["email", "sms", "letter"]
Addressee = Literal["person", "referrer"]


class _Event(BaseModel):
    # Consumers ignore fields they do not know: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Recipient(_Event):
    """The worker or team whose inbox holds an item."""

    kind: Literal["worker", "team"]
    id: str


class NotificationDelivered(_Event):
    """A request or notification is in its recipient's inbox (R-RQ1); one per item, however often delivered."""

    TYPE: ClassVar[str] = "notification.delivered"
    request_id: str
    kind: Literal["request", "notification"]
    recipient: Recipient
    step_id: str
    person_id: str
    due_at: datetime | None = None


class RequestReminder(_Event):
    """An open request passed its due date without being completed: its recipient is reminded once (R-S2)."""

    TYPE: ClassVar[str] = "request.reminder"
    request_id: str
    recipient: Recipient
    step_id: str
    person_id: str
    due_at: datetime
    sent_at: datetime


class MessageSent(_Event):
    """A message about a person left for them or their referrer (email or SMS), or a letter was queued (R-T4)."""

    TYPE: ClassVar[str] = "message.sent"
    message_id: str
    person_id: str
    recipient: Addressee = "person"
    channel: Channel
    status: Literal["sent", "queued_for_print"]
    reason: str
    team_id: str | None = None
    template: str
    attempts: int
    # what a letter says about the team (R-T4): not personal data; absent from older producers
    team_name: str | None = None
    team_number: str | None = None


class MessageFailed(_Event):
    """A message about a person could not be sent to them or their referrer; `error_code` says why, never with
    the address (R-T4)."""

    TYPE: ClassVar[str] = "message.failed"
    message_id: str
    person_id: str
    recipient: Addressee = "person"
    channel: Channel | None
    reason: str
    team_id: str | None = None
    error_code: str
    attempts: int
