"""A command the broker does not take (away, or the restarted embedded broker refusing a write): the desk tells the
worker it may not have been sent and to look before sending it again, never a bare error page (R-W4)."""

import os
import subprocess
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from services.web.commands import NOT_CONFIRMED, CommandBus
from shared import embedded, signing
from shared.broker import ensure_topics
from shared.settings import Settings
from shared.testing import KEYS_ENV, signer_of

ACTOR = {"worker_id": "sw-1", "roles": ["social_worker"], "team_ids": ["adult-front-door"]}


async def test_R_W4_a_command_the_broker_never_confirms_is_reported_as_perhaps_not_sent(
        own_broker: list[subprocess.Popen[bytes]]) -> None:
    bootstrap = own_broker[0].args[-1].removeprefix("tcp://")
    settings = Settings(service_name="web", kafka_bootstrap_servers=bootstrap)
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=2000, retry_backoff_ms=100)
    await producer.start()
    bus = CommandBus(settings, producer, signer_of("web"), signing.load_verifier(Path(os.environ[KEYS_ENV])))
    try:
        embedded.stop_process(own_broker[0])
        outcome = await bus.send("step.start", ACTOR, key=str(uuid.uuid4()), timeout=5, step_id=str(uuid.uuid4()))
    finally:
        await producer.stop()
    assert outcome.unconfirmed and not outcome.ok and not outcome.pending
    assert outcome.reasons == [NOT_CONFIRMED]  # what the worker reads: it may not have been sent; look first
