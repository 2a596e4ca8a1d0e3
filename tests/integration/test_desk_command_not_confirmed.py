"""A command the broker does not take (away, or the restarted embedded broker refusing a write): the desk tells the
worker it may not have been sent and to look before sending it again, never a bare error page (R-W4)."""

import asyncio
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
    bootstrap = embedded.bootstrap_of(own_broker[0])
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


async def test_R_W4_a_broker_away_is_reported_within_the_pages_own_wait_not_the_producers(
        own_broker: list[subprocess.Popen[bytes]]) -> None:
    """The desk's producer would wait 40 s (aiokafka's request timeout) for a broker that does not answer; the
    worker is answered within the page's wait for an outcome (WEB_COMMAND_TIMEOUT_SECONDS) instead."""
    bootstrap = embedded.bootstrap_of(own_broker[0])
    settings = Settings(service_name="web", kafka_bootstrap_servers=bootstrap)
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=120_000)
    await producer.start()
    bus = CommandBus(settings, producer, signer_of("web"), signing.load_verifier(Path(os.environ[KEYS_ENV])))
    port = int(bootstrap.rsplit(":", 1)[1])
    try:
        embedded.stop_process(own_broker[0])
        async with asyncio.timeout(30):  # the page's wait is 2 s here; the producer's own 120 s
            outcome = await bus.send("step.start", ACTOR, key=str(uuid.uuid4()), timeout=2, step_id=str(uuid.uuid4()))
    finally:
        own_broker.append(embedded.start_broker(port))  # the producer's stop delivers what it still holds
        await producer.stop()
    assert outcome.unconfirmed
    assert outcome.reasons == [NOT_CONFIRMED]
