"""Messages of the scheduler service: `timer.set` / `timer.cancel` in, `timer.due` out."""

from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints

from shared.events.base import Event

# A timer key or owner: one line of printable text, compared exactly (no trimming).
TimerKey = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Owner = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class _Message(Event):
    # Unknown fields are ignored: producers may add optional fields (docs/architecture.md "Style").
    model_config = ConfigDict(frozen=True, extra="ignore")


class TimerSet(_Message):
    """Ask for one `timer.due` at `due_at`; setting a key that is already set moves it."""

    TYPE: ClassVar[str] = "timer.set"
    key: TimerKey
    due_at: AwareDatetime
    owner: Owner = Field(description="The service that set the timer; it filters scheduler.due on this.")
    payload: dict[str, Any] = Field(default_factory=dict)


class TimerCancel(_Message):
    """Withdraw the timer with this key; nothing happens if it has fired or was never set."""

    TYPE: ClassVar[str] = "timer.cancel"
    key: TimerKey


class TimerDue(_Message):
    """A timer fell due: published once on scheduler.due, keyed like the `timer.set` that set it."""

    TYPE: ClassVar[str] = "timer.due"
    key: TimerKey
    due_at: AwareDatetime
    owner: Owner
    payload: dict[str, Any] = Field(default_factory=dict)
    fired_at: AwareDatetime
