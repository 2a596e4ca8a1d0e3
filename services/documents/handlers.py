"""Subscribers of the documents service."""

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from shared import topics
from shared.broker import subscriber
from shared.envelope import decode

GROUP = "documents"
router = KafkaRouter()


@subscriber(router, GROUP, topics.WORKFLOW_EVENTS)
async def on_workflow_event(msg: KafkaMessage) -> None:
    """Finished steps become documents: handled from the documents issue (#9)."""
    decode(msg.body)
