"""Events the clocks service publishes on clocks.events: statutory clocks started, paused, warned, breached."""

from typing import ClassVar, Literal

from pydantic import ConfigDict

from shared.bounds import Count, IdText, NameText, SaneDate, SaneDatetime, Version
from shared.events.base import Event

Unit = Literal["working_days", "days"]


class _ClockEvent(Event):
    # Consumers ignore fields they do not know: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")
    clock_id: IdText
    clock: IdText
    title: NameText
    rule: IdText
    person_id: IdText
    team_id: IdText | None
    definition_version: Version


class ClockStarted(_ClockEvent):
    """A timescale began (R-CL1): due by the end of `due_date`, breached at `breach_at`."""

    TYPE: ClassVar[str] = "clock.started"
    started_at: SaneDatetime
    unit: Unit
    length: Count
    due_date: SaneDate
    breach_at: SaneDatetime


class ClockPaused(_ClockEvent):
    """A running clock stopped counting, and why (R-CL5)."""

    TYPE: ClassVar[str] = "clock.paused"
    paused_at: SaneDatetime
    reason: NameText


class ClockResumed(_ClockEvent):
    """A paused clock counts again; its due date moved by the paused days in its unit (R-CL5)."""

    TYPE: ClassVar[str] = "clock.resumed"
    resumed_at: SaneDatetime
    paused_days: Count
    due_date: SaneDate
    breach_at: SaneDatetime


class ClockStopped(_ClockEvent):
    """The work was done (or ended): the clock stopped, in time or after breaching."""

    TYPE: ClassVar[str] = "clock.stopped"
    stopped_at: SaneDatetime
    stopped_by: NameText
    due_date: SaneDate
    breached: bool


class ClockWarning(_ClockEvent):
    """A clock is at risk: `days_before` (in its unit) remain before its due date (R-CL6)."""

    TYPE: ClassVar[str] = "clock.warning"
    unit: Unit
    days_before: Count
    due_date: SaneDate
    breach_at: SaneDatetime
    concerns: Literal["team_manager"]


class ClockBreached(_ClockEvent):
    """A clock's due date passed with the work not done (R-CL6)."""

    TYPE: ClassVar[str] = "clock.breached"
    due_date: SaneDate
    breached_at: SaneDatetime
    concerns: Literal["team_manager"]
