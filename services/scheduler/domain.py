"""Timer rules, pure: setting moves a key, cancelling withdraws it, and what is due at `now`."""

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.envelope import Undecodable, describe_errors
from shared.events.scheduler import TimerCancel, TimerDue, TimerSet

# timer.due ids derive from the timer.set that set the timer: a repeat firing carries the same id.
DUE_NAMESPACE = uuid.UUID("6f0d7f8e-2a4b-5c1d-9e3f-7a8b9c0d1e2f")

Command = TimerSet | TimerCancel
COMMANDS: dict[str, type[BaseModel]] = {TimerSet.TYPE: TimerSet, TimerCancel.TYPE: TimerCancel}


@dataclass(frozen=True)
class TimerLimits:
    """What a `timer.set` may ask for (SCHEDULER_* settings): a due time in a sane window, a small payload.

    A due time far in the past or future is a producer's bug, never a plan: year 1 was stored as
    PostgreSQL's -infinity and stopped every timer from firing (issue #20).
    """

    earliest_due_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    latest_due_at: datetime = datetime(2200, 1, 1, tzinfo=UTC)
    max_payload_bytes: int = 16_384
    max_payload_depth: int = 8


@dataclass(frozen=True)
class Timer:
    """A timer waiting to fall due; `subject` is the Kafka key its `timer.due` travels under."""

    key: str
    due_at: datetime
    owner: str
    payload: dict[str, Any]
    subject: str
    set_by: uuid.UUID
    correlation_id: str | None
    generation: int
    created_at: datetime
    updated_at: datetime


def parse_command(type_: str, data: dict[str, Any], limits: TimerLimits = TimerLimits()) -> Command | None:
    """The command a message carries; None for a type the scheduler does not handle; Undecodable (to the
    dead-letter topic) naming every fault of invalid data or data beyond the limits."""
    model = COMMANDS.get(type_)
    if model is None:
        return None
    try:
        command: Command = model.model_validate(data)  # type: ignore[assignment]
    except ValidationError as exc:
        raise Undecodable(f"invalid {type_}: {describe_errors(exc)}") from None
    faults = beyond_limits(command, limits) if isinstance(command, TimerSet) else []
    if faults:
        raise Undecodable(f"invalid {type_}: " + "; ".join(faults))
    return command


def beyond_limits(command: TimerSet, limits: TimerLimits) -> list[str]:
    """Every way a `timer.set` asks for more than the limits allow, by field (never echoing values)."""
    faults = []
    if not limits.earliest_due_at <= command.due_at <= limits.latest_due_at:
        faults.append(f"due_at: must be between {limits.earliest_due_at.isoformat()}"
                      f" and {limits.latest_due_at.isoformat()}")
    if _depth(command.payload) > limits.max_payload_depth:
        faults.append(f"payload: nested deeper than {limits.max_payload_depth} levels")
    elif len(json.dumps(command.payload)) > limits.max_payload_bytes:
        faults.append(f"payload: larger than {limits.max_payload_bytes} bytes as JSON")
    return faults


def _depth(value: Any) -> int:
    """How deep lists and objects nest (the envelope's JSON parser already bounds recursion)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def ordering_key(subject: str | None, kafka_key: str | None, timer_key: str) -> str:
    """The owner's ordering key (e.g. a person id): the envelope subject, else the Kafka key, else the timer key."""
    return subject or kafka_key or timer_key


def set_timer(
    existing: Timer | None,
    command: TimerSet,
    *,
    subject: str,
    message_id: uuid.UUID,
    correlation_id: str | None,
    now: datetime,
) -> Timer:
    """The timer after `timer.set`: a new one, or the existing key moved (a new generation)."""
    due_at = command.due_at.astimezone(UTC)
    if existing is None:
        return Timer(command.key, due_at, command.owner, dict(command.payload), subject, message_id,
                     correlation_id, generation=1, created_at=now, updated_at=now)
    return replace(existing, due_at=due_at, owner=command.owner, payload=dict(command.payload),
                   subject=subject, set_by=message_id, correlation_id=correlation_id,
                   generation=existing.generation + 1, updated_at=now)


def cancel_timer(existing: Timer | None, command: TimerCancel) -> Timer | None:
    """The timer `timer.cancel` withdraws, or None when the key is not (or no longer) set."""
    if existing is None or existing.key != command.key:
        return None
    return existing


def is_due(timer: Timer, now: datetime) -> bool:
    return timer.due_at <= now


def due(timers: Iterable[Timer], now: datetime, limit: int) -> list[Timer]:
    """The timers to fire at `now`, earliest first, at most `limit` (the store's claim query)."""
    ready = sorted((t for t in timers if is_due(t, now)), key=lambda t: (t.due_at, t.key))
    return ready[:limit]


def fire(timer: Timer, now: datetime) -> TimerDue:
    """The `timer.due` of a timer fired at `now`."""
    return TimerDue(key=timer.key, due_at=timer.due_at, owner=timer.owner, payload=timer.payload,
                    fired_at=now.astimezone(UTC))


def lateness(timer: Timer, now: datetime) -> float:
    """Seconds between when the timer was due and when it fired (0 for none early)."""
    return max(0.0, (now - timer.due_at).total_seconds())


def due_message_id(key: str, set_by: uuid.UUID) -> uuid.UUID:
    """The `timer.due` id: the same for every firing of one setting of a key."""
    return uuid.uuid5(DUE_NAMESPACE, f"{key}\n{set_by}")


def wake_at(due_at: datetime, now: datetime, within: timedelta) -> datetime | None:
    """When to look again for a timer set now: its due time if that is sooner than the next poll."""
    if due_at - now >= within:
        return None
    return max(due_at, now)
