"""The dashboard's read model (R-CL7): Planned Work Tray entries, RAG changes, allocations and clocks, projected
from allocation.events (by the clocks service's consumer of it, handlers.py) and clocks.events (here) into the
insight tables. Each write is idempotent, so a projection needs no inbox claim, and the tables are rebuilt by
emptying them and reading the topics again from the start (deploy/runbooks/insights.md)."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
from faststream import Context
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel

from services.clocks import store
from shared import metrics, topics
from shared.broker import subscriber
from shared.envelope import Envelope, decode, parse
from shared.events.allocation import (
    CaseAllocated,
    TrayEntryAdded,
    TrayEntryRemoved,
    TrayEntryReviewed,
    TrayNextReviewSet,
    WorkerRelationshipEnded,
)
from shared.events.clocks import ClockBreached, ClockResumed, ClockStarted, ClockStopped, ClockWarning

GROUP = "clocks"
router = KafkaRouter()
Apply = Callable[[asyncpg.Connection, Any, uuid.UUID, datetime], Awaitable[None]]


async def _tray_added(conn: asyncpg.Connection, e: TrayEntryAdded, event_id: uuid.UUID, at: datetime) -> None:
    await store.add_entry(conn, e.entry_id, e.team_id, e.person_id, e.placed_at, e.next_review_at)
    await store.add_rag(conn, event_id, e.entry_id, e.team_id, e.rag, e.placed_at)


async def _tray_reviewed(conn: asyncpg.Connection, e: TrayEntryReviewed, event_id: uuid.UUID, at: datetime) -> None:
    await store.set_next_review(conn, e.entry_id, e.next_review_at, at)
    await store.add_rag(conn, event_id, e.entry_id, e.team_id, e.rag, at)


async def _next_review_set(conn: asyncpg.Connection, e: TrayNextReviewSet, event_id: uuid.UUID, at: datetime) -> None:
    await store.set_next_review(conn, e.entry_id, e.next_review_at, at)


async def _tray_removed(conn: asyncpg.Connection, e: TrayEntryRemoved, event_id: uuid.UUID, at: datetime) -> None:
    await store.remove_entry(conn, e.entry_id, at)


async def _allocated(conn: asyncpg.Connection, e: CaseAllocated, event_id: uuid.UUID, at: datetime) -> None:
    await store.add_allocation(conn, e.relationship_id, e.team_id, e.worker_id, e.person_id, at)
    if e.removed_entry_id:
        await store.remove_entry(conn, e.removed_entry_id, at)


async def _relationship_ended(conn: asyncpg.Connection, e: WorkerRelationshipEnded, event_id: uuid.UUID,
                              at: datetime) -> None:
    await store.end_allocation(conn, e.relationship_id, at)


async def _clock_started(conn: asyncpg.Connection, e: ClockStarted, event_id: uuid.UUID, at: datetime) -> None:
    await store.note_clock_started(conn, e.clock_id, e.team_id, e.person_id, e.title, e.due_date)


async def _clock_warned(conn: asyncpg.Connection, e: ClockWarning, event_id: uuid.UUID, at: datetime) -> None:
    await store.note_clock_started(conn, e.clock_id, e.team_id, e.person_id, e.title, e.due_date)
    await store.note_clock_marked(conn, e.clock_id, "warned_at", at)


async def _clock_breached(conn: asyncpg.Connection, e: ClockBreached, event_id: uuid.UUID, at: datetime) -> None:
    await store.note_clock_started(conn, e.clock_id, e.team_id, e.person_id, e.title, e.due_date)
    await store.note_clock_marked(conn, e.clock_id, "breached_at", e.breached_at)


async def _clock_stopped(conn: asyncpg.Connection, e: ClockStopped, event_id: uuid.UUID, at: datetime) -> None:
    await store.note_clock_started(conn, e.clock_id, e.team_id, e.person_id, e.title, e.due_date)
    await store.note_clock_marked(conn, e.clock_id, "stopped_at", e.stopped_at)


async def _clock_resumed(conn: asyncpg.Connection, e: ClockResumed, event_id: uuid.UUID, at: datetime) -> None:
    await store.note_clock_due_moved(conn, e.clock_id, e.due_date)


# what each topic's events do to the read model; other types are not the dashboard's business
PROJECTIONS: dict[str, dict[str, tuple[type[BaseModel], Apply]]] = {
    topics.ALLOCATION_EVENTS: {
        TrayEntryAdded.TYPE: (TrayEntryAdded, _tray_added),
        TrayEntryReviewed.TYPE: (TrayEntryReviewed, _tray_reviewed),
        TrayNextReviewSet.TYPE: (TrayNextReviewSet, _next_review_set),
        TrayEntryRemoved.TYPE: (TrayEntryRemoved, _tray_removed),
        CaseAllocated.TYPE: (CaseAllocated, _allocated),
        WorkerRelationshipEnded.TYPE: (WorkerRelationshipEnded, _relationship_ended),
    },
    topics.CLOCKS_EVENTS: {
        ClockStarted.TYPE: (ClockStarted, _clock_started),
        ClockWarning.TYPE: (ClockWarning, _clock_warned),
        ClockBreached.TYPE: (ClockBreached, _clock_breached),
        ClockStopped.TYPE: (ClockStopped, _clock_stopped),
        ClockResumed.TYPE: (ClockResumed, _clock_resumed),
    },
}


async def apply(conn: asyncpg.Connection, topic: str, envelope: Envelope) -> bool:
    """Project one event into the read model (in the caller's transaction); False for a type it ignores."""
    projection = PROJECTIONS[topic].get(envelope.type)
    if projection is None:
        return False
    model, project = projection
    await project(conn, parse(model, envelope), envelope.id, envelope.time)
    return True


async def project(pool: asyncpg.Pool, topic: str, envelope: Envelope) -> None:
    """An event the dashboard counts, projected in a transaction of its own; any other type changes nothing."""
    if envelope.type not in PROJECTIONS[topic]:
        return
    async with pool.acquire() as conn, conn.transaction():
        await apply(conn, topic, envelope)


@subscriber(router, GROUP, topics.CLOCKS_EVENTS)
async def on_clock_event(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """Clocks started, at risk, breached and stopped, for the dashboard (R-CL7)."""
    await project(pool, topics.CLOCKS_EVENTS, decode(msg.body))
    metrics.MESSAGES.labels(GROUP, topics.CLOCKS_EVENTS, "handled").inc()
