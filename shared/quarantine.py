"""Setting aside: a message or row that cannot be handled is moved to `dead_letters` with its error.

The row keeps what a re-drive needs (topic, key, value, headers); a copy goes to `<topic>.dlq`
through the outbox so operations watching the topic see it too. Everything else goes on.
"""

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared import metrics, outbox, topics

log = logging.getLogger(__name__)
MAX_DLQ_RECORD_BYTES = 900_000  # a .dlq record over this keeps its head; the table keeps it whole


@dataclass(frozen=True)
class DeadLetter:
    """What was set aside, by which job, and why; `topic` is where a re-drive sends it."""

    job: str
    kind: str  # "message" | "timer"
    topic: str
    key: str | None
    value: bytes
    error: str
    headers: dict[str, str] = field(default_factory=dict)


def of_record(record: Any, reason: str) -> DeadLetter:
    """A consumed Kafka record, untouched, with the error and where it came from."""
    headers = {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}
    headers.update({
        "dlq_original_topic": record.topic,
        "dlq_original_partition": str(record.partition),
        "dlq_original_offset": str(record.offset),
    })
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    return DeadLetter(job=record.topic, kind="message", topic=record.topic, key=key, value=record.value or b"",
                      error=reason, headers=headers)


async def set_aside(conn: asyncpg.Connection, letter: DeadLetter, service: str, *, copy_to_dlq: bool = True) -> int:
    """Record the dead letter and queue its `.dlq` copy, in the caller's transaction; its id."""
    letter_id = await conn.fetchval(
        "INSERT INTO dead_letters (job, kind, topic, key, value, headers, error)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        letter.job, letter.kind, letter.topic, letter.key, letter.value, letter.headers, letter.error[:2000])
    if copy_to_dlq:
        await outbox.add(conn, [dlq_record(letter, service, letter_id)])
    metrics.DEAD_LETTERS.labels(service, letter.job).inc()
    log.warning("set aside", extra={"job": letter.job, "kind": letter.kind, "dead_letter_id": letter_id,
                                    "reason": letter.error[:200]})
    return letter_id


def dlq_record(letter: DeadLetter, service: str, letter_id: int | None = None) -> outbox.Outgoing:
    """The `.dlq` copy: the original value (its head if too big) with the error and where it came from."""
    headers = {**letter.headers, "dlq_error": letter.error[:2000], "dlq_service": service,
               "dlq_job": letter.job, "dlq_kind": letter.kind}
    if letter_id is not None:
        headers["dlq_dead_letter_id"] = str(letter_id)
    value = letter.value
    if len(value) > MAX_DLQ_RECORD_BYTES:
        headers.update({"dlq_truncated": "true", "dlq_original_size": str(len(value)),
                        "dlq_original_sha256": hashlib.sha256(value).hexdigest()})
        value = value[:MAX_DLQ_RECORD_BYTES]
    return outbox.Outgoing(topics.dlq(letter.topic), letter.key, value, headers)
