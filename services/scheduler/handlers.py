"""Subscribers of the scheduler service: timer.set and timer.cancel on scheduler.timers."""

import logging
from datetime import UTC, datetime

import asyncpg
from faststream.kafka import KafkaRouter

from services.scheduler import domain, store
from services.scheduler.jobs import Firing
from shared import batching, inbox, metrics, topics
from shared.broker import Context, KafkaMessage, subscriber
from shared.envelope import decode
from shared.events.scheduler import TimerCancel, TimerSet

GROUP = "scheduler"
log = logging.getLogger(__name__)
router = KafkaRouter()


@subscriber(router, GROUP, topics.SCHEDULER_TIMERS)
async def on_timer_command(
    msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"), firing: Firing | None = Context("firing", default=None),
    limits: domain.TimerLimits = Context("timer_limits", default=domain.TimerLimits()),
) -> None:
    """timer.set sets or moves a timer, timer.cancel withdraws one; invalid data or data beyond the limits
    (a due time outside the sane window, an oversized payload) is dead-lettered with the reason."""
    envelope = decode(msg.body)
    command = domain.parse_command(envelope.type, envelope.data, limits)
    if command is None:
        metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_TIMERS, "ignored").inc()
        return
    now = firing.clock.now() if firing is not None else datetime.now(UTC)
    record = msg.raw_message
    kafka_key = record.key.decode("utf-8", "replace") if record.key else None  # type: ignore[union-attr]  # faststream types raw_message for batches too; this subscriber is not one
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.SCHEDULER_TIMERS):
            metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_TIMERS, "duplicate").inc()
            return
        existing = await store.load_timer(conn, command.key, for_update=True)
        match command:
            case TimerSet():
                timer = domain.set_timer(
                    existing, command, subject=domain.ordering_key(envelope.subject, kafka_key, command.key),
                    message_id=envelope.id, correlation_id=envelope.correlationid or str(envelope.id), now=now)
                await store.save_timer(conn, timer)
            case TimerCancel():
                if domain.cancel_timer(existing, command) is not None:
                    await store.delete_timer(conn, command.key)
    metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_TIMERS, "handled").inc()
    log.info("timer command handled", extra={"message_id": str(envelope.id), "type": envelope.type,
                                            "moved": existing is not None})
    if isinstance(command, TimerSet) and firing is not None:
        due_at = command.due_at
        batching.after_commit(lambda: firing.wake(due_at))  # the firing job sees the timer once it is committed
