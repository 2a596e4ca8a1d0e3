"""tools/redrive.py: dead letters go back to their original topic with their original key, bytes and headers."""

import asyncio
import uuid

from shared import topics
from shared.broker import ensure_topics
from shared.settings import Settings
from shared.testing import EventLog, SigningProducer, publish
from tools.redrive import Selection, redrive


def _dead_letter(value: bytes, key: str, offset: int, error: str, service: str, **extra: str) -> tuple:
    headers = {"ce_id": str(uuid.uuid4()), "ce_type": "thing.happened", "dlq_error": error,
               "dlq_original_topic": "", "dlq_original_partition": "0", "dlq_original_offset": str(offset),
               "dlq_service": service, **extra}
    return key, value, headers


async def _publish_with_headers(bootstrap: str, topic: str, letters: list[tuple]) -> None:
    producer = SigningProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, headers in letters:
            await producer.send_and_wait(topic, value, key=key.encode(),
                                         headers=[(k, v.encode()) for k, v in headers.items()])
    finally:
        await producer.stop()


async def test_selected_dead_letters_are_republished_untouched_and_a_dry_run_publishes_nothing(infra):
    topic = f"redrive.test.{uuid.uuid4().hex[:8]}"
    settings = Settings(kafka_bootstrap_servers=infra.bootstrap)
    await ensure_topics(settings, [topic, topics.dlq(topic)])
    letters = [_dead_letter(b'{"a": 1}', "k-1", 10, "handler failed: KeyError", "workflow"),
               _dead_letter(b"\x00\xffbinary", "k-2", 11, "handler failed: KeyError", "allocation"),
               _dead_letter(b'{"b": 2}', "k-3", 12, "not JSON: JSONDecodeError", "workflow"),
               _dead_letter(b'{"c": 3}', "k-4", 40, "handler failed: KeyError", "workflow"),
               _dead_letter(b"head only", "k-5", 11, "handler failed: KeyError", "workflow", dlq_truncated="true")]
    for _, _, headers in letters:
        headers["dlq_original_topic"] = topic
    await _publish_with_headers(infra.bootstrap, topics.dlq(topic), letters)
    selection = Selection(from_offset=10, to_offset=20, error_contains="handler failed")

    async with EventLog(infra.bootstrap, [topic]) as log:
        dry = await redrive(topic, selection, dry_run=True, settings=settings)
        assert sorted((x.original_offset, x.action) for x in dry) == [
            (10, "would redrive"), (11, "skipped: truncated"), (11, "would redrive")]
        done = await redrive(topic, selection, settings=settings)
        assert sorted((x.original_offset, x.action) for x in done) == [
            (10, "redriven"), (11, "redriven"), (11, "skipped: truncated")]
        arrived = await log.wait_for(lambda s: True, 30, count=2)
        only_workflow = await redrive(topic, Selection(service="workflow", error_contains="JSON"), settings=settings)
        assert [(x.original_offset, x.action) for x in only_workflow] == [(12, "redriven")]
        arrived = await log.wait_for(lambda s: True, 30, count=3)

    by_key = {s.key: s for s in arrived}
    assert set(by_key) == {"k-1", "k-2", "k-3"}  # not k-4 (offset 40), not the truncated k-5
    for key, value, headers in letters[:3]:
        seen = by_key[key]
        assert seen.value == value  # byte for byte
        assert seen.headers == {"ce_id": headers["ce_id"], "ce_type": "thing.happened"}  # the dlq_* headers dropped


async def test_a_real_dead_letter_returns_to_the_original_topic_with_its_original_bytes(infra, referrals):
    value = f"not json {uuid.uuid4()}".encode()
    dlq = topics.dlq(topics.REFERRALS_INTAKE)
    async with EventLog(infra.bootstrap, [dlq, topics.REFERRALS_INTAKE]) as log:
        await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [("redrive-me", value)])
        [original] = await log.wait_for(lambda s: s.topic == topics.REFERRALS_INTAKE and s.value == value, 30)
        [dead] = await log.wait_for(lambda s: s.topic == dlq and s.value == value, 60)
        assert dead.headers["dlq_original_offset"] == str(original.offset)
        assert dead.headers["dlq_service"] == "referrals"
        settings = Settings(kafka_bootstrap_servers=infra.bootstrap)
        done = await redrive(topics.REFERRALS_INTAKE, Selection(original.partition, original.offset, original.offset),
                             settings=settings)
        assert [(x.original_offset, x.action) for x in done] == [(original.offset, "redriven")]
        copies = await log.wait_for(lambda s: s.topic == topics.REFERRALS_INTAKE and s.value == value, 30, count=2)
    again = copies[-1]
    assert again.key == "redrive-me" and again.partition == original.partition
    assert again.offset > original.offset
    assert not any(k.startswith("dlq_") for k in again.headers)


async def test_every_dead_letter_of_a_batch_is_redriven_not_only_the_first(infra):
    """Dead letters set aside together reach the broker as one batch; the embedded broker's ListOffsets answer
    ends at that batch's first offset + 1, and a re-drive that stopped there left the rest on the .dlq."""
    topic = f"redrive.batch.{uuid.uuid4().hex[:8]}"
    settings = Settings(kafka_bootstrap_servers=infra.bootstrap, topic_partitions=1)
    await ensure_topics(settings, [topic])
    letters = [_dead_letter(b'{"n": %d}' % i, f"k-{i}", i, "handler failed: KeyError", "workflow") for i in range(30)]
    for _, _, headers in letters:
        headers["dlq_original_topic"] = topic
    producer = SigningProducer(bootstrap_servers=infra.bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        sent = [await producer.send(topics.dlq(topic), value, key=key.encode(),
                                    headers=[(k, v.encode()) for k, v in headers.items()])
                for key, value, headers in letters]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    done = await redrive(topic, Selection(), dry_run=True, settings=settings)

    assert sorted(x.original_offset for x in done) == list(range(30))
