"""Subscribers of the scheduler service."""

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from shared import topics
from shared.broker import subscriber
from shared.envelope import decode

GROUP = "scheduler"
router = KafkaRouter()


@subscriber(router, GROUP, topics.SCHEDULER_TIMERS)
async def on_timer_command(msg: KafkaMessage) -> None:
    """timer.set and timer.cancel: handled from the scheduler issue (#5)."""
    decode(msg.body)
