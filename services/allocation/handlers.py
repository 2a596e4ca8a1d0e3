"""Subscribers of the allocation service."""

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from shared import topics
from shared.broker import subscriber
from shared.envelope import decode

GROUP = "allocation"
router = KafkaRouter()


@subscriber(router, GROUP, topics.ALLOCATION_COMMANDS)
async def on_allocation_command(msg: KafkaMessage) -> None:
    """Relationship and tray commands: handled from the allocation issue (#6); undecodable ones are dead-lettered now."""
    decode(msg.body)


@subscriber(router, GROUP, topics.WORKFLOW_EVENTS)
async def on_workflow_event(msg: KafkaMessage) -> None:
    """Step events that change allocations: handled from the allocation issue (#6)."""
    decode(msg.body)


@subscriber(router, GROUP, topics.SCHEDULER_DUE)
async def on_timer_due(msg: KafkaMessage) -> None:
    """Tray review and escalation timers: handled from the allocation issue (#6)."""
    decode(msg.body)
