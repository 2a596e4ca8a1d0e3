"""Subscribers of the notifications service."""

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from shared import topics
from shared.broker import subscriber
from shared.envelope import decode

GROUP = "notifications"
router = KafkaRouter()


@subscriber(router, GROUP, topics.WORKFLOW_EVENTS)
async def on_workflow_event(msg: KafkaMessage) -> None:
    """Requests and notifications to deliver: handled from the workflow engine issue (#4)."""
    decode(msg.body)


@subscriber(router, GROUP, topics.ALLOCATION_EVENTS)
async def on_allocation_event(msg: KafkaMessage) -> None:
    """Tray events that message people: handled from the documents and messages issue (#9)."""
    decode(msg.body)


@subscriber(router, GROUP, topics.SCHEDULER_DUE)
async def on_timer_due(msg: KafkaMessage) -> None:
    """Reminder timers: handled from the scheduler issue (#5)."""
    decode(msg.body)
