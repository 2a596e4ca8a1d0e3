"""The firing job: apscheduler claims due timers and writes their timer.due to the outbox."""

import asyncio
import json
import logging
import traceback
from datetime import UTC, datetime, timedelta

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import ValidationError

from services.scheduler import domain, store
from services.scheduler.clock import Clock
from services.scheduler.domain import Timer
from shared import metrics, outbox, quarantine, topics
from shared.envelope import Envelope, describe_errors
from shared.events.scheduler import TimerDue
from shared.health import JobHealth

SOURCE = "tessera/scheduler"
JOB = "fire-due"
log = logging.getLogger(__name__)
# apscheduler logs every run at INFO and every skipped overlap at WARNING: too chatty at 5 Hz.
logging.getLogger("apscheduler").setLevel(logging.ERROR)


class Firing:
    """Fires due timers every poll, and sooner when a timer due before the next poll is set."""

    def __init__(self, clock: Clock, *, poll_seconds: float, batch_size: int, service: str = "scheduler") -> None:
        self.clock = clock
        self._poll = poll_seconds
        self._batch = batch_size
        self._service = service
        self._pool: asyncpg.Pool | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._health = JobHealth(service)
        self.fired = 0

    async def start(self, pool: asyncpg.Pool, health: JobHealth | None = None) -> None:
        """Start the job; from create_app's on_pool_ready hook, before the consumers."""
        self._pool = pool
        self._health = health or self._health
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(self.tick, "interval", seconds=self._poll, id=JOB, max_instances=1,
                          coalesce=True, misfire_grace_time=None, next_run_time=datetime.now(UTC))
        scheduler.start()
        self._scheduler = scheduler
        log.info("firing timers", extra={"poll_seconds": self._poll, "batch_size": self._batch})

    async def stop(self) -> None:
        """Stop the job, letting a batch in flight commit; before the broker stops."""
        self._stopping = True
        if self._scheduler is None:
            return
        self._scheduler.pause()
        async with self._lock:  # the batch in flight commits (or its transaction rolls back)
            pass
        self._scheduler.shutdown(wait=False)
        self._scheduler = None

    def wake(self, due_at: datetime) -> None:
        """A timer was set: if it falls due before the next poll, look again at its due time."""
        if self._scheduler is None or self._stopping:
            return
        at = domain.wake_at(due_at, self.clock.now(), timedelta(seconds=self._poll))
        if at is None:
            return
        run_date = self.clock.to_wall(at)
        pending = self._scheduler.get_job("wake")
        if pending is not None and pending.next_run_time is not None and pending.next_run_time <= run_date:
            return
        self._scheduler.add_job(self.tick, "date", run_date=run_date, id="wake", replace_existing=True,
                                misfire_grace_time=None)

    async def tick(self) -> None:
        """Fire batches until none is due; a failure is logged, shown on /readyz if it persists, and retried."""
        if self._stopping:
            return
        async with self._lock:
            try:
                await self.clock.refresh(self._pool)
                while not self._stopping and await self.fire_once() == self._batch:
                    pass
                self._health.succeeded(JOB)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("firing timers failed, retrying", extra={"error": type(exc).__name__})
                self._health.failed(JOB, exc)
            except Exception as exc:
                log.error("firing timers failed", extra={"error": type(exc).__name__,
                                                         "frames": traceback.format_tb(exc.__traceback__)[-3:]})
                self._health.failed(JOB, exc)

    async def fire_once(self) -> int:
        """One transaction: claim up to a batch of due timers, delete them, add their timer.due.

        A claimed row that cannot fire (a due time PostgreSQL holds as -infinity, a payload the event
        refuses) is set aside in dead_letters, alone: the other timers of the batch fire.
        """
        assert self._pool is not None
        now = self.clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await store.claim_due_rows(conn, now, self._batch)
            fired, refused = fireable(rows, now)
            if fired:
                await outbox.add(conn, [message for _, message in fired])
            for row, reason in refused:
                await quarantine.set_aside(conn, timer_letter(row, reason), self._service)
        lateness = metrics.TIMER_LATENESS.labels(self._service)
        for timer, _ in fired:
            lateness.observe(domain.lateness(timer, now))
        self.fired += len(fired)
        return len(rows)


def fireable(rows: list[asyncpg.Record], now: datetime) -> tuple[
        list[tuple[Timer, outbox.Outgoing]], list[tuple[asyncpg.Record, str]]]:
    """The claimed rows as timers with their timer.due, earliest first, and the rows that cannot fire, why."""
    fired, refused = [], []
    for row in rows:
        try:
            timer = store.timer_of(row)
            fired.append((timer, due_message(timer, now)))
        except Exception as exc:  # whatever is wrong with one row stays with that row
            refused.append((row, f"cannot fire: {_why(exc)}"))
    fired.sort(key=lambda pair: (pair[0].due_at, pair[0].key))
    return fired, refused


def _why(exc: Exception) -> str:
    return describe_errors(exc) if isinstance(exc, ValidationError) else type(exc).__name__


def timer_letter(row: asyncpg.Record, reason: str) -> quarantine.DeadLetter:
    """A timer row set aside: the row as JSON, kept for an operator to re-drive (tools/quarantine)."""
    value = json.dumps(dict(row), default=str).encode()
    return quarantine.DeadLetter(job=JOB, kind="timer", topic=topics.SCHEDULER_TIMERS, key=row["subject"],
                                 value=value, error=reason, headers={"timer_key": row["key"][:200]})


def due_message(timer: Timer, now: datetime) -> outbox.Outgoing:
    """timer.due on scheduler.due, keyed by the owner's ordering key, caused by the timer.set.

    Not through outbox.Emitter: its id is derived from the timer (a re-fire is the same message) and its cause
    is the stored timer.set, not a message in hand."""
    envelope = Envelope(
        specversion="1.0",
        id=domain.due_message_id(timer.key, timer.set_by),
        type=TimerDue.TYPE,
        source=SOURCE,
        time=now,
        subject=timer.subject,
        dataschema=TimerDue.dataschema(),
        correlationid=timer.correlation_id or str(timer.set_by),
        causationid=str(timer.set_by),
        data=domain.fire(timer, now).envelope_data(),
    )
    return outbox.Outgoing.event(topics.SCHEDULER_DUE, timer.subject, envelope)
