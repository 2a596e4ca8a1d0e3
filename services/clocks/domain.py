"""Clock rules, pure: start, pause, resume and stop a clock, and the warning and breach points it fires once.

A clock counts from the Europe/London date of its start event; it is due by the end of its due date
(`length` working days or days later) and breaches at the start of the next day. Each point not yet
reached is a scheduler timer; a point fires once (R-CL6), and a pause moves every point on (R-CL5).
"""

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from services.clocks.calendar import WorkingDays
from services.clocks.definitions import Definition
from shared.calendar import london_date, start_of_day
from shared.events.base import Event
from shared.events.clocks import ClockBreached, ClockPaused, ClockResumed, ClockStarted, ClockStopped, ClockWarning

CLOCK_NAMESPACE = uuid.UUID("3c1f0b52-7d0e-5a8e-9b61-4f2e8d7c6a15")
OWNER = "clocks"
BREACH = "breach"
State = Literal["running", "paused", "stopped"]
Status = Literal["on_track", "at_risk", "breached"]


@dataclass(frozen=True)
class Clock:
    """One running (or paused, or stopped) timescale of one person, with the definition it started with."""

    clock_id: str
    definition: Definition
    definition_version: int
    subject_key: str
    person_id: str
    team_id: str | None
    state: State
    started_at: datetime
    due_date: date
    fired: tuple[str, ...] = ()
    warned_at: datetime | None = None
    breached_at: datetime | None = None
    paused_at: datetime | None = None
    paused_reason: str | None = None
    stopped_at: datetime | None = None
    stopped_by: str | None = None
    version: int = 1

    @property
    def status(self) -> Status:
        if self.breached_at is not None:
            return "breached"
        return "at_risk" if self.warned_at is not None else "on_track"

    @property
    def breach_at(self) -> datetime:
        return start_of_day(self.due_date + timedelta(days=1))


@dataclass(frozen=True)
class Point:
    """A moment a clock tells someone: a warning `days_before` its due date, or the breach."""

    name: str
    at: datetime
    days_before: int | None = None


@dataclass(frozen=True)
class SetTimer:
    key: str
    due_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class CancelTimer:
    key: str


@dataclass(frozen=True)
class Outcome:
    """The clock after a change, the events to publish and the timers to set or cancel."""

    clock: Clock
    events: tuple[Event, ...] = ()
    timers: tuple[SetTimer | CancelTimer, ...] = ()


def clock_id_of(name: str, subject_key: str) -> str:
    """The same clock for every delivery of its start event: a name and the id of what it times."""
    return str(uuid.uuid5(CLOCK_NAMESPACE, f"{name}\n{subject_key}"))


def timer_key(clock_id: str, point: str) -> str:
    return f"clock:{clock_id}:{point}"


def due_date_of(definition: Definition, start: date, days: WorkingDays, dated: date | None = None) -> date:
    """R-CL2: `length` working days or days after the start date (day 0), or after the date in the start event's
    `counted_from` field when it gives one (R-CL8); R-CL9: the date in its `due_on` field, however late the clock
    starts."""
    count = definition.length.count
    if count is None:
        assert dated is not None, "a clock due on a date starts only with its date"
        return dated
    origin = dated or start
    if definition.length.unit == "working_days":
        return days.add(origin, count)
    return origin + timedelta(days=count)


def _before(definition: Definition, due: date, count: int, days: WorkingDays) -> date:
    if definition.length.unit == "working_days":
        return days.add(due, -count)
    return due - timedelta(days=count)


def _later(definition: Definition, due: date, count: int, days: WorkingDays) -> date:
    if definition.length.unit == "working_days":
        return days.add(due, count)
    return due + timedelta(days=count)


def points(clock: Clock, days: WorkingDays) -> list[Point]:
    """Every point of the clock not yet fired, earliest first: warnings at the start of their day, then breach."""
    found = [Point(f"warning-{before}", start_of_day(_before(clock.definition, clock.due_date, before, days)), before)
             for before in sorted(set(clock.definition.warnings), reverse=True)]
    found.append(Point(BREACH, clock.breach_at))
    return [p for p in found if p.name not in clock.fired]


def _set_timers(clock: Clock, days: WorkingDays) -> tuple[SetTimer, ...]:
    return tuple(SetTimer(timer_key(clock.clock_id, p.name), p.at, {"clock_id": clock.clock_id, "point": p.name})
                 for p in points(clock, days))


def _cancel_timers(clock: Clock, days: WorkingDays) -> tuple[CancelTimer, ...]:
    return tuple(CancelTimer(timer_key(clock.clock_id, p.name)) for p in points(clock, days))


def _common(clock: Clock) -> dict[str, Any]:
    d = clock.definition
    return {"clock_id": clock.clock_id, "clock": d.name, "title": d.title, "rule": d.rule,
            "person_id": clock.person_id, "team_id": clock.team_id, "definition_version": clock.definition_version}


def start(definition: Definition, version: int, *, subject_key: str, person_id: str, team_id: str | None,
          at: datetime, days: WorkingDays, dated: date | None = None) -> Outcome:
    """A new clock from its start event's time (R-CL1), with a timer for each warning and the breach; `dated` is
    the date in the start event's field its length names (R-CL8, R-CL9)."""
    day = london_date(at)
    clock = Clock(clock_id_of(definition.name, subject_key), definition, version, subject_key, person_id, team_id,
                  "running", at, due_date_of(definition, day, days, dated))
    length = definition.length.count
    started = ClockStarted(**_common(clock), started_at=at, unit=definition.length.unit,
                           length=length if length is not None else (clock.due_date - day).days,
                           due_date=clock.due_date, breach_at=clock.breach_at)
    return Outcome(clock, (started,), _set_timers(clock, days))


def stop(clock: Clock, *, at: datetime, by: str, days: WorkingDays) -> Outcome | None:
    """The work is done: no more warnings; None when already stopped."""
    if clock.state == "stopped":
        return None
    timers = _cancel_timers(clock, days) if clock.state == "running" else ()
    stopped = replace(clock, state="stopped", stopped_at=at, stopped_by=by, version=clock.version + 1)
    event = ClockStopped(**_common(clock), stopped_at=at, stopped_by=by, due_date=clock.due_date,
                         breached=clock.breached_at is not None)
    return Outcome(stopped, (event,), timers)


def pause(clock: Clock, *, at: datetime, reason: str, days: WorkingDays) -> Outcome | None:
    """R-CL5: the clock stops counting, saying why and since when; its timers are withdrawn. None unless running."""
    if clock.state != "running":
        return None
    paused = replace(clock, state="paused", paused_at=at, paused_reason=reason, version=clock.version + 1)
    return Outcome(paused, (ClockPaused(**_common(clock), paused_at=at, reason=reason),), _cancel_timers(clock, days))


def paused_days(clock: Clock, resumed_at: datetime, days: WorkingDays) -> int:
    """The days a pause lasted in the clock's unit: from the pause's date up to, not including, the resume's."""
    assert clock.paused_at is not None
    since, until = london_date(clock.paused_at), london_date(resumed_at)
    if clock.definition.length.unit == "working_days":
        return days.between(since, until)
    return max(0, (until - since).days)


def resume(clock: Clock, *, at: datetime, days: WorkingDays) -> Outcome | None:
    """R-CL5: the due date moves on by the paused days and the remaining points are set again. None unless paused."""
    if clock.state != "paused":
        return None
    lost = paused_days(clock, at, days)
    moved = replace(clock, state="running", due_date=_later(clock.definition, clock.due_date, lost, days),
                    paused_at=None, paused_reason=None, version=clock.version + 1)
    event = ClockResumed(**_common(moved), resumed_at=at, paused_days=lost, due_date=moved.due_date,
                         breach_at=moved.breach_at)
    return Outcome(moved, (event,), _set_timers(moved, days))


def fire(clock: Clock, *, point: str, due_at: datetime, now: datetime, days: WorkingDays) -> Outcome | None:
    """R-CL6: a warning or the breach, once. None for a clock not running, a point already fired, a timer
    set for a point since moved (a pause and resume set it again), or a warning come after the breach (its
    timer.due re-sent late): the manager is not told a breached clock is at risk."""
    if clock.state != "running" or (point != BREACH and clock.breached_at is not None):
        return None
    current = next((p for p in points(clock, days) if p.name == point), None)
    if current is None or current.at != due_at:
        return None
    fired = (*clock.fired, point)
    common = {**_common(clock), "due_date": clock.due_date, "concerns": clock.definition.concerns}
    if point == BREACH:
        return Outcome(replace(clock, fired=fired, breached_at=now, version=clock.version + 1),
                       (ClockBreached(**common, breached_at=now),))
    assert current.days_before is not None  # every point but the breach is a warning
    return Outcome(replace(clock, fired=fired, warned_at=now, version=clock.version + 1),
                   (ClockWarning(**common, unit=clock.definition.length.unit, days_before=current.days_before,
                                 breach_at=clock.breach_at),))


@dataclass(frozen=True)
class Move:
    """What an event does to a clock: the clock's name, the subject it times, and the change."""

    name: str
    subject_key: str
    kind: Literal["stop", "pause", "resume"]
    reason: str | None = None


def moves_of(definitions: list[Definition], topic: str, type_: str, data: dict[str, Any]) -> list[Move]:
    """Every stop, pause and resume an event makes, by clock definition and subject."""
    found: list[Move] = []
    for definition in definitions:
        for kind, triggers in (("stop", definition.stops), ("pause", definition.pauses),
                               ("resume", definition.resumes)):
            for trigger in triggers:
                key = trigger.key_of(data) if trigger.matches(topic, type_, data) else None
                if key is not None:
                    found.append(Move(definition.name, key, kind, getattr(trigger, "reason", None)))  # type: ignore[arg-type]
    return found


def starts_of(definitions: list[Definition], topic: str, type_: str, data: dict[str, Any]) -> list[Definition]:
    """The definitions whose start this event is."""
    return [d for d in definitions if d.starts.matches(topic, type_, data)]
