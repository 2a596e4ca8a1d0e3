"""Issue #18: a consumer passes over, by its `ce_type` header, the records of types its handler does not act on,
before verifying, decoding or opening a savepoint for them (shared/broker.py `subscriber(types=...)`): most of what
a service reads of another's events is not its to act on. What it acts on is verified as before (issue #21)."""

import uuid

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import topics
from shared.envelope import new_message
from shared.outbox import ce_headers
from shared.testing import ServiceProcess, poll_until


async def test_documents_passes_over_a_step_created_and_still_refuses_an_unsigned_step_finished(
        infra, db: asyncpg.Pool, documents: ServiceProcess):
    """Both unsigned, as anyone on the network could send them, on one key (so in this order): documents keeps only
    finished steps, so the step.created is passed over, not set aside; the step.finished is refused as ever."""
    person = str(uuid.uuid4())
    created = new_message("step.created", "tessera/workflow", {"note": "not documents' to act on"}, subject=person)
    finished = new_message("step.finished", "tessera/workflow", {"note": "forged"}, subject=person)
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")
    await producer.start()
    try:
        for message in (created, finished):
            headers = [(name, value.encode()) for name, value in ce_headers(message).items()]
            await producer.send_and_wait(topics.WORKFLOW_EVENTS, message.to_bytes(), key=person.encode(),
                                         headers=headers)
    finally:
        await producer.stop()

    [refused] = await poll_until(lambda: db.fetch("SELECT error FROM documents.dead_letters WHERE value = $1",
                                                  finished.to_bytes()), 60, "the forged step.finished set aside")
    assert refused["error"].startswith("unauthenticated: ")
    assert await db.fetchval("SELECT count(*) FROM documents.dead_letters WHERE value = $1", created.to_bytes()) == 0
