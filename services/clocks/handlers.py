"""Subscribers of the clocks service: the events named in clocks.yaml start, stop, pause and resume clocks;
their scheduler timers fire the warnings and breaches (R-CL1, R-CL6)."""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg
from faststream.kafka import KafkaRouter
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.clocks import domain, insights, store
from services.clocks.calendar import WorkingDays
from services.clocks.definitions import ClocksFile, Definition, field_at
from shared import inbox, metrics, outbox, topics
from shared.bounds import IdText, SaneDate
from shared.broker import Context, KafkaMessage, subscriber
from shared.envelope import Envelope, Undecodable, decode, describe_errors, parse
from shared.events.scheduler import TimerCancel, TimerDue, TimerSet

EMIT = outbox.Emitter("tessera/clocks")
GROUP = "clocks"
log = logging.getLogger(__name__)
router = KafkaRouter()


@dataclass(frozen=True)
class Timescales:
    """What the handlers count with: the clocks file (this version starts new clocks) and the working days."""

    clocks: ClocksFile
    days: WorkingDays


@subscriber(router, GROUP, topics.WORKFLOW_EVENTS)
async def on_workflow_event(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"),
                            timescales: Timescales = Context("timescales")) -> None:
    """A step named in clocks.yaml starts or stops a clock (R-CL3)."""
    await _on_event(topics.WORKFLOW_EVENTS, decode(msg.body), pool, timescales)


@subscriber(router, GROUP, topics.ALLOCATION_EVENTS)
async def on_allocation_event(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"),
                              timescales: Timescales = Context("timescales")) -> None:
    """A tray entry named in clocks.yaml starts or stops a clock (R-CL4); tray entries, their RAG and reviews, and
    allocations go into the dashboard's read model (R-CL7)."""
    envelope = decode(msg.body)
    await insights.project(pool, topics.ALLOCATION_EVENTS, envelope)
    await _on_event(topics.ALLOCATION_EVENTS, envelope, pool, timescales)


async def _on_event(topic: str, envelope: Envelope, pool: asyncpg.Pool, timescales: Timescales) -> None:
    definitions = timescales.clocks.clocks
    starts = domain.starts_of(definitions, topic, envelope.type, envelope.data)
    moves = domain.moves_of(definitions, topic, envelope.type, envelope.data)
    if not starts and not moves:
        return  # not an event any clock names
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topic):
            metrics.MESSAGES.labels(GROUP, topic, "duplicate").inc()
            return
        outcomes = [await _start(conn, d, envelope, timescales) for d in starts]
        outcomes += [await _move(conn, m, envelope, timescales.days) for m in moves]
        await outbox.add(conn, [m for o in outcomes if o is not None for m in _messages(o, envelope)])
    metrics.MESSAGES.labels(GROUP, topic, "handled").inc()


class Subject(BaseModel):
    """What a start event must name, within the bounds of any id (shared/bounds.py)."""

    key: IdText
    person_id: IdText
    team_id: IdText | None


DATE = TypeAdapter(SaneDate | None)


def _subject(definition: Definition, cause: Envelope) -> tuple[Subject, date | None]:
    """The start event's subject, and the date in the field the clock's length names (R-CL8, R-CL9); every field
    at fault named."""
    problems: list[str] = []
    try:
        subject = Subject.model_validate({"key": definition.starts.key_of(cause.data),
                                          "person_id": cause.data.get("person_id"),
                                          "team_id": definition.starts.team_key_of(cause.data)})
    except ValidationError as exc:
        problems.append(describe_errors(exc))
    path = definition.length.date_field
    try:
        dated = DATE.validate_python(field_at(cause.data, path) or None) if path else None
    except ValidationError as exc:
        problems.append(f"{path}: {exc.errors()[0]['msg']}")
    if problems:
        raise Undecodable(f"invalid {cause.type[:100]}: {'; '.join(problems)}")
    return subject, dated


async def _start(conn: asyncpg.Connection, definition: Definition, cause: Envelope,
                 timescales: Timescales) -> domain.Outcome | None:
    subject, dated = _subject(definition, cause)
    if definition.length.due_on is not None and dated is None:
        return None  # nothing to be due on (a Future Work sent at once has no date)
    outcome = domain.start(definition, timescales.clocks.version, subject_key=subject.key,
                           person_id=subject.person_id, team_id=subject.team_id, at=cause.time, days=timescales.days,
                           dated=dated)
    if not await store.insert_clock(conn, outcome.clock, datetime.now(UTC)):
        return None  # started already
    log.info("clock started", extra={"clock_id": outcome.clock.clock_id, "clock": definition.name})
    return outcome


async def _move(conn: asyncpg.Connection, move: domain.Move, cause: Envelope,
                days: WorkingDays) -> domain.Outcome | None:
    clock = await store.load_clock(conn, domain.clock_id_of(move.name, move.subject_key), for_update=True)
    if clock is None:
        return None  # started before this service (or never): nothing to stop
    match move.kind:
        case "stop":
            outcome = domain.stop(clock, at=cause.time, by=cause.type, days=days)
        case "pause":
            outcome = domain.pause(clock, at=cause.time, reason=move.reason or cause.type, days=days)
        case "resume":
            outcome = domain.resume(clock, at=cause.time, days=days)
    if outcome is not None:
        await store.update_clock(conn, outcome.clock, datetime.now(UTC))
    return outcome


@subscriber(router, GROUP, topics.SCHEDULER_DUE)
async def on_timer_due(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"),
                       timescales: Timescales = Context("timescales")) -> None:
    """A clock's warning or breach timer fires its point once; a stale timer (a moved or stopped clock) does
    nothing (R-CL6)."""
    envelope = decode(msg.body)
    if envelope.type != TimerDue.TYPE or envelope.data.get("owner") != domain.OWNER:
        return  # another service's timer
    due = parse(TimerDue, envelope)
    clock_id, point = due.payload.get("clock_id"), due.payload.get("point")
    if not (isinstance(clock_id, str) and isinstance(point, str)):
        raise Undecodable("invalid timer.due: payload: a clock timer names its clock_id and point")
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.SCHEDULER_DUE):
            metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_DUE, "duplicate").inc()
            return
        clock = await store.load_clock(conn, clock_id, for_update=True)
        outcome = None if clock is None else domain.fire(clock, point=point, due_at=due.due_at, now=due.fired_at,
                                                         days=timescales.days)
        if outcome is None:
            metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_DUE, "stale").inc()
            return
        await store.update_clock(conn, outcome.clock, datetime.now(UTC))
        await outbox.add(conn, _messages(outcome, envelope))
    log.info("clock point fired", extra={"clock_id": clock_id, "point": point})
    metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_DUE, "handled").inc()


def _messages(outcome: domain.Outcome, cause: Envelope) -> list[outbox.Outgoing]:
    """The outcome's events on clocks.events and its timers on scheduler.timers, keyed by the person."""
    key = outcome.clock.person_id
    messages = [EMIT.event(topics.CLOCKS_EVENTS, e, cause, key) for e in outcome.events]
    for timer in outcome.timers:
        command = (TimerSet(key=timer.key, due_at=timer.due_at, owner=domain.OWNER, payload=timer.payload)
                   if isinstance(timer, domain.SetTimer) else TimerCancel(key=timer.key))
        messages.append(EMIT.timer(command, cause, key))
    return messages
